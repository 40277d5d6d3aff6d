//! FlatBuffers: written with the flatbuffers crate's builder, read in place by the small
//! bounds-checked reader below (schema in src/codec/schema.fbs).
//!
//! Why a reader of our own: flatc is not part of the build, and the accessors it generates
//! rest on the crate's `Table::get`, which is `unsafe` (it trusts a verifier pass run
//! beforehand). This reader checks every offset, length and UTF-8 string as it reads, so no
//! input can make it panic or read outside the message; it reads only the fields of this
//! schema, and an absent field takes its FlatBuffers default (0, "", the default record).

use arrayvec::ArrayVec;
use flatbuffers::{FlatBufferBuilder, WIPOffset};

use super::{Inner, Reply, Request, TranscodeError, MAX_TAGS, MAX_VALUES, SCRATCH};

/// Vtable slots: 4 + 2 * the field's index in the schema.
pub(super) mod slot {
    pub const REQUEST_ID: u16 = 4;
    pub const REQUEST_USER: u16 = 6;
    pub const REQUEST_METHOD: u16 = 8;
    pub const REQUEST_TAGS: u16 = 10;
    pub const REQUEST_VALUES: u16 = 12;
    pub const REQUEST_NESTED: u16 = 14;

    pub const INNER_NAME: u16 = 4;
    pub const INNER_SCORE: u16 = 6;
    pub const INNER_FLAGS: u16 = 8;

    pub const REPLY_ID: u16 = 4;
    pub const REPLY_STATUS: u16 = 6;
    pub const REPLY_SUM: u16 = 8;
    pub const REPLY_COUNT: u16 = 10;
    pub const REPLY_NESTED: u16 = 12;
    pub const REPLY_MESSAGE: u16 = 14;
}

/// The fixed part of a reply (root offset, two tables and their vtables, string headers and
/// padding) is under 128 bytes; this bound on the whole reply keeps the builder inside the
/// capacity it was given, where growing it would allocate.
const REPLY_FIXED_BOUND: usize = 256;

type Result<T> = std::result::Result<T, TranscodeError>;
const BAD: TranscodeError = TranscodeError::Malformed;

pub(super) fn build_request(fbb: &mut FlatBufferBuilder<'static>, request: &Request<'_>) {
    fbb.reset();
    let nested = build_inner(fbb, &request.nested);
    let user = fbb.create_string(request.user);
    let method = fbb.create_string(request.method);
    let mut tags = ArrayVec::<WIPOffset<&str>, MAX_TAGS>::new();
    for tag in &request.tags {
        tags.push(fbb.create_string(tag));
    }
    let tags = fbb.create_vector(&tags);
    let values = fbb.create_vector(&request.values);
    let table = fbb.start_table();
    // Scalars are written even when 0 so a message's length does not depend on its values.
    fbb.push_slot_always(slot::REQUEST_ID, request.id);
    fbb.push_slot_always(slot::REQUEST_USER, user);
    fbb.push_slot_always(slot::REQUEST_METHOD, method);
    fbb.push_slot_always(slot::REQUEST_TAGS, tags);
    fbb.push_slot_always(slot::REQUEST_VALUES, values);
    fbb.push_slot_always(slot::REQUEST_NESTED, nested);
    let root = fbb.end_table(table);
    fbb.finish_minimal(root);
}

/// Builds a reply; `fbb.finished_data()` is then the message.
pub(super) fn build_reply(fbb: &mut FlatBufferBuilder<'static>, reply: &Reply<'_>) -> Result<()> {
    let bound = REPLY_FIXED_BOUND
        .saturating_add(reply.nested.name.len())
        .saturating_add(reply.message.len());
    if bound > SCRATCH {
        return Err(TranscodeError::TooLarge);
    }
    fbb.reset();
    let nested = build_inner(fbb, &reply.nested);
    let message = fbb.create_string(reply.message);
    let table = fbb.start_table();
    fbb.push_slot_always(slot::REPLY_ID, reply.id);
    fbb.push_slot_always(slot::REPLY_SUM, reply.sum);
    fbb.push_slot_always(slot::REPLY_STATUS, reply.status);
    fbb.push_slot_always(slot::REPLY_COUNT, reply.count);
    fbb.push_slot_always(slot::REPLY_NESTED, nested);
    fbb.push_slot_always(slot::REPLY_MESSAGE, message);
    let root = fbb.end_table(table);
    fbb.finish_minimal(root);
    Ok(())
}

