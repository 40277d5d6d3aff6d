//! The message codecs of the `transcode` RPC method (docs/codecs.md).
//!
//! A `transcode` payload is `[tag byte][message]`: the tag names the codec, the message is one
//! [`Request`] encoded in it. The server decodes the request, computes its [`Reply`] with
//! [`answer`] and encodes the reply in the same codec, in the same buffer. JSON (serde_json),
//! Protocol Buffers (prost) and FlatBuffers all carry the same logical schema, so the three
//! differ only in their encoding and decoding work.
//!
//! The decoded types borrow their strings from the payload and hold their lists in
//! fixed-capacity arrays, so a codec that can decode in place ([`Codec::Json`] with borrowed
//! `&str`, [`Codec::Flatbuffers`] read where it lies) transcodes without touching the heap:
//! that is what [`Transcoder::allocation_free`] serves on the fast path. prost decodes into owned
//! `String`s and `Vec`s, so protobuf is refused there (tests/codec_alloc.rs checks both claims).

#![forbid(unsafe_code)]

use std::fmt;

use arrayvec::ArrayVec;
use flatbuffers::FlatBufferBuilder;
use serde::{Deserialize, Serialize};

pub use crate::options::{Codec, MessageSize};

mod fb;
mod json;
mod pb;
pub mod sample;

#[cfg(test)]
mod tests;

/// The tag byte of a JSON message.
pub const TAG_JSON: u8 = 1;
/// The tag byte of a Protocol Buffers message.
pub const TAG_PROTOBUF: u8 = 2;
/// The tag byte of a FlatBuffers message.
pub const TAG_FLATBUFFERS: u8 = 3;

/// At most this many `tags` in a request: the decoded request keeps them in a fixed array so
/// decoding never allocates. A message with more is malformed.
pub const MAX_TAGS: usize = 32;
/// At most this many `values` in a request (fixed array, as [`MAX_TAGS`]). 256 numbers are more
/// than a 1500-byte frame carries in FlatBuffers (8 bytes each) and about what it carries in
/// JSON with 4-digit numbers.
pub const MAX_VALUES: usize = 256;

/// The bit [`answer`] sets in the echoed record's `flags`: it marks the record as the server's.
pub const FLAG_REPLIED: u32 = 0x8000_0000;
/// The reply `status` of a request with values to sum.
pub const STATUS_OK: u32 = 0;
/// The reply `status` of a request without values (its `sum` is 0).
pub const STATUS_NO_VALUES: u32 = 1;

/// The working space a [`Transcoder`] encodes a reply into before copying it over the request.
/// A reply is at most its request's strings plus a few hundred bytes, so this holds the reply of
/// any request a jumbo frame can carry; a bigger one gets [`TranscodeError::TooLarge`].
const SCRATCH: usize = 16 * 1024;

/// The codec a tag byte names.
pub fn codec_of_tag(tag: u8) -> Option<Codec> {
    match tag {
        TAG_JSON => Some(Codec::Json),
        TAG_PROTOBUF => Some(Codec::Protobuf),
        TAG_FLATBUFFERS => Some(Codec::Flatbuffers),
        _ => None,
    }
}

/// The tag byte of a codec.
pub fn tag_of(c: Codec) -> u8 {
    match c {
        Codec::Json => TAG_JSON,
        Codec::Protobuf => TAG_PROTOBUF,
        Codec::Flatbuffers => TAG_FLATBUFFERS,
    }
}

/// Why a `transcode` payload got no reply. Every one is the client's doing (or the fast path's
/// choice, for `Refused`) and answers with status 3, bad argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscodeError {
    /// No tag byte.
    Empty,
    /// The tag byte names no codec.
    UnknownCodec(u8),
    /// The message does not decode in its codec, or breaks the schema's limits.
    Malformed,
    /// The reply does not fit the buffer (or `len` exceeds the buffer).
    TooLarge,
    /// This transcoder does not serve the codec: the fast path cannot decode it without
    /// allocating.
    Refused(Codec),
}

