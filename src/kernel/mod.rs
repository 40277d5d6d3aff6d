//! `bypass kernel-serve`: kernel-stack baseline servers speaking RPC v1 (docs/protocol.md)
//! over UDP, TCP and unix sockets, with the same request rules as the fast path's
//! `rpc-server` node, so the lab can compare the kernel stack and the bypass path with the
//! same client. UDP also answers sockperf ping-pong.
//!
//! Backends: `blocking` (one blocking receive per message), `busy` (non-blocking sockets
//! polled in a loop) and, for UDP, `batch` (recvmmsg/sendmmsg). Threads are shared-nothing:
//! each owns its sockets (UDP: one SO_REUSEPORT socket per thread; TCP/unix: the
//! connections it accepted), buffers and counters; stream threads share only how many
//! connections each holds, so a new one goes to the thread holding fewest.
//!
//! `bypass kernel-relay` ([`relay`]) is the user-space proxy in front of them: the sidecar
//! baseline.
#![forbid(unsafe_code)]

pub mod args;
pub mod config;
mod conn;
pub mod counters;
pub mod framing;
pub mod handler;
mod mmsg;
pub mod relay;
pub mod report;
mod socket;
mod stream;
mod udp;

use std::fmt;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::options::FieldError;
use crate::os::{process, signal};
use crate::service::Hold;

pub use crate::options::{Backend, Proto};
pub use args::KernelServeArgs;
pub use config::{KernelConfig, Listen};
pub use counters::{Counters, DropReason};
pub use relay::KernelRelayArgs;
pub use report::{FinalReport, ThreadReport};

