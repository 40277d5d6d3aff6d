//! The process-wide stop request under the names the programs have long called it by; the
//! signal handling itself is in [`crate::os::signal`].

#![forbid(unsafe_code)]

pub use crate::os::signal::{
    install_stop_handlers as install_handlers, request_stop as request, stop_requested as requested,
};
