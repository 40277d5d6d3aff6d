//! TCP and unix stream backends. Each worker thread holds the connections it accepted in
//! one level-triggered epoll set with the listener, so a client that is idle, stops halfway
//! through a message or never reads its replies holds a slot and stalls nobody else. A new
//! connection goes to the thread holding fewest (the others stop watching the listener).
//!
//! A read takes whatever bytes are there; every whole message in them is answered and the
//! replies leave in one write; a partial message is kept for the connection's next read
//! ([`super::conn`]). `blocking` sleeps in epoll_wait (waking at least every 100 ms to
//! notice a stop request); `busy` spins on epoll_wait with a zero timeout. Buffers are
//! allocated once per thread, plus what a connection holds of a partial message or of
//! replies its peer is slow to take.

use std::io::{self, ErrorKind};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::os::epoll::{Epoll, Interest, Ready};
use crate::os::signal;

use super::conn::{Conn, Scratch, Sock, State};
use super::counters::{CloseReason, Counters};
use super::framing::SCRATCH;
use super::handler::Handler;

/// How long a blocking wait lasts before checking for a stop request and stalled peers.
pub const STOP_CHECK: Duration = Duration::from_millis(100);
/// Readiness reports taken per wait.
const EVENTS: usize = 64;
/// Connections accepted per wake-up of the listener, so a flood of connects cannot starve
/// the connections already held.
const ACCEPT_BURST: usize = 64;
/// The listener's epoll token; a connection's is its slot.
const LISTENER: u64 = u64::MAX;

pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    pub fn try_clone(&self) -> io::Result<Listener> {
        Ok(match self {
            Listener::Tcp(l) => Listener::Tcp(l.try_clone()?),
            Listener::Unix(l) => Listener::Unix(l.try_clone()?),
        })
    }

    /// Non-blocking: the threads wait in epoll, and a thread that loses the race for a new
    /// connection must not block in accept.
    pub fn configure(&self) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(true),
            Listener::Unix(l) => l.set_nonblocking(true),
        }
    }

    fn accept(&self) -> io::Result<Sock> {
        Ok(match self {
            Listener::Tcp(l) => Sock::Tcp(l.accept()?.0),
            Listener::Unix(l) => Sock::Unix(l.accept()?.0),
        })
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l) => l.as_raw_fd(),
        }
    }
}

/// How many connections each thread of one listener holds, so the one holding fewest
/// takes the next.
#[derive(Clone)]
pub struct Balance(Arc<[AtomicUsize]>);

impl Balance {
    pub fn new(threads: usize) -> Balance {
        Balance((0..threads).map(|_| AtomicUsize::new(0)).collect())
    }

    /// Whether thread `me` holds no more than any other.
    fn is_least(&self, me: usize) -> bool {
        let mine = self.0[me].load(Ordering::Relaxed);
        self.0.iter().all(|n| n.load(Ordering::Relaxed) >= mine)
    }

    fn set(&self, me: usize, n: usize) {
        self.0[me].store(n, Ordering::Relaxed);
    }
}

/// What a stream thread needs besides its listener.
#[derive(Clone)]
pub struct Settings {
    pub busy: bool,
    pub max_connections: usize,
    pub stall_timeout: Duration,
    pub balance: Balance,
    pub thread: usize,
}

/// One thread's connections, by slot; freed slots are reused.
struct Worker<'a> {
    listener: &'a Listener,
    set: &'a Settings,
    h: &'a mut Handler,
    ep: Epoll,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    open: usize,
    /// Connections whose replies wait for their peer.
    writing: usize,
    scratch: Scratch,
    ready: Vec<Ready>,
    /// Whether the listener is in the epoll set's interest now.
    watching: bool,
    /// After an accept error (e.g. out of fds), the listener is left alone until then.
    pause_until: Option<Instant>,
    last_sweep: Instant,
}

/// Accepts and serves connections until a stop request; counts accepted connections.
pub fn serve(
    listener: &Listener,
    set: &Settings,
    h: &mut Handler,
    c: &mut Counters,
    connections: &mut u64,
) -> io::Result<()> {
    let ep = Epoll::new(EVENTS)?;
    ep.add(listener, LISTENER, Interest::None)?;
    let mut w = Worker {
        listener,
        set,
        h,
        ep,
        conns: Vec::new(),
        free: Vec::new(),
        open: 0,
        writing: 0,
        scratch: Scratch {
            rx: vec![0u8; SCRATCH].into_boxed_slice(),
            tx: vec![0u8; SCRATCH].into_boxed_slice(),
        },
        ready: Vec::with_capacity(EVENTS),
        watching: false,
        pause_until: None,
        last_sweep: Instant::now(),
    };
    let timeout = if set.busy { Duration::ZERO } else { STOP_CHECK };
    while !signal::stop_requested() {
        w.watch_listener()?;
        w.ready.clear();
        w.ready.extend(w.ep.wait(timeout)?);
        for i in 0..w.ready.len() {
            let r = w.ready[i];
            if r.token == LISTENER {
                w.accept_some(c, connections)?;
            } else {
                w.on_ready(r, c)?;
            }
        }
        w.sweep_stalled(c)?;
    }
    w.close_all(c);
    Ok(())
}

