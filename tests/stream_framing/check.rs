//! The stream-framing invariants (issue 11 §1), shared by the `stream_framing` fuzz target
//! and tests/stream_framing_corpus.rs: bytes split at points the input picks go through
//! kernel-serve's connection reassembly ([`Partial`]) and the load client's ([`Stream`] over
//! an in-memory socket). However the bytes are split, each must hand out the same messages
//! and take the same close decision as when fed all at once, with bounded buffering; and the
//! server and the client must agree with each other.
//!
//! Input: byte 0 is a count `k` (at most 16), then `k` little-endian u16 chunk lengths, then
//! the stream bytes, cut into chunks of those lengths in turn (0 reads as 1).

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::rc::Rc;

use bypass::kernel::framing::{Partial, MAX_MESSAGE, SCRATCH};
use bypass::kernel::DropReason;
use bypass::load::stream::{Stream, RX_BUF};
use bypass::load::transport::RpcTransport;

/// The split points and the bytes of one input.
pub fn decode(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&k, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let k = usize::from(k % 17).min(rest.len() / 2);
    let cuts = rest[..2 * k]
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])).max(1))
        .collect();
    (cuts, &rest[2 * k..])
}

/// `bytes` cut into chunks of `cuts` lengths in turn; no cuts: one chunk.
fn chunks<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = cuts
            .get(i % cuts.len().max(1))
            .copied()
            .unwrap_or(usize::MAX);
        let n = n.min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    out
}

/// What a reassembly made of a stream: the messages in order, and how it ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome<E> {
    pub messages: Vec<Vec<u8>>,
    pub end: E,
}

/// The server's end: framing lost (why), or the peer closed with this many bytes held.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum ServerEnd {
    Lost(DropReason),
    Closed { held: usize },
}

/// kernel-serve's reassembly, reads of the chunk sizes (a read never takes more than
/// [`Partial::room`], as the server's reads do not).
pub fn server(chunks: &[&[u8]]) -> Result<Outcome<ServerEnd>, String> {
    let mut p = Partial::default();
    let mut scratch = vec![0u8; SCRATCH];
    let mut messages = Vec::new();
    for chunk in chunks {
        let mut rest = *chunk;
        while !rest.is_empty() {
            let n = rest.len().min(p.room());
            if n < MAX_MESSAGE.min(rest.len()) {
                return Err(format!("{} bytes held leave {n} for a read", p.len()));
            }
            scratch[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            if let Some(why) = p.feed(&mut scratch[..n], |m| messages.push(m.to_vec())) {
                return Ok(Outcome {
                    messages,
                    end: ServerEnd::Lost(why),
                });
            }
            if p.len() >= MAX_MESSAGE {
                return Err(format!("{} bytes held, a whole message's worth", p.len()));
            }
        }
    }
    Ok(Outcome {
        messages,
        end: ServerEnd::Closed { held: p.len() },
    })
}

/// An in-memory socket: each read returns at most the rest of the current chunk; then
/// "nothing yet", then, once `closed`, end of stream. Takes every write.
struct FakeSock {
    chunks: VecDeque<Vec<u8>>,
    /// How much of the front chunk has been read.
    at: usize,
    closed: Rc<Cell<bool>>,
}

impl Read for FakeSock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(front) = self.chunks.front_mut() else {
            return if self.closed.get() {
                Ok(0)
            } else {
                Err(ErrorKind::WouldBlock.into())
            };
        };
        let rest = &front[self.at..];
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        if self.at == front.len() {
            self.chunks.pop_front();
            self.at = 0;
        }
        Ok(n)
    }
}

impl Write for FakeSock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The load client's end: framing lost, or the server closed.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum ClientEnd {
    Lost,
    Closed,
}

/// The load client's reassembly over the same chunks.
pub fn client(chunks: &[&[u8]]) -> Result<Outcome<ClientEnd>, String> {
    let closed = Rc::new(Cell::new(false));
    let sock = FakeSock {
        chunks: chunks.iter().map(|c| c.to_vec()).collect(),
        at: 0,
        closed: closed.clone(),
    };
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let mut s = Stream::new(sock, "fuzz".into());
    let mut out = vec![0u8; MAX_MESSAGE];
    let mut messages = Vec::new();
    let mut would_block = 0;
    // Bounded: each call hands out a message (32 bytes or more) or is one of three ends.
    for _ in 0..total / 32 + 4 {
        if s.buffered() > RX_BUF {
            return Err(format!("{} bytes buffered, over {RX_BUF}", s.buffered()));
        }
        match s.recv(&mut out) {
            Ok(n) => messages.push(out[..n].to_vec()),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                // Once with every chunk read (then the server closes), once for the close.
                would_block += 1;
                if would_block > 2 {
                    return Err("WouldBlock after the close".into());
                }
                // Only reached when the fake socket has no chunk left.
                closed.set(true);
            }
            Err(e) => {
                let msg = e.to_string();
                let end = if msg.contains("framing lost") {
                    ClientEnd::Lost
                } else if msg.contains("closed the connection") {
                    ClientEnd::Closed
                } else {
                    return Err(format!("unexpected error: {msg}"));
                };
                return Ok(Outcome { messages, end });
            }
        }
    }
    Err("the client never reached the end of the stream".into())
}

/// Every invariant for one input; `Err` names the first broken.
pub fn check(data: &[u8]) -> Result<(), String> {
    let (cuts, bytes) = decode(data);
    let whole: Vec<&[u8]> = if bytes.is_empty() {
        vec![]
    } else {
        vec![bytes]
    };
    let split = chunks(bytes, &cuts);
    let (s_whole, s_split) = (server(&whole)?, server(&split)?);
    if s_whole != s_split {
        return Err(format!(
            "server: cut at {cuts:?} gave {:?} after {} messages, whole gave {:?} after {}",
            s_split.end,
            s_split.messages.len(),
            s_whole.end,
            s_whole.messages.len()
        ));
    }
    let (c_whole, c_split) = (client(&whole)?, client(&split)?);
    if c_whole != c_split {
        return Err(format!(
            "client: cut at {cuts:?} gave {:?} after {} messages, whole gave {:?} after {}",
            c_split.end,
            c_split.messages.len(),
            c_whole.end,
            c_whole.messages.len()
        ));
    }
    if s_whole.messages != c_whole.messages {
        return Err("the server and the client framed different messages".into());
    }
    let agree = matches!(
        (s_whole.end, c_whole.end),
        (ServerEnd::Lost(_), ClientEnd::Lost) | (ServerEnd::Closed { .. }, ClientEnd::Closed)
    );
    if !agree {
        return Err(format!(
            "the server ended {:?}, the client {:?}",
            s_whole.end, c_whole.end
        ));
    }
    Ok(())
}