impl TranscodeError {
    /// A short kebab-case name, for drop counters and reports.
    pub fn reason(&self) -> &'static str {
        match self {
            TranscodeError::Empty => "empty",
            TranscodeError::UnknownCodec(_) => "unknown-codec",
            TranscodeError::Malformed => "malformed",
            TranscodeError::TooLarge => "too-large",
            TranscodeError::Refused(_) => "codec-refused",
        }
    }
}

impl fmt::Display for TranscodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TranscodeError::Empty => f.write_str("empty transcode payload (no codec tag)"),
            TranscodeError::UnknownCodec(tag) => write!(f, "unknown codec tag {tag}"),
            TranscodeError::Malformed => f.write_str("malformed message"),
            TranscodeError::TooLarge => f.write_str("reply does not fit the buffer"),
            TranscodeError::Refused(c) => {
                write!(
                    f,
                    "codec {c} refused: it cannot transcode without allocating"
                )
            }
        }
    }
}

impl std::error::Error for TranscodeError {}

/// The nested record of a request, echoed (with a derived score) in its reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inner<'a> {
    pub name: &'a str,
    pub score: i64,
    pub flags: u32,
}

/// A `transcode` request. Strings borrow from the decoded payload: JSON strings with escapes
/// cannot be borrowed and are refused as malformed (the sample content has none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request<'a> {
    pub id: u64,
    pub user: &'a str,
    pub method: &'a str,
    #[serde(borrow)]
    pub tags: ArrayVec<&'a str, MAX_TAGS>,
    pub values: ArrayVec<i64, MAX_VALUES>,
    #[serde(borrow)]
    pub nested: Inner<'a>,
}

/// The reply to a [`Request`], from [`answer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply<'a> {
    pub id: u64,
    pub status: u32,
    pub sum: i64,
    pub count: u32,
    #[serde(borrow)]
    pub nested: Inner<'a>,
    pub message: &'a str,
}

/// The server's business logic, shared by all codecs: the sum and count of the values, the
/// nested record echoed with the sum added to its score and [`FLAG_REPLIED`] set, and the
/// method echoed as the message. Wrapping arithmetic: a hostile request cannot make it panic.
pub fn answer<'a>(req: &Request<'a>) -> Reply<'a> {
    let sum = req.values.iter().fold(0i64, |acc, &v| acc.wrapping_add(v));
    Reply {
        id: req.id,
        status: if req.values.is_empty() {
            STATUS_NO_VALUES
        } else {
            STATUS_OK
        },
        sum,
        // MAX_VALUES fits a u32.
        count: req.values.len() as u32,
        nested: Inner {
            name: req.nested.name,
            score: req.nested.score.wrapping_add(sum),
            flags: req.nested.flags | FLAG_REPLIED,
        },
        message: req.method,
    }
}

/// The server side of `transcode`: one per server thread or fast-path worker, holding the
/// scratch space a reply is encoded into, allocated once here.
pub struct Transcoder {
    protobuf: bool,
    scratch: Vec<u8>,
    fbb: FlatBufferBuilder<'static>,
}

impl Default for Transcoder {
    fn default() -> Transcoder {
        Transcoder::new()
    }
}

impl Transcoder {
    /// A transcoder for the kernel-stack server: all three codecs.
    pub fn new() -> Transcoder {
        Transcoder {
            protobuf: true,
            scratch: vec![0; SCRATCH],
            fbb: FlatBufferBuilder::with_capacity(SCRATCH),
        }
    }

    /// A transcoder for the fast path: only the codecs that transcode without a heap allocation
    /// once warm (JSON and FlatBuffers; the builder's small bookkeeping vectors reach their
    /// final capacity on the first reply). Protobuf gets [`TranscodeError::Refused`].
    pub fn allocation_free() -> Transcoder {
        Transcoder {
            protobuf: false,
            ..Transcoder::new()
        }
    }

    /// Whether [`Transcoder::transcode`] decodes this codec (rather than refusing it).
    pub fn can_serve(&self, c: Codec) -> bool {
        self.protobuf || Self::allocation_free_serves(c)
    }

    /// Whether an [`Transcoder::allocation_free`] transcoder (the fast path's) serves this
    /// codec, asked without building one.
    pub fn allocation_free_serves(c: Codec) -> bool {
        match c {
            Codec::Json | Codec::Flatbuffers => true,
            Codec::Protobuf => false,
        }
    }