impl Worker<'_> {
    /// Watches the listener only while this thread holds fewest connections and accepting
    /// is not paused.
    fn watch_listener(&mut self) -> io::Result<()> {
        if self.pause_until.is_some_and(|t| Instant::now() >= t) {
            self.pause_until = None;
        }
        let want = self.pause_until.is_none() && self.set.balance.is_least(self.set.thread);
        if want != self.watching {
            let i = if want { Interest::Read } else { Interest::None };
            self.ep.modify(self.listener, LISTENER, i)?;
            self.watching = want;
        }
        Ok(())
    }

    fn accept_some(&mut self, c: &mut Counters, connections: &mut u64) -> io::Result<()> {
        for _ in 0..ACCEPT_BURST {
            if !self.set.balance.is_least(self.set.thread) {
                return Ok(());
            }
            let sock = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    // E.g. out of file descriptors: say so, leave the backlog alone for a
                    // while, keep serving the connections held.
                    eprintln!("bypass kernel-serve: accept: {e}");
                    self.pause_until = Some(Instant::now() + STOP_CHECK);
                    return Ok(());
                }
            };
            *connections += 1;
            if self.open >= self.set.max_connections {
                c.close(CloseReason::Refused);
                continue;
            }
            if sock.configure(self.set.busy).is_err() {
                c.close(CloseReason::Reset);
                continue;
            }
            if let Err(e) = self.insert(Conn::new(sock)) {
                // The epoll set is full (max_user_watches) or the kernel is out of memory:
                // this connection goes, the others are served.
                eprintln!("bypass kernel-serve: watching a connection: {e}");
                c.close(CloseReason::Reset);
            }
        }
        Ok(())
    }

    fn insert(&mut self, conn: Conn) -> io::Result<()> {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        if let Err(e) = self.ep.add(&conn.sock, slot as u64, Interest::Read) {
            self.free.push(slot);
            return Err(e);
        }
        self.conns[slot] = Some(conn);
        self.open += 1;
        self.set.balance.set(self.set.thread, self.open);
        Ok(())
    }

    fn on_ready(&mut self, r: Ready, c: &mut Counters) -> io::Result<()> {
        let slot = r.token as usize;
        // A connection closed earlier in this batch may still have a report in it.
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return Ok(());
        };
        let was_writing = conn.is_writing();
        let state = if was_writing {
            if !r.writable {
                return Ok(());
            }
            conn.on_writable(c)
        } else {
            if !r.readable {
                return Ok(());
            }
            conn.on_readable(self.h, c, &mut self.scratch)
        };
        self.settle(slot, was_writing, state, c)
    }

    /// Applies a connection's new state: the epoll interest, or closing it.
    fn settle(&mut self, slot: usize, was: bool, state: State, c: &mut Counters) -> io::Result<()> {
        let now = state == State::Writing;
        match state {
            State::Closed(why) => {
                if was {
                    self.writing -= 1;
                }
                self.remove(slot, why, c);
                return Ok(());
            }
            _ if now == was => return Ok(()),
            _ => {}
        }
        let Some(conn) = self.conns[slot].as_ref() else {
            return Ok(());
        };
        let interest = if now { Interest::Write } else { Interest::Read };
        if self.ep.modify(&conn.sock, slot as u64, interest).is_err() {
            // Only out of kernel memory: better this connection than the server.
            if was {
                self.writing -= 1;
            }
            self.remove(slot, CloseReason::Reset, c);
            return Ok(());
        }
        if now {
            self.writing += 1;
        } else {
            self.writing -= 1;
        }
        Ok(())
    }

    /// Closes the connection in `slot` (its fd leaves the epoll set as it closes).
    fn remove(&mut self, slot: usize, why: CloseReason, c: &mut Counters) {
        if let Some(mut conn) = self.conns[slot].take() {
            conn.close(c, why);
            c.close(why);
            self.free.push(slot);
            self.open -= 1;
            self.set.balance.set(self.set.thread, self.open);
        }
    }

    /// Closes connections whose peer took no reply byte for `--stall-timeout`; looks at
    /// most every [`STOP_CHECK`], and only while some connection waits on its peer.
    fn sweep_stalled(&mut self, c: &mut Counters) -> io::Result<()> {
        if self.writing == 0 || self.last_sweep.elapsed() < STOP_CHECK {
            return Ok(());
        }
        self.last_sweep = Instant::now();
        for slot in 0..self.conns.len() {
            let stalled = self.conns[slot]
                .as_ref()
                .is_some_and(|k| k.is_writing() && k.progress.elapsed() >= self.set.stall_timeout);
            if stalled {
                self.settle(slot, true, State::Closed(CloseReason::Stalled), c)?;
            }
        }
        Ok(())
    }

    /// At a stop: what each connection's peer had sent by then is read once more and
    /// answered as far as the socket takes it, so a stop racing a client's last bytes
    /// still counts them; then every connection still open is closed and counted.
    fn close_all(&mut self, c: &mut Counters) {
        for slot in 0..self.conns.len() {
            let why = match self.conns[slot].as_mut() {
                Some(k) if !k.is_writing() => match k.on_readable(self.h, c, &mut self.scratch) {
                    State::Closed(why) => why,
                    _ => CloseReason::Stopped,
                },
                _ => CloseReason::Stopped,
            };
            self.remove(slot, why, c);
        }
        self.set.balance.set(self.set.thread, 0);
    }
}
