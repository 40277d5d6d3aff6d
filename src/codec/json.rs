//! JSON (serde_json): compact text, fields in schema order, strings borrowed on decode.

use serde::Serialize;

use super::{Reply, Request, TranscodeError};

/// Decodes a request in place. serde_json fails on a string with an escape (it could not be
/// borrowed), an unknown field, a missing one, or a list longer than the schema's limit.
pub(super) fn decode_request(message: &[u8]) -> Result<Request<'_>, TranscodeError> {
    serde_json::from_slice(message).map_err(|_| TranscodeError::Malformed)
}

pub(super) fn decode_reply(message: &[u8]) -> Result<Reply<'_>, TranscodeError> {
    serde_json::from_slice(message).map_err(|_| TranscodeError::Malformed)
}

/// Serializes into `out` and returns the length. The writer is the slice itself, which cannot
/// grow: an encoding longer than `out` stops with an error instead of reallocating.
pub(super) fn encode<T: Serialize>(value: &T, out: &mut [u8]) -> Result<usize, TranscodeError> {
    let capacity = out.len();
    let mut rest = out;
    serde_json::to_writer(&mut rest, value).map_err(|_| TranscodeError::TooLarge)?;
    Ok(capacity - rest.len())
}
