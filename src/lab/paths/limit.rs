//! The floor: `bypass floor` ping-pongs a small message between two threads pinned to the
//! path's client and server CPUs through shared memory. No topology, no server, no kernel:
//! the round trip no IPC on this machine can beat, measured with the same histogram code.

use std::time::Duration;

use serde_json::Value;

use super::{shell_line, Ctx, PathError};
use crate::lab::proc::{Proc, Waited};
use crate::lab::results::{Latency, Loss, PathResult};
use crate::lab::scenario::ResolvedPath;
use crate::stats::hlog_read;

pub fn run(ctx: &Ctx, path: &ResolvedPath, res: &mut PathResult) -> Result<(), PathError> {
    let stem = ctx.stem(path);
    let (hlog, hgrm) = (format!("{stem}.hlog"), format!("{stem}.hgrm"));
    let argv = vec![
        ctx.bin.to_string_lossy().into_owned(),
        "floor".into(),
        "--cpus".into(),
        format!("{},{}", path.client_cpu, path.server_cpu),
        "--duration".into(),
        format!("{}", path.duration),
        "--mode".into(),
        path.floor_mode.as_str().into(),
        "--size".into(),
        path.size.to_string(),
        "--json".into(),
        "--hlog".into(),
        ctx.out.join(&hlog).to_string_lossy().into_owned(),
        "--hgrm".into(),
        ctx.out.join(&hgrm).to_string_lossy().into_owned(),
    ];
    res.commands.push(shell_line(&argv));
    let mut p = Proc::spawn("bypass floor", &argv)?;
    match p.wait(Duration::from_secs_f64(path.duration + 30.0)) {
        Waited::Exited(0) => {}
        Waited::Interrupted => return Err("interrupted".into()),
        w => {
            return Err(PathError::Failed(format!(
                "bypass floor ended {w:?}: {}",
                p.stderr_tail(6)
            )))
        }
    }
    let text = p.stdout.join("\n");
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("bypass floor printed no JSON ({e}): {text}"))?;
    let s = &v["summary"];
    res.latency = Some(
        Latency::from_load_summary(s)
            .ok_or_else(|| format!("bypass floor summary lacks percentiles: {s}"))?,
    );
    let u = |k: &str| s[k].as_u64().unwrap_or(0);
    res.loss = Some(Loss {
        sent: u("sent"),
        received: u("received"),
        lost: u("lost"),
    });
    let secs = s["measured_secs"].as_f64().unwrap_or(0.0);
    res.rate_per_s = (secs > 0.0).then(|| u("count") as f64 / secs);
    res.histogram = Some(hlog_read::read_file(&ctx.out.join(&hlog))?);
    res.hgrm = Some(hgrm);
    res.client_report = Some(v);
    Ok(())
}