fn build_inner(
    fbb: &mut FlatBufferBuilder<'static>,
    inner: &Inner<'_>,
) -> WIPOffset<flatbuffers::TableFinishedWIPOffset> {
    let name = fbb.create_string(inner.name);
    let table = fbb.start_table();
    fbb.push_slot_always(slot::INNER_SCORE, inner.score);
    fbb.push_slot_always(slot::INNER_NAME, name);
    fbb.push_slot_always(slot::INNER_FLAGS, inner.flags);
    fbb.end_table(table)
}

pub(super) fn read_request(buf: &[u8]) -> Result<Request<'_>> {
    let root = Table::root(buf)?;
    let mut tags = ArrayVec::new();
    if let Some(vector) = root.vector(slot::REQUEST_TAGS, 4)? {
        if vector.len > MAX_TAGS {
            return Err(BAD);
        }
        for i in 0..vector.len {
            tags.push(str_at(buf, indirect(buf, vector.element(i)?)?)?);
        }
    }
    let mut values = ArrayVec::new();
    if let Some(vector) = root.vector(slot::REQUEST_VALUES, 8)? {
        if vector.len > MAX_VALUES {
            return Err(BAD);
        }
        for i in 0..vector.len {
            values.push(i64::from_le_bytes(bytes(buf, vector.element(i)?)?));
        }
    }
    Ok(Request {
        id: root.u64(slot::REQUEST_ID)?,
        user: root.str(slot::REQUEST_USER)?,
        method: root.str(slot::REQUEST_METHOD)?,
        tags,
        values,
        nested: read_inner(root.table(slot::REQUEST_NESTED)?)?,
    })
}

pub(super) fn read_reply(buf: &[u8]) -> Result<Reply<'_>> {
    let root = Table::root(buf)?;
    Ok(Reply {
        id: root.u64(slot::REPLY_ID)?,
        status: root.u32(slot::REPLY_STATUS)?,
        sum: root.i64(slot::REPLY_SUM)?,
        count: root.u32(slot::REPLY_COUNT)?,
        nested: read_inner(root.table(slot::REPLY_NESTED)?)?,
        message: root.str(slot::REPLY_MESSAGE)?,
    })
}

fn read_inner(table: Option<Table<'_>>) -> Result<Inner<'_>> {
    let Some(t) = table else {
        return Ok(Inner::default());
    };
    Ok(Inner {
        name: t.str(slot::INNER_NAME)?,
        score: t.i64(slot::INNER_SCORE)?,
        flags: t.u32(slot::INNER_FLAGS)?,
    })
}

/// `N` bytes at `pos`, or malformed if they run past the end.
fn bytes<const N: usize>(buf: &[u8], pos: usize) -> Result<[u8; N]> {
    let end = pos.checked_add(N).ok_or(BAD)?;
    buf.get(pos..end).and_then(|b| b.try_into().ok()).ok_or(BAD)
}

fn u16_at(buf: &[u8], pos: usize) -> Result<usize> {
    Ok(u16::from_le_bytes(bytes(buf, pos)?).into())
}

fn u32_at(buf: &[u8], pos: usize) -> Result<usize> {
    usize::try_from(u32::from_le_bytes(bytes(buf, pos)?)).map_err(|_| BAD)
}

/// Follows the unsigned offset stored at `pos` (relative to `pos`, as everywhere in the format).
fn indirect(buf: &[u8], pos: usize) -> Result<usize> {
    pos.checked_add(u32_at(buf, pos)?).ok_or(BAD)
}

/// The string at `pos`: a u32 length, the bytes, and the NUL terminator the format requires.
fn str_at(buf: &[u8], pos: usize) -> Result<&str> {
    let len = u32_at(buf, pos)?;
    let start = pos.checked_add(4).ok_or(BAD)?;
    let end = start.checked_add(len).ok_or(BAD)?;
    let text = buf.get(start..end).ok_or(BAD)?;
    if buf.get(end) != Some(&0) {
        return Err(BAD);
    }
    std::str::from_utf8(text).map_err(|_| BAD)
}

/// A vector's elements: `len` of them from `start`, all in bounds (checked on construction).
#[derive(Clone, Copy)]
struct Vector {
    start: usize,
    len: usize,
    elem: usize,
}

impl Vector {
    fn element(&self, i: usize) -> Result<usize> {
        if i >= self.len {
            return Err(BAD);
        }
        Ok(self.start + i * self.elem)
    }
}

/// A table whose vtable and inline part lie inside the buffer.
#[derive(Clone, Copy)]
struct Table<'a> {
    buf: &'a [u8],
    pos: usize,
    vtable: usize,
    vtable_len: usize,
    table_len: usize,
}