use handler::{Handler, Protocol};
use stream::Listener;
use udp::Endpoint;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelError {
    /// A command-line value is wrong; the field is the flag.
    Invalid(FieldError),
    /// A socket could not be set up, or a worker failed.
    Io(String),
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // `--flag: why`, as the load client says it.
            KernelError::Invalid(e) => write!(f, "{}: {}", e.field, e.message),
            KernelError::Io(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for KernelError {}

/// The `bypass kernel-serve` command: flags -> config, serve until stopped, print the report.
pub fn run(args: KernelServeArgs) -> ExitCode {
    let result = KernelConfig::from_args(&args).and_then(|cfg| {
        let (report, worker_error) = serve(&cfg)?;
        let mut out = io::stdout().lock();
        let printed = if cfg.json {
            writeln!(out, "{}", report.to_json())
        } else {
            write!(out, "{}", report.human())
        };
        printed
            .and_then(|_| out.flush())
            .map_err(|e| KernelError::Io(format!("stdout: {e}")))?;
        worker_error.map_or(Ok(()), Err)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bypass kernel-serve: {e}");
            match e {
                KernelError::Invalid(e) => e.exit_code(),
                KernelError::Io(_) => ExitCode::FAILURE,
            }
        }
    }
}

/// What a worker thread hands back when it ends.
struct Outcome {
    counters: Counters,
    connections: u64,
    error: Option<String>,
}

/// A worker thread and the report slot its counters go to.
struct Worker {
    index: usize,
    handle: JoinHandle<Outcome>,
}

/// Serves until SIGINT/SIGTERM or the configured duration. Returns the final report and,
/// if a worker failed, its error (the report still covers every thread).
pub fn serve(cfg: &KernelConfig) -> Result<(FinalReport, Option<KernelError>), KernelError> {
    signal::install_stop_handlers()
        .map_err(|e| KernelError::Io(format!("signal handlers: {e}")))?;
    let base = Handler::with_service(cfg.spin_max_ns, cfg.service, 0);
    let mut workers = Vec::new();
    let mut shown = Vec::new();
    let mut unix_guard = None;
    for r in 0..cfg.replicas {
        let (w, s, g) = start(&cfg.replica(r), base.for_thread(0), u64::from(r) << 16)?;
        // Replica r's threads follow replica r-1's in the report.
        let first = usize::from(r) * cfg.threads;
        workers.extend(w.into_iter().map(|w| Worker {
            index: first + w.index,
            ..w
        }));
        shown.push(s);
        unix_guard = unix_guard.or(g);
    }
    let shown = shown.join(",");
    let start = Instant::now();
    {
        let mut out = io::stdout().lock();
        // The one line tests and the lab wait for: every socket is bound by now.
        let _ = writeln!(out, "ready {} {shown}", cfg.proto);
        let _ = out.flush();
    }
    while !signal::stop_requested() {
        if cfg.duration.is_some_and(|d| start.elapsed() >= d) {
            signal::request_stop();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (per_thread, connections, error) = join(cfg, workers);
    drop(unix_guard);
    let report = FinalReport {
        proto: cfg.proto,
        backend: cfg.backend,
        threads: cfg.threads * usize::from(cfg.replicas),
        elapsed: start.elapsed(),
        connections,
        reasons: reasons(cfg),
        per_thread,
        service: cfg.service.map(|m| m.to_string()),
    };
    Ok((report, error))
}

/// Binds and starts every worker; returns them, the address or path to show, and the guard
/// that removes a unix socket file at the end.
/// `seeds`: the first of the service-time seed indexes its threads take.
fn start(
    cfg: &KernelConfig,
    handler: Handler,
    seeds: u64,
) -> Result<(Vec<Worker>, String, Option<RemoveOnDrop>), KernelError> {
    let handler = Seeded(handler, seeds);
    match (&cfg.listen, cfg.proto) {
        (Listen::Inet(addr), Proto::Udp) => {
            let (workers, shown) = start_udp(cfg, *addr, handler)?;
            Ok((workers, shown, None))
        }
        (Listen::Inet(addr), _) => {
            let l = TcpListener::bind(addr)
                .map_err(|e| KernelError::Io(format!("--bind {addr}: {e}")))?;
            let shown = l.local_addr().map_or(addr.to_string(), |a| a.to_string());
            Ok((start_stream(cfg, Listener::Tcp(l), handler)?, shown, None))
        }
        (Listen::Path(p), _) => {
            let l = bind_unix(p, "--path")?;
            let guard = RemoveOnDrop(p.clone());
            let workers = start_stream(cfg, Listener::Unix(l), handler)?;
            Ok((workers, p.display().to_string(), Some(guard)))
        }
    }
}

/// A handler and the seed index of its first thread: each thread takes its own copy, so
/// no two threads (or replicas) share a sequence of draws.
struct Seeded(Handler, u64);

impl Seeded {
    fn thread(&self, i: usize) -> Handler {
        self.0.for_thread(self.1 + i as u64)
    }
}

/// Waits for every worker; returns the counters per thread, the connections accepted and the
/// first error.
fn join(cfg: &KernelConfig, workers: Vec<Worker>) -> (Vec<ThreadReport>, u64, Option<KernelError>) {
    let mut per_thread: Vec<ThreadReport> = (0..cfg.threads * usize::from(cfg.replicas))
        .map(|i| ThreadReport {
            thread: i,
            cpu: cfg.cpu_of(i % cfg.threads),
            counters: Counters::default(),
        })
        .collect();
    let mut connections = 0;
    let mut error = None;
    for w in workers {
        match w.handle.join() {
            Ok(o) => {
                per_thread[w.index].counters.add(&o.counters);
                connections += o.connections;
                if let Some(e) = o.error {
                    error.get_or_insert(KernelError::Io(format!("thread {}: {e}", w.index)));
                }
            }
            Err(_) => {
                error.get_or_insert(KernelError::Io(format!("thread {} panicked", w.index)));
            }
        }
    }
    (per_thread, connections, error)
}

/// The drop reasons this server can count: its report lists each, even at 0.
fn reasons(cfg: &KernelConfig) -> Vec<DropReason> {
    match cfg.proto {
        Proto::Udp => {
            let mut r = DropReason::UDP.to_vec();
            if cfg.sockperf_port.is_some() {
                r.extend_from_slice(DropReason::SOCKPERF);
            }
            r
        }
        Proto::Tcp | Proto::Unix => DropReason::STREAM.to_vec(),
    }
}

/// Starts serving thread `index` pinned to its CPU (if any) running `body`; a failure in it
/// stops the whole server, so one broken thread never leaves the others serving a partial
/// service. A sleeping model gets a 1 ns timer slack: the default 50 us would stretch
/// every short held request by up to that much, a delay the model did not draw.
fn spawn(
    cfg: &KernelConfig,
    index: usize,
    body: impl FnOnce(&mut Counters, &mut u64) -> io::Result<()> + Send + 'static,
) -> Result<Worker, KernelError> {
    let cpu = cfg.cpu_of(index);
    let sleeps = cfg.service.is_some_and(|m| m.hold == Hold::Sleep);
    let handle = std::thread::Builder::new()
        .name(format!("kserve-{index}"))
        .spawn(move || {
            let mut o = Outcome {
                counters: Counters::default(),
                connections: 0,
                error: None,
            };
            let r = match cpu {
                Some(c) => socket::pin(c),
                None => Ok(()),
            }
            .and_then(|()| {
                if sleeps {
                    process::set_timer_slack_ns(1)
                } else {
                    Ok(())
                }
            })
            .and_then(|()| body(&mut o.counters, &mut o.connections));
            if let Err(e) = r {
                o.error = Some(e.to_string());
                signal::request_stop();
            }
            o
        })
        .map_err(|e| KernelError::Io(format!("spawning a thread: {e}")))?;
    Ok(Worker { index, handle })
}

/// Binds `threads` sockets to `addr` (SO_REUSEPORT when more than one); a port 0 is
/// resolved by the first bind and reused by the others.
fn bind_udp_group(addr: SocketAddr, n: usize, flag: &str) -> Result<Vec<UdpSocket>, KernelError> {
    let err = |e: io::Error| KernelError::Io(format!("{flag} {addr}: {e}"));
    let first = socket::bind_udp(addr, n > 1).map_err(err)?;
    let actual = first.local_addr().map_err(err)?;
    let mut v = vec![first];
    for _ in 1..n {
        v.push(socket::bind_udp(actual, true).map_err(err)?);
    }
    Ok(v)
}

fn start_udp(
    cfg: &KernelConfig,
    addr: SocketAddr,
    h: Seeded,
) -> Result<(Vec<Worker>, String), KernelError> {
    let rpc = bind_udp_group(addr, cfg.threads, "--bind")?;
    let shown = rpc[0]
        .local_addr()
        .map_or(addr.to_string(), |a| a.to_string());
    let mut sockperf: Vec<Option<UdpSocket>> = match cfg.sockperf_port {
        Some(p) => bind_udp_group(
            SocketAddr::new(addr.ip(), p),
            cfg.threads,
            "--sockperf-port",
        )?
        .into_iter()
        .map(Some)
        .collect(),
        None => (0..cfg.threads).map(|_| None).collect(),
    };
    let io = |e: io::Error| KernelError::Io(format!("configuring a udp socket: {e}"));
    let mut workers = Vec::new();
    for (i, sock) in rpc.into_iter().enumerate() {
        let mut eps = vec![Endpoint {
            sock,
            proto: Protocol::Rpc,
        }];
        if let Some(s) = sockperf[i].take() {
            eps.push(Endpoint {
                sock: s,
                proto: Protocol::Sockperf,
            });
        }
        match cfg.backend {
            Backend::Busy => {
                // One loop polls both sockets: a second spinning thread would fight
                // this one for the core.
                for ep in &eps {
                    ep.sock.set_nonblocking(true).map_err(io)?;
                    socket::set_busy_poll(&ep.sock).map_err(io)?;
                }
                let mut h = h.thread(i);
                workers.push(spawn(cfg, i, move |c, _| udp::serve_busy(&eps, &mut h, c))?);
            }
            Backend::Blocking | Backend::Batch => {
                // A thread per socket: a blocked thread costs nothing, and the RPC path
                // stays one plain receive per message (no poll in front of it).
                let batch = cfg.batch;
                let backend = cfg.backend;
                for (k, ep) in eps.into_iter().enumerate() {
                    let mut h = h.thread(2 * i + k);
                    ep.sock
                        .set_read_timeout(Some(stream::STOP_CHECK))
                        .map_err(io)?;
                    workers.push(spawn(cfg, i, move |c, _| match backend {
                        Backend::Batch => mmsg::serve_batch(&ep, batch, &mut h, c),
                        _ => udp::serve_blocking(&ep, &mut h, c),
                    })?);
                }
            }
        }
    }
    Ok((workers, shown))
}

fn start_stream(
    cfg: &KernelConfig,
    listener: Listener,
    h: Seeded,
) -> Result<Vec<Worker>, KernelError> {
    let io = |e: io::Error| KernelError::Io(format!("configuring the listener: {e}"));
    listener.configure().map_err(io)?;
    let balance = stream::Balance::new(cfg.threads);
    let mut workers = Vec::new();
    for i in 0..cfg.threads {
        let l = listener.try_clone().map_err(io)?;
        let set = stream::Settings {
            busy: cfg.backend == Backend::Busy,
            max_connections: cfg.max_connections,
            stall_timeout: cfg.stall_timeout,
            balance: balance.clone(),
            thread: i,
        };
        let mut h = h.thread(i);
        workers.push(spawn(cfg, i, move |c, conns| {
            stream::serve(&l, &set, &mut h, c, conns)
        })?);
    }
    Ok(workers)
}

/// Binds a unix socket at `p` (given by `flag`), replacing a stale socket file (one nobody listens on).
fn bind_unix(p: &Path, flag: &str) -> Result<UnixListener, KernelError> {
    if let Ok(meta) = std::fs::symlink_metadata(p) {
        if !meta.file_type().is_socket() {
            return Err(KernelError::Invalid(FieldError::new(
                flag,
                format!("{} exists and is not a socket", p.display()),
            )));
        }
        if UnixStream::connect(p).is_ok() {
            return Err(KernelError::Io(format!(
                "{flag} {}: a server is already listening there",
                p.display()
            )));
        }
        std::fs::remove_file(p).map_err(|e| {
            KernelError::Io(format!(
                "{flag} {}: removing stale socket: {e}",
                p.display()
            ))
        })?;
    }
    UnixListener::bind(p).map_err(|e| KernelError::Io(format!("{flag} {}: {e}", p.display())))
}

/// Removes the socket file this server created when it stops.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
