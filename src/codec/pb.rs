//! Protocol Buffers (prost, proto3). The messages are declared with prost's derive rather than
//! generated from a .proto file, so the build needs no protoc; the equivalent .proto is in
//! docs/codecs.md. Numbers that may be negative are `sint64` (zigzag), so a small negative
//! value costs a byte or two rather than ten.

use arrayvec::ArrayVec;
use prost::Message;

use super::{Inner, Reply, Request, TranscodeError, MAX_TAGS, MAX_VALUES};

#[derive(Clone, PartialEq, Message)]
pub(super) struct PbInner {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(sint64, tag = "2")]
    pub score: i64,
    #[prost(uint32, tag = "3")]
    pub flags: u32,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct PbRequest {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub user: String,
    #[prost(string, tag = "3")]
    pub method: String,
    #[prost(string, repeated, tag = "4")]
    pub tags: Vec<String>,
    #[prost(sint64, repeated, tag = "5")]
    pub values: Vec<i64>,
    #[prost(message, optional, tag = "6")]
    pub nested: Option<PbInner>,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct PbReply {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint32, tag = "2")]
    pub status: u32,
    #[prost(sint64, tag = "3")]
    pub sum: i64,
    #[prost(uint32, tag = "4")]
    pub count: u32,
    #[prost(message, optional, tag = "5")]
    pub nested: Option<PbInner>,
    #[prost(string, tag = "6")]
    pub message: String,
}

impl PbInner {
    fn owned(inner: &Inner<'_>) -> PbInner {
        PbInner {
            name: inner.name.to_owned(),
            score: inner.score,
            flags: inner.flags,
        }
    }

    fn borrowed(&self) -> Inner<'_> {
        Inner {
            name: &self.name,
            score: self.score,
            flags: self.flags,
        }
    }
}

impl PbRequest {
    pub(super) fn owned(request: &Request<'_>) -> PbRequest {
        PbRequest {
            id: request.id,
            user: request.user.to_owned(),
            method: request.method.to_owned(),
            tags: request.tags.iter().map(|t| (*t).to_owned()).collect(),
            values: request.values.to_vec(),
            nested: Some(PbInner::owned(&request.nested)),
        }
    }

    /// The request as the codec-neutral type. proto3 has no required fields: an absent nested
    /// record is the default one, as an absent scalar is 0.
    pub(super) fn borrowed(&self) -> Result<Request<'_>, TranscodeError> {
        let mut tags = ArrayVec::<&str, MAX_TAGS>::new();
        for tag in &self.tags {
            tags.try_push(tag).map_err(|_| TranscodeError::Malformed)?;
        }
        let values = ArrayVec::<i64, MAX_VALUES>::try_from(self.values.as_slice())
            .map_err(|_| TranscodeError::Malformed)?;
        Ok(Request {
            id: self.id,
            user: &self.user,
            method: &self.method,
            tags,
            values,
            nested: self
                .nested
                .as_ref()
                .map(PbInner::borrowed)
                .unwrap_or_default(),
        })
    }
}

impl PbReply {
    fn owned(reply: &Reply<'_>) -> PbReply {
        PbReply {
            id: reply.id,
            status: reply.status,
            sum: reply.sum,
            count: reply.count,
            nested: Some(PbInner::owned(&reply.nested)),
            message: reply.message.to_owned(),
        }
    }

    fn borrowed(&self) -> Reply<'_> {
        Reply {
            id: self.id,
            status: self.status,
            sum: self.sum,
            count: self.count,
            nested: self
                .nested
                .as_ref()
                .map(PbInner::borrowed)
                .unwrap_or_default(),
            message: &self.message,
        }
    }
}

/// Decodes a request into prost's owned message: this is the allocation that keeps protobuf
/// off the fast path.
pub(super) fn decode_request(message: &[u8]) -> Result<PbRequest, TranscodeError> {
    PbRequest::decode(message).map_err(|_| TranscodeError::Malformed)
}

#[cfg(test)]
pub(super) fn decode_reply(message: &[u8]) -> Result<PbReply, TranscodeError> {
    PbReply::decode(message).map_err(|_| TranscodeError::Malformed)
}

/// Encodes a reply into `out` (allocating the owned message on the way).
pub(super) fn encode_reply(reply: &Reply<'_>, out: &mut [u8]) -> Result<usize, TranscodeError> {
    encode_into(&PbReply::owned(reply), out)
}

/// Encodes any request (allocating): for tests and the first encoding of a client.
#[cfg(test)]
pub(super) fn encode_request(
    request: &Request<'_>,
    out: &mut [u8],
) -> Result<usize, TranscodeError> {
    encode_into(&PbRequest::owned(request), out)
}

impl PbReply {
    pub(super) fn matches(&self, expected: &Reply<'_>) -> bool {
        self.borrowed() == *expected
    }
}

fn encode_into<M: Message>(message: &M, out: &mut [u8]) -> Result<usize, TranscodeError> {
    let len = message.encoded_len();
    let mut dst = out.get_mut(..len).ok_or(TranscodeError::TooLarge)?;
    message
        .encode(&mut dst)
        .map_err(|_| TranscodeError::TooLarge)?;
    Ok(len)
}

/// A client's reused prost messages. Encoding overwrites the request message's fields in place
/// and decoding merges into a cleared reply message, so once their strings and lists have
/// reached their sizes (in `ClientCodec::new`) neither allocates.
pub(super) struct ClientState {
    request: PbRequest,
    reply: PbReply,
}

impl ClientState {
    pub(super) fn new(template: &Request<'_>) -> ClientState {
        ClientState {
            request: PbRequest::owned(template),
            reply: PbReply::default(),
        }
    }

    pub(super) fn encode_request(
        &mut self,
        request: &Request<'_>,
        out: &mut [u8],
    ) -> Result<usize, TranscodeError> {
        let m = &mut self.request;
        m.id = request.id;
        set(&mut m.user, request.user);
        set(&mut m.method, request.method);
        if m.tags.len() != request.tags.len() {
            m.tags.resize(request.tags.len(), String::new());
        }
        for (dst, src) in m.tags.iter_mut().zip(&request.tags) {
            set(dst, src);
        }
        m.values.clear();
        m.values.extend_from_slice(&request.values);
        let nested = m.nested.get_or_insert_with(PbInner::default);
        set(&mut nested.name, request.nested.name);
        nested.score = request.nested.score;
        nested.flags = request.nested.flags;
        encode_into(&self.request, out)
    }

    pub(super) fn check_reply(&mut self, message: &[u8], expected: &Reply<'_>) -> bool {
        // Not Message::clear: it drops the nested record, whose name would then be allocated
        // anew by every merge. An absent nested record and a default one read the same.
        let r = &mut self.reply;
        r.id = 0;
        r.status = 0;
        r.sum = 0;
        r.count = 0;
        r.message.clear();
        let nested = r.nested.get_or_insert_with(PbInner::default);
        nested.name.clear();
        nested.score = 0;
        nested.flags = 0;
        r.merge(message).is_ok() && r.matches(expected)
    }
}

/// Overwrites a string, reusing its capacity.
fn set(dst: &mut String, src: &str) {
    if dst != src {
        dst.clear();
        dst.push_str(src);
    }
}