impl<'a> Table<'a> {
    fn root(buf: &'a [u8]) -> Result<Table<'a>> {
        Table::at(buf, u32_at(buf, 0)?)
    }

    fn at(buf: &'a [u8], pos: usize) -> Result<Table<'a>> {
        // The table starts with a signed offset back to its vtable.
        let back = i64::from(i32::from_le_bytes(bytes(buf, pos)?));
        let pos_signed = i64::try_from(pos).map_err(|_| BAD)?;
        let vtable = usize::try_from(pos_signed - back).map_err(|_| BAD)?;
        let vtable_len = u16_at(buf, vtable)?;
        let table_len = u16_at(buf, vtable.checked_add(2).ok_or(BAD)?)?;
        if vtable_len < 4 || vtable_len % 2 != 0 || table_len < 4 {
            return Err(BAD);
        }
        let vtable_end = vtable.checked_add(vtable_len).ok_or(BAD)?;
        let table_end = pos.checked_add(table_len).ok_or(BAD)?;
        if vtable_end > buf.len() || table_end > buf.len() {
            return Err(BAD);
        }
        Ok(Table {
            buf,
            pos,
            vtable,
            vtable_len,
            table_len,
        })
    }

    /// Where the field of vtable slot `slot` lies, if present, checked to hold `size` bytes
    /// inside the table.
    fn field(&self, slot: u16, size: usize) -> Result<Option<usize>> {
        let slot = usize::from(slot);
        if slot + 2 > self.vtable_len {
            return Ok(None);
        }
        let offset = u16_at(self.buf, self.vtable + slot)?;
        if offset == 0 {
            return Ok(None);
        }
        if offset < 4 || offset + size > self.table_len {
            return Err(BAD);
        }
        Ok(Some(self.pos + offset))
    }

    fn scalar<const N: usize>(&self, slot: u16) -> Result<[u8; N]> {
        match self.field(slot, N)? {
            Some(pos) => bytes(self.buf, pos),
            None => Ok([0; N]),
        }
    }

    fn u64(&self, slot: u16) -> Result<u64> {
        self.scalar(slot).map(u64::from_le_bytes)
    }

    fn i64(&self, slot: u16) -> Result<i64> {
        self.scalar(slot).map(i64::from_le_bytes)
    }

    fn u32(&self, slot: u16) -> Result<u32> {
        self.scalar(slot).map(u32::from_le_bytes)
    }

    fn target(&self, slot: u16) -> Result<Option<usize>> {
        match self.field(slot, 4)? {
            Some(pos) => indirect(self.buf, pos).map(Some),
            None => Ok(None),
        }
    }

    fn str(&self, slot: u16) -> Result<&'a str> {
        match self.target(slot)? {
            Some(pos) => str_at(self.buf, pos),
            None => Ok(""),
        }
    }

    fn table(&self, slot: u16) -> Result<Option<Table<'a>>> {
        match self.target(slot)? {
            Some(pos) => Table::at(self.buf, pos).map(Some),
            None => Ok(None),
        }
    }

    fn vector(&self, slot: u16, elem: usize) -> Result<Option<Vector>> {
        let Some(pos) = self.target(slot)? else {
            return Ok(None);
        };
        let len = u32_at(self.buf, pos)?;
        let start = pos.checked_add(4).ok_or(BAD)?;
        let end = len
            .checked_mul(elem)
            .and_then(|n| n.checked_add(start))
            .ok_or(BAD)?;
        if end > self.buf.len() {
            return Err(BAD);
        }
        Ok(Some(Vector { start, len, elem }))
    }
}
