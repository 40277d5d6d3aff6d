//! The one safe layer over `dpdk-sys`. Everything unsafe about DPDK lives here.

mod array;
mod eal;
mod error;
mod intr;
pub mod lcore;
mod mbuf;
mod mempool;
mod memseg;
mod port;
mod quiesce;

pub use array::push_within;
pub use eal::Eal;
pub use error::{DpdkError, Result};
pub use mbuf::Mbuf;
pub use mbuf::RxCksum;
pub use mempool::Mempool;
pub use memseg::{is_zero_copy_memif_arg, reserve_closed_memseg_fds};
pub use port::{
    device_info, find_port, port_count, port_name, stats as port_stats, xstats as port_xstats,
    ChecksumOffloads, DeviceInfo, LinkStatus, Port, PortConfig, PortStats, RxQueue, TxQueue,
};

/// The DPDK version this binary was built against.
pub const DPDK_VERSION: &str = env!("BYPASS_DPDK_VERSION");