    /// Answers the `transcode` payload `buf[..len]` (`[tag][request]`) in place: on success
    /// `buf` starts with the reply payload `[tag][reply]` and its length is returned. The whole
    /// of `buf` is usable for the reply. On error `buf` may have been overwritten.
    ///
    /// Allocation: none on success for JSON and FlatBuffers; protobuf allocates the decoded
    /// message. An error of JSON decoding allocates serde_json's boxed error before it is
    /// dropped, so the malformed path is not allocation-free.
    pub fn transcode(&mut self, buf: &mut [u8], len: usize) -> Result<usize, TranscodeError> {
        let payload = buf.get(..len).ok_or(TranscodeError::TooLarge)?;
        let (&tag, message) = payload.split_first().ok_or(TranscodeError::Empty)?;
        let codec = codec_of_tag(tag).ok_or(TranscodeError::UnknownCodec(tag))?;
        if !self.can_serve(codec) {
            return Err(TranscodeError::Refused(codec));
        }
        // The decoded request borrows the buffer, so the reply goes to scratch space first and
        // over the request once the borrow ends. Protobuf's decoded message owns its data and
        // needs no such detour.
        let encoded: &[u8] = match codec {
            Codec::Json => {
                let request = json::decode_request(message)?;
                let n = json::encode(&answer(&request), &mut self.scratch)?;
                self.scratch.get(..n).ok_or(TranscodeError::TooLarge)?
            }
            Codec::Flatbuffers => {
                let request = fb::read_request(message)?;
                fb::build_reply(&mut self.fbb, &answer(&request))?;
                self.fbb.finished_data()
            }
            Codec::Protobuf => {
                let request = pb::decode_request(message)?;
                let out = buf.get_mut(1..).ok_or(TranscodeError::TooLarge)?;
                let n = pb::encode_reply(&answer(&request.borrowed()?), out)?;
                return finish(buf, tag, n);
            }
        };
        let end = encoded.len() + 1;
        buf.get_mut(1..end)
            .ok_or(TranscodeError::TooLarge)?
            .copy_from_slice(encoded);
        finish(buf, tag, encoded.len())
    }
}

/// Writes the tag in front of a reply message of `n` bytes already at `buf[1..]`.
fn finish(buf: &mut [u8], tag: u8, n: usize) -> Result<usize, TranscodeError> {
    *buf.first_mut().ok_or(TranscodeError::TooLarge)? = tag;
    Ok(n + 1)
}

/// The client side of `transcode` for one codec and message size: encodes the sample request
/// of an id and checks a reply against the [`answer`] to it. Its working space is allocated in
/// [`ClientCodec::new`]; after that, encoding and checking allocate nothing.
pub struct ClientCodec {
    codec: Codec,
    size: MessageSize,
    fbb: FlatBufferBuilder<'static>,
    pb: pb::ClientState,
    request_len_id0: usize,
    reply_len_id0: usize,
}

