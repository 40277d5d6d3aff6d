//! CPU lists (`0,2-3`), checked against this process's affinity, and pinning threads to them.

use super::NoiseError;

/// CPUs this process may run on, ascending.
pub fn available() -> Vec<usize> {
    let mut v: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .iter()
        .map(|c| c.id)
        .collect();
    v.sort_unstable();
    v
}

/// Parses `0,1` / `0-3` / `0,2-3` into a list without duplicates, in the order given.
pub fn parse(flag: &'static str, text: &str) -> Result<Vec<usize>, NoiseError> {
    let num = |s: &str| {
        s.trim()
            .parse::<usize>()
            .map_err(|_| NoiseError::invalid(flag, format!("'{s}' is not a CPU number")))
    };
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let range = match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(NoiseError::invalid(
                        flag,
                        format!("range '{part}' runs backwards"),
                    ));
                }
                a..=b
            }
            None => {
                let c = num(part)?;
                c..=c
            }
        };
        for c in range {
            if cpus.contains(&c) {
                return Err(NoiseError::invalid(
                    flag,
                    format!("cpu {c} is listed twice"),
                ));
            }
            cpus.push(c);
        }
    }
    if cpus.is_empty() {
        return Err(NoiseError::invalid(flag, "the CPU list is empty"));
    }
    Ok(cpus)
}

/// Errs naming `flag` when a CPU is not one this process may run on.
pub fn check_available(flag: &'static str, cpus: &[usize]) -> Result<(), NoiseError> {
    let have = available();
    for c in cpus {
        if !have.contains(c) {
            let list: Vec<String> = have.iter().map(|c| c.to_string()).collect();
            return Err(NoiseError::invalid(
                flag,
                format!(
                    "cpu {c} is not available to this process (available: {})",
                    list.join(",")
                ),
            ));
        }
    }
    Ok(())
}

/// [`parse`] then [`check_available`].
pub fn parse_available(flag: &'static str, text: &str) -> Result<Vec<usize>, NoiseError> {
    let cpus = parse(flag, text)?;
    check_available(flag, &cpus)?;
    Ok(cpus)
}

/// Pins the calling thread to `cpu`.
pub fn pin(cpu: usize) -> Result<(), NoiseError> {
    if core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        Ok(())
    } else {
        Err(NoiseError::Io(format!(
            "could not pin a thread to cpu {cpu}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ranges() {
        assert_eq!(parse("--cpus", "0,2-4").unwrap(), vec![0, 2, 3, 4]);
        assert_eq!(parse("--cpus", " 1 ").unwrap(), vec![1]);
        for bad in ["", ",", "a", "3-1", "1,1", "0-2,2"] {
            match parse("--cpus", bad) {
                Err(NoiseError::Invalid(e)) => assert_eq!(e.field, "--cpus"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_cpu_is_refused() {
        let err = parse_available("--cpus", "100000").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("--cpus: cpu 100000 is not available"));
    }
}
