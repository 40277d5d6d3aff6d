//! Who else ran on the probed CPUs: every task's run time (/proc/PID/task/TID/schedstat, or
//! utime+stime from stat when schedstat is missing) and last CPU (stat field 39, `processor`),
//! read before and after the probe (never during it), and the tasks whose run time grew there.

use std::collections::HashMap;
use std::fs;

use serde::Serialize;

/// One task as read from /proc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStat {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    /// CPU the task last ran on.
    pub processor: usize,
    /// Total run time so far, ns.
    pub run_ns: u64,
}

/// A task that ran on a probed CPU during the probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OtherTask {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub ran_ns: u64,
}

/// Parses a /proc/PID/task/TID/stat line: comm is inside the outermost parentheses (it may
/// hold spaces and parentheses), the numbered fields follow the last ')'.
pub fn parse_stat(text: &str) -> Option<(u32, String, usize, u64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let tid = text[..open].trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_string();
    // Fields after ')' start at field 3 (state); utime is 14, stime 15, processor 39.
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).and_then(|s| s.parse::<u64>().ok());
    let ticks = field(14)? + field(15)?;
    let processor = field(39)? as usize;
    Some((tid, comm, processor, ticks))
}

/// Run time in ns from a schedstat line (`run_ns wait_ns timeslices`).
pub fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

fn clock_ticks_ns() -> u64 {
    // USER_HZ is 100 on every Linux ABI in use; stat's utime/stime count in it.
    10_000_000
}

fn read_task(pid: u32, tid_dir: &std::path::Path) -> Option<TaskStat> {
    let stat = fs::read_to_string(tid_dir.join("stat")).ok()?;
    let (tid, comm, processor, ticks) = parse_stat(&stat)?;
    let run_ns = fs::read_to_string(tid_dir.join("schedstat"))
        .ok()
        .and_then(|s| parse_schedstat(&s))
        .unwrap_or(ticks * clock_ticks_ns());
    Some(TaskStat {
        pid,
        tid,
        comm,
        processor,
        run_ns,
    })
}

/// Every task on the system; tasks that vanish while being read are skipped.
pub fn snapshot() -> HashMap<u32, TaskStat> {
    let mut out = HashMap::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(tasks) = fs::read_dir(p.path().join("task")) else {
            continue;
        };
        for t in tasks.flatten() {
            if let Some(ts) = read_task(pid, &t.path()) {
                out.insert(ts.tid, ts);
            }
        }
    }
    out
}

/// Tasks not of process `own_pid` whose run time grew between the snapshots and whose last CPU
/// (after the probe) is `cpu`, longest-running first. A task that ran on `cpu` and then moved
/// is missed and one that moved there is charged in full: /proc keeps no per-CPU run time.
pub fn ran_on(
    before: &HashMap<u32, TaskStat>,
    after: &HashMap<u32, TaskStat>,
    cpu: usize,
    own_pid: u32,
) -> Vec<OtherTask> {
    let mut v: Vec<OtherTask> = after
        .values()
        .filter(|t| t.pid != own_pid && t.processor == cpu)
        .filter_map(|t| {
            let was = before.get(&t.tid).map_or(0, |b| b.run_ns);
            let ran_ns = t.run_ns.saturating_sub(was);
            (ran_ns > 0).then(|| OtherTask {
                pid: t.pid,
                tid: t.tid,
                comm: t.comm.clone(),
                ran_ns,
            })
        })
        .collect();
    v.sort_by(|a, b| b.ran_ns.cmp(&a.ran_ns).then(a.tid.cmp(&b.tid)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_awkward_comm() {
        // Field 39 (processor) is 1; utime 7, stime 3.
        let mut line = String::from("4242 (my (odd) name) S");
        for n in 4..=52 {
            let v = match n {
                14 => 7,
                15 => 3,
                39 => 1,
                _ => 0,
            };
            line.push_str(&format!(" {v}"));
        }
        assert_eq!(
            parse_stat(&line),
            Some((4242, "my (odd) name".to_string(), 1, 10))
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_schedstat("123456 789 10\n"), Some(123_456));
    }

    fn task(pid: u32, tid: u32, cpu: usize, run_ns: u64) -> TaskStat {
        TaskStat {
            pid,
            tid,
            comm: format!("t{tid}"),
            processor: cpu,
            run_ns,
        }
    }

    #[test]
    fn deltas_exclude_own_process_idle_tasks_and_other_cpus() {
        let before: HashMap<u32, TaskStat> = [task(1, 1, 0, 100), task(2, 2, 0, 500)]
            .into_iter()
            .map(|t| (t.tid, t))
            .collect();
        let after: HashMap<u32, TaskStat> = [
            task(1, 1, 0, 400),   // ran 300 on cpu 0
            task(2, 2, 0, 500),   // did not run
            task(3, 3, 0, 50),    // new, ran 50
            task(4, 4, 1, 1000),  // other cpu
            task(9, 10, 0, 9999), // the probe itself
        ]
        .into_iter()
        .map(|t| (t.tid, t))
        .collect();
        let got = ran_on(&before, &after, 0, 9);
        let ids: Vec<(u32, u64)> = got.iter().map(|t| (t.tid, t.ran_ns)).collect();
        assert_eq!(ids, vec![(1, 300), (3, 50)]);
    }

    #[test]
    fn snapshot_sees_this_thread() {
        let s = snapshot();
        let me = std::process::id();
        assert!(
            s.values().any(|t| t.pid == me),
            "own process missing from /proc"
        );
    }
}
