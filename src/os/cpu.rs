//! CPU hints the fast path may use without `unsafe` of its own.

/// Hints the CPU to pull the first cache line of `data` into L1, typically a few packets
/// ahead of the one being parsed. Only a hint: it never faults, whatever `data` points to.
#[inline(always)]
pub fn prefetch(data: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: prefetch never faults or dereferences architecturally, so any pointer value
        // (even the dangling one of an empty slice) is sound, and SSE is baseline on x86_64.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(data.as_ptr().cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefetch_of_anything_is_harmless() {
        super::prefetch(&[]);
        super::prefetch(&[1, 2, 3]);
    }
}
