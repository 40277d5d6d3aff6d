//! The TSC: the one read of it every program and the fast path use, what the CPU states about
//! it (CPUID), and the one set of tick <-> nanosecond conversions.
//!
//! Off x86_64, and under Miri (which cannot execute RDTSC or CPUID), [`read`] counts nanoseconds
//! since its first use, so callers there pass a frequency of [`NS_PER_SEC`].

pub const NS_PER_SEC: u64 = 1_000_000_000;

/// The current TSC value (no ordering against earlier instructions: the cheap read the packet
/// path stamps bursts with).
#[inline(always)]
pub fn read() -> u64 {
    arch::read()
}

/// [`read`], taken only after every earlier instruction has completed (`lfence; rdtsc`).
#[inline(always)]
pub fn read_ordered() -> u64 {
    arch::read_ordered()
}

/// Ticks to nanoseconds, exact and saturating; 0 when the frequency is unknown (0).
#[inline]
pub fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    if hz == 0 {
        return 0;
    }
    let ns = u128::from(ticks) * u128::from(NS_PER_SEC) / u128::from(hz);
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Nanoseconds to ticks, rounded up (a wait is never shorter than asked) and saturating.
#[inline]
pub fn ns_to_ticks(ns: u64, hz: u64) -> u64 {
    let t = (u128::from(ns) * u128::from(hz)).div_ceil(u128::from(NS_PER_SEC));
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// Ticks to nanoseconds by one multiply and shift (`ns = ticks * mult >> 32`), for
/// conversions done per read or per burst, where [`ticks_to_ns`]'s 128-bit division costs;
/// the rounding of `mult` errs by under 1 ppb at GHz frequencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickScale {
    mult: u64,
}

impl TickScale {
    /// For a frequency in Hz; an unknown one (0) converts everything to 0.
    pub fn from_hz(hz: u64) -> TickScale {
        if hz == 0 {
            return TickScale { mult: 0 };
        }
        // At most 1e9 * 2^32 (hz = 1), which fits a u64.
        let mult = ((u128::from(NS_PER_SEC) << 32) + u128::from(hz) / 2) / u128::from(hz);
        TickScale { mult: mult as u64 }
    }

    /// For a (calibrated) frequency in MHz.
    pub fn from_mhz(mhz: f64) -> TickScale {
        TickScale {
            mult: (1000.0 / mhz * 4_294_967_296.0).round() as u64,
        }
    }

    #[inline]
    pub fn ticks_to_ns(self, ticks: u64) -> u64 {
        let ns = (u128::from(ticks) * u128::from(self.mult)) >> 32;
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

/// Whether the CPU says its TSC is invariant (CPUID 0x80000007, EDX bit 8).
pub fn invariant() -> Result<(), &'static str> {
    arch::invariant()
}

/// Frequencies the CPU states for its TSC, MHz, when it states them.
pub mod stated {
    /// CPUID leaf 0x15: crystal Hz x ratio.
    pub fn cpuid_crystal_mhz() -> Option<f64> {
        super::arch::cpuid_crystal_mhz()
    }

    /// CPUID leaf 0x16: the base frequency (the TSC's on most Intel parts).
    pub fn cpuid_base_mhz() -> Option<f64> {
        super::arch::cpuid_base_mhz()
    }

    /// The hypervisor's timing leaf 0x40000010.
    pub fn hypervisor_tsc_mhz() -> Option<f64> {
        super::arch::hypervisor_tsc_mhz()
    }
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod arch {
    use core::arch::x86_64::{__cpuid, _mm_lfence, _rdtsc, CpuidResult};

    #[inline(always)]
    pub fn read() -> u64 {
        // SAFETY: RDTSC exists on every x86_64 CPU and only reads a counter.
        unsafe { _rdtsc() }
    }

    #[inline(always)]
    pub fn read_ordered() -> u64 {
        // SAFETY: LFENCE (SSE2, part of the x86_64 baseline) and RDTSC exist on every x86_64
        // CPU; LFENCE only waits for earlier instructions, RDTSC only reads a counter.
        unsafe {
            _mm_lfence();
            _rdtsc()
        }
    }

    fn cpuid(leaf: u32) -> CpuidResult {
        // CPUID is a safe intrinsic on x86_64 (always present, read-only).
        __cpuid(leaf)
    }

    fn max_leaf() -> u32 {
        cpuid(0).eax
    }

    pub fn invariant() -> Result<(), &'static str> {
        if cpuid(0x8000_0000).eax < 0x8000_0007 {
            return Err("CPUID leaf 0x80000007 not available");
        }
        if cpuid(0x8000_0007).edx & (1 << 8) == 0 {
            return Err("CPU does not report an invariant TSC");
        }
        Ok(())
    }

