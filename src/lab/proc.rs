//! Child processes of the lab: spawned in their own process group (so a Ctrl-C reaches the lab,
//! which stops them in order), stdout collected line by line, killed on drop whatever happens.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::os::unix::process::{CommandExt, ExitStatusExt};

fn code(st: std::process::ExitStatus) -> i32 {
    st.code()
        .unwrap_or_else(|| -st.signal().unwrap_or(i32::MAX))
}

use crate::os::process::{self, Signal};
use crate::os::signal;

/// Runs a short command to completion; Err carries its stderr.
pub fn run(prog: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{prog}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{prog} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A running child. Its stdout lines arrive on a channel and are also kept; its stderr is
/// kept for error messages.
pub struct Proc {
    pub what: String,
    child: Option<Child>,
    lines: Receiver<String>,
    pub stdout: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

/// How a wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited {
    /// The exit code; a death by signal N is -N.
    Exited(i32),
    TimedOut,
    Interrupted,
}

impl Proc {
    pub fn spawn(what: &str, argv: &[String]) -> Result<Proc, String> {
        let (prog, args) = argv.split_first().ok_or("empty command")?;
        let mut child = Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("{what}: cannot start {prog}: {e}"))?;
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout is piped");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr is piped");
        let keep = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut s = keep.lock().unwrap_or_else(|e| e.into_inner());
                // Keep the tail: errors come last, and EAL logs can be long.
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
                if s.len() > 64 * 1024 {
                    let cut = s.len() - 32 * 1024;
                    let cut = (cut..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(0);
                    s.drain(..cut);
                }
            }
        });
        Ok(Proc {
            what: what.to_string(),
            child: Some(child),
            lines: rx,
            stdout: Vec::new(),
            stderr,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The last `n` lines of stderr, for an error message.
    pub fn stderr_tail(&self, n: usize) -> String {
        let s = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Reads stdout until a line satisfies `pred`, the child exits, time runs out or Ctrl-C.
    pub fn wait_line(
        &mut self,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if signal::stop_requested() {
                return Err("interrupted".into());
            }
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(l) => {
                    let hit = pred(&l);
                    self.stdout.push(l);
                    if hit {
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(c) = self.child.as_mut() {
                        if let Ok(Some(st)) = c.try_wait() {
                            return Err(format!(
                                "{} exited ({st}) before it was ready: {}",
                                self.what,
                                self.stderr_tail(6)
                            ));
                        }
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "{} closed its output before it was ready: {}",
                        self.what,
                        self.stderr_tail(6)
                    ))
                }
            }
            if start.elapsed() > limit {
                return Err(format!(
                    "{} not ready after {:.0} s: {}",
                    self.what,
                    limit.as_secs_f64(),
                    self.stderr_tail(6)
                ));
            }
        }
    }

    fn drain(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            self.stdout.push(l);
        }
    }

    /// The child has exited: collect what its reader thread still holds (the last lines,
    /// usually the final report), then say how it ended.
    fn reaped(&mut self, st: std::process::ExitStatus) -> Waited {
        self.child = None;
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(500) {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(l) => self.stdout.push(l),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        Waited::Exited(code(st))
    }

    /// Waits for the child to exit by itself, up to `limit`; Ctrl-C ends the wait early.
    pub fn wait(&mut self, limit: Duration) -> Waited {
        let start = Instant::now();
        loop {
            self.drain();
            let Some(c) = self.child.as_mut() else {
                return Waited::Exited(-1);
            };
            if let Ok(Some(st)) = c.try_wait() {
                return self.reaped(st);
            }
            if signal::stop_requested() {
                return Waited::Interrupted;
            }
            if start.elapsed() > limit {
                return Waited::TimedOut;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` to the child: our own and not yet reaped (`child` is cleared when it
    /// is), so its pid cannot have been reused.
    pub fn signal(&self, sig: Signal) {
        if let Some(pid) = self.pid() {
            // A child that has just exited cannot be signalled; its wait says how it ended.
            let _ = process::signal(pid, sig);
        }
    }

    /// SIGINT, then up to `grace` for a clean exit (final report), then SIGKILL.
    pub fn stop(&mut self, grace: Duration) -> Waited {
        self.signal(Signal::Int);
        // A stop must finish even after Ctrl-C: wait on our own clock.
        let start = Instant::now();
        loop {
            self.drain();
            let Some(c) = self.child.as_mut() else {
                return Waited::Exited(-1);
            };
            if let Ok(Some(st)) = c.try_wait() {
                return self.reaped(st);
            }
            if start.elapsed() > grace {
                self.kill();
                return Waited::TimedOut;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.is_some() {
            // Give a DPDK process the chance to release its port (af_xdp detaches its XDP
            // program on close), then make sure.
            self.stop(Duration::from_secs(3));
        }
    }
}
