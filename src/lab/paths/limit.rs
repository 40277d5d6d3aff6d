//! The floor: `bypass floor` ping-pongs a small message between two threads pinned to the
//! path's client and server CPUs through shared memory. No topology, no server, no kernel:
//! the round trip no IPC on this machine can beat, measured with the same histogram code.

use std::time::Duration;

use super::{shell_line, Ctx, PathError};
use crate::contract::platform::{FloorCommand, FloorReport};
use crate::contract::Kept;
use crate::lab::proc::{Proc, Waited};
use crate::lab::results::{Loss, PathResult};
use crate::lab::scenario::ResolvedPath;
use crate::stats::hlog_read;

pub fn run(ctx: &Ctx, path: &ResolvedPath, res: &mut PathResult) -> Result<(), PathError> {
    let stem = ctx.stem(path);
    let (hlog, hgrm) = (format!("{stem}.hlog"), format!("{stem}.hgrm"));
    let cmd = FloorCommand {
        cpus: (path.client_cpu, path.server_cpu),
        duration_s: path.duration,
        mode: path.floor_mode,
        size: path.size,
        hlog: ctx.out.join(&hlog),
        hgrm: ctx.out.join(&hgrm),
    };
    let mut argv = vec![ctx.bin.to_string_lossy().into_owned()];
    argv.extend(cmd.argv());
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
    let report = Kept::<FloorReport>::parse(&text)
        .map_err(|e| format!("bypass floor printed no floor report ({e}): {text}"))?;
    let s = &report.typed.summary;
    res.latency = Some(s.latency.clone());
    res.loss = Some(Loss {
        sent: s.sent,
        received: s.received,
        lost: s.lost,
    });
    let secs = s.measured_secs;
    res.rate_per_s = (secs > 0.0).then(|| s.latency.count as f64 / secs);
    res.histogram = Some(hlog_read::read_file(&ctx.out.join(&hlog))?);
    res.hgrm = Some(hgrm);
    res.client_report = Some(report.verbatim);
    Ok(())
}