    /// Leaf 0x15: TSC = crystal (ECX Hz) x EBX / EAX, when all three are given.
    pub fn cpuid_crystal_mhz() -> Option<f64> {
        if max_leaf() < 0x15 {
            return None;
        }
        let r = cpuid(0x15);
        (r.eax != 0 && r.ebx != 0 && r.ecx != 0)
            .then(|| f64::from(r.ecx) * f64::from(r.ebx) / f64::from(r.eax) / 1e6)
    }

    /// Leaf 0x16 EAX: the processor's base frequency, MHz.
    pub fn cpuid_base_mhz() -> Option<f64> {
        if max_leaf() < 0x16 {
            return None;
        }
        let mhz = cpuid(0x16).eax & 0xffff;
        (mhz != 0).then_some(f64::from(mhz))
    }

    /// Hypervisor timing leaf 0x40000010 EAX: the TSC in kHz (VMware, KVM when offered).
    pub fn hypervisor_tsc_mhz() -> Option<f64> {
        // Hypervisor present: CPUID 1, ECX bit 31.
        if cpuid(1).ecx & (1 << 31) == 0 || cpuid(0x4000_0000).eax < 0x4000_0010 {
            return None;
        }
        let khz = cpuid(0x4000_0010).eax;
        (khz != 0).then_some(f64::from(khz) / 1000.0)
    }
}

#[cfg(any(not(target_arch = "x86_64"), miri))]
mod arch {
    use std::sync::OnceLock;
    use std::time::Instant;

    pub fn read() -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }

    pub fn read_ordered() -> u64 {
        read()
    }

    pub fn invariant() -> Result<(), &'static str> {
        Err("not x86_64")
    }

    pub fn cpuid_crystal_mhz() -> Option<f64> {
        None
    }

    pub fn cpuid_base_mhz() -> Option<f64> {
        None
    }

    pub fn hypervisor_tsc_mhz() -> Option<f64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_conversions() {
        assert_eq!(ticks_to_ns(3_000, 3_000_000_000), 1_000);
        assert_eq!(ticks_to_ns(5, 0), 0);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX);
        assert_eq!(ns_to_ticks(1_000, 3_000_000_000), 3_000);
        assert_eq!(ns_to_ticks(1, 3), 1, "rounded up");
        assert_eq!(ns_to_ticks(1, 3_000_000_000), 3);
        assert_eq!(ns_to_ticks(1, 1), 1, "never zero for a non-zero spin");
        assert_eq!(ns_to_ticks(u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn the_scale_agrees_with_the_exact_conversion() {
        for hz in [
            1,
            1_000_000_000,
            2_000_000_000,
            2_593_906_000,
            3_000_000_000,
        ] {
            let s = TickScale::from_hz(hz);
            for ticks in [0u64, 1, 2_000, 1 << 20, 1 << 40] {
                let exact = ticks_to_ns(ticks, hz);
                let fast = s.ticks_to_ns(ticks);
                assert!(
                    exact.abs_diff(fast) <= 1 + exact / 1_000_000_000,
                    "{hz} {ticks}"
                );
            }
        }
        assert_eq!(TickScale::from_hz(2_000_000_000).ticks_to_ns(2_000), 1_000);
        assert_eq!(TickScale::from_hz(0).ticks_to_ns(12_345), 0);
        assert_eq!(TickScale::from_hz(1).ticks_to_ns(u64::MAX), u64::MAX);
        assert_eq!(
            TickScale::from_mhz(2000.0),
            TickScale::from_hz(2_000_000_000)
        );
    }

    #[test]
    fn reads_move_forward() {
        let a = read();
        let b = read_ordered();
        assert!(b >= a || cfg!(not(target_arch = "x86_64")));
    }
}
