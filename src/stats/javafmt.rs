//! `java.util.Formatter`-compatible `%f` rendering.
//!
//! Java formats a double for `%.Nf` by taking the shortest decimal digit string
//! that round-trips (`Double.toString`'s digits) and rounding that string
//! HALF_UP. Rust's `{:.N}` instead rounds the exact binary value half-to-even,
//! so the two disagree on ties such as `0.125` -> Java `0.13`, Rust `0.12`.
//! Byte-exact `.hgrm`/`.hlog` output therefore needs this emulation.

/// `String.format(Locale.US, "%.{prec}f", x)`.
pub(crate) fn fixed(x: f64, prec: usize) -> String {
    if x.is_nan() {
        return "NaN".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    // Shortest round-trip digits, e.g. "1.234e3"; Rust and Java agree on these
    // for all but a handful of pathological doubles.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    // Position of the decimal point measured in digits from the left.
    let mut point = exp + 1;
    let keep = point + prec as i64;
    if keep < 0 {
        digits.clear();
    } else {
        let keep = keep as usize;
        let round_up = digits.get(keep).is_some_and(|&d| d >= 5);
        digits.resize(keep, 0);
        if round_up {
            let mut i = keep;
            loop {
                if i == 0 {
                    digits.insert(0, 1);
                    point += 1;
                    break;
                }
                i -= 1;
                if digits[i] == 9 {
                    digits[i] = 0;
                } else {
                    digits[i] += 1;
                    break;
                }
            }
        }
    }

    let mut out = String::with_capacity(prec + 24);
    if x.is_sign_negative() {
        out.push('-');
    }
    let digit_at = |i: i64| -> char {
        if i >= 0 && (i as usize) < digits.len() {
            (b'0' + digits[i as usize]) as char
        } else {
            '0'
        }
    };
    if point <= 0 {
        out.push('0');
    } else {
        (0..point).for_each(|i| out.push(digit_at(i)));
    }
    if prec > 0 {
        out.push('.');
        (0..prec as i64).for_each(|i| out.push(digit_at(point + i)));
    }
    out
}

/// `String.format(Locale.US, "%{width}.{prec}f", x)`: right-aligned, never truncated.
pub(crate) fn fixed_width(x: f64, width: usize, prec: usize) -> String {
    format!("{:>width$}", fixed(x, prec), width = width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_up_on_shortest_digits() {
        assert_eq!(fixed(0.125, 2), "0.13");
        assert_eq!(fixed(0.35, 1), "0.4");
        assert_eq!(fixed(2.5, 0), "3");
        assert_eq!(fixed(1.005, 2), "1.01");
        assert_eq!(fixed(0.0004, 3), "0.000");
        assert_eq!(fixed(0.0005, 3), "0.001");
        assert_eq!(fixed(0.00005, 3), "0.000");
    }

    #[test]
    fn carries_into_new_leading_digit() {
        assert_eq!(fixed(9.9996, 3), "10.000");
        assert_eq!(fixed(999.9999, 2), "1000.00");
        assert_eq!(fixed(0.9999999999999, 12), "1.000000000000");
    }

    #[test]
    fn plain_values() {
        assert_eq!(fixed(0.0, 3), "0.000");
        assert_eq!(fixed(-0.0, 3), "-0.000");
        assert_eq!(fixed(-1.5, 3), "-1.500");
        assert_eq!(fixed(59022245.887, 3), "59022245.887");
        assert_eq!(fixed(1e20, 1), "100000000000000000000.0");
        assert_eq!(fixed(0.999999904633, 12), "0.999999904633");
        assert_eq!(fixed(10485760.0, 2), "10485760.00");
        assert_eq!(fixed(f64::INFINITY, 2), "Infinity");
        assert_eq!(fixed(f64::NAN, 2), "NaN");
        assert_eq!(fixed_width(5.0025, 12, 3), "       5.003");
    }
}