impl ClientCodec {
    pub fn new(codec: Codec, size: MessageSize) -> ClientCodec {
        let mut client = ClientCodec {
            codec,
            size,
            fbb: FlatBufferBuilder::with_capacity(SCRATCH),
            pb: pb::ClientState::new(&sample::request(size, 0)),
            request_len_id0: 0,
            reply_len_id0: 0,
        };
        let mut out = vec![0; SCRATCH];
        client.request_len_id0 = client.encode_request(0, &mut out);
        let reply = answer(&sample::request(size, 0));
        client.reply_len_id0 = 1 + encode_reply_with(codec, &mut client.fbb, &reply, &mut out[1..])
            .expect("a sample reply fits the scratch space");
        // Checking once here grows the protobuf reply's strings to their final capacity, so
        // the first check_reply of a run allocates no more than the rest.
        out[0] = tag_of(codec);
        let ok = client.check_reply(0, &out[..client.reply_len_id0]);
        debug_assert!(ok, "the sample reply of id 0 checks");
        client
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    pub fn size(&self) -> MessageSize {
        self.size
    }

    /// The request payload length (tag byte included) for id 0. FlatBuffers lengths never vary;
    /// JSON adds a byte per further decimal digit of the id, protobuf the id's varint (0 is not
    /// sent at all): see [`ClientCodec::request_len_for`].
    pub fn request_len(&self) -> usize {
        self.request_len_id0
    }

    /// The exact request payload length for `id`: the sample content is chosen so that only
    /// the id's width varies.
    pub fn request_len_for(&self, id: u64) -> usize {
        self.request_len_id0 - id_width(self.codec, 0) + id_width(self.codec, id)
    }

    /// The expected reply payload length (tag byte included) for id 0; as
    /// [`ClientCodec::request_len`], only the id's width varies it.
    pub fn reply_len(&self) -> usize {
        self.reply_len_id0
    }

    /// The exact expected reply payload length for `id`.
    pub fn reply_len_for(&self, id: u64) -> usize {
        self.reply_len_id0 - id_width(self.codec, 0) + id_width(self.codec, id)
    }

    /// Writes the request payload `[tag][message]` of `id` to the start of `out` and returns
    /// its length, or 0 if `out` is too short.
    pub fn encode_request(&mut self, id: u64, out: &mut [u8]) -> usize {
        let request = sample::request(self.size, id);
        let Some((tag, message)) = out.split_first_mut() else {
            return 0;
        };
        let written = match self.codec {
            Codec::Json => json::encode(&request, message),
            Codec::Protobuf => self.pb.encode_request(&request, message),
            Codec::Flatbuffers => {
                fb::build_request(&mut self.fbb, &request);
                let encoded = self.fbb.finished_data();
                match message.get_mut(..encoded.len()) {
                    Some(dst) => {
                        dst.copy_from_slice(encoded);
                        Ok(encoded.len())
                    }
                    None => Err(TranscodeError::TooLarge),
                }
            }
        };
        match written {
            Ok(n) => {
                *tag = tag_of(self.codec);
                n + 1
            }
            Err(_) => 0,
        }
    }

    /// Decodes a reply payload and says whether it is exactly the reply to request `id`: the
    /// right tag, a message that decodes, and every field as [`answer`] computes it.
    pub fn check_reply(&mut self, id: u64, payload: &[u8]) -> bool {
        let Some((&tag, message)) = payload.split_first() else {
            return false;
        };
        if tag != tag_of(self.codec) {
            return false;
        }
        let request = sample::request(self.size, id);
        let expected = answer(&request);
        match self.codec {
            Codec::Json => json::decode_reply(message).is_ok_and(|r| r == expected),
            Codec::Flatbuffers => fb::read_reply(message).is_ok_and(|r| r == expected),
            Codec::Protobuf => self.pb.check_reply(message, &expected),
        }
    }
}

/// Encodes a reply message (no tag) into `out` in any codec; `fbb` is the FlatBuffers builder
/// to use.
fn encode_reply_with(
    codec: Codec,
    fbb: &mut FlatBufferBuilder<'static>,
    reply: &Reply<'_>,
    out: &mut [u8],
) -> Result<usize, TranscodeError> {
    match codec {
        Codec::Json => json::encode(reply, out),
        Codec::Protobuf => pb::encode_reply(reply, out),
        Codec::Flatbuffers => {
            fb::build_reply(fbb, reply)?;
            let encoded = fbb.finished_data();
            let dst = out
                .get_mut(..encoded.len())
                .ok_or(TranscodeError::TooLarge)?;
            dst.copy_from_slice(encoded);
            Ok(encoded.len())
        }
    }
}

/// The bytes the id field takes in a codec's encoding, the one part of a sample message whose
/// length varies.
fn id_width(codec: Codec, id: u64) -> usize {
    match codec {
        Codec::Json => decimal_digits(id),
        // proto3 leaves a zero field out; otherwise a key byte and the varint.
        Codec::Protobuf if id == 0 => 0,
        Codec::Protobuf => 1 + varint_len(id),
        // Written always, as a fixed 8-byte scalar.
        Codec::Flatbuffers => 8,
    }
}

fn decimal_digits(mut n: u64) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

fn varint_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}
