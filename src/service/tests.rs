//! The models parse as documented, refuse what they should, and draw what they claim:
//! moments and quantiles within sampling tolerance, never above the cap.

use super::*;

fn model(s: &str) -> ServiceModel {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn draws(s: &str, n: usize) -> Vec<f64> {
    let mut t = ServiceTime::new(model(s), 42);
    let mut v: Vec<f64> = (0..n).map(|_| f64::from(t.draw_ns())).collect();
    v.sort_by(f64::total_cmp);
    v
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

#[test]
fn grammar_round_trips_through_display() {
    for s in [
        "fixed:20us",
        "exp:20us",
        "lognormal:20us,0.5",
        "bimodal:20us,1%:1ms",
        "bimodal:5us,0.1%:500us,cap=2ms",
        "exp:1.5ms,cap=1s",
        "fixed:800ns",
        "fixed:2ms,hold=sleep",
        "bimodal:20us,1%:1ms,cap=2ms,hold=sleep",
    ] {
        let m = model(s);
        assert_eq!(m.to_string(), s);
        assert_eq!(model(&m.to_string()), m);
    }
    assert_eq!(
        model("bimodal:20us,1%:1ms").shape,
        Shape::Bimodal {
            fast_ns: 20_000,
            slow_ppm: 10_000,
            slow_ns: 1_000_000
        }
    );
    assert_eq!(model("fixed:20us").cap_ns, DEFAULT_CAP_NS);
    assert_eq!(model("exp:20us, cap=5ms").cap_ns, 5_000_000);
}

#[test]
fn hold_parses_in_either_order_and_shows_only_when_sleep() {
    assert_eq!(model("fixed:20us").hold, Hold::Spin);
    assert_eq!(model("fixed:20us,hold=spin").hold, Hold::Spin);
    // Spin is the default, so a report of a spinning model reads as it did before hold=.
    assert_eq!(model("fixed:20us,hold=spin").to_string(), "fixed:20us");
    let a = model("exp:20us,hold=sleep,cap=5ms");
    let b = model("exp:20us, cap=5ms , hold = sleep");
    assert_eq!(a, b);
    assert_eq!((a.hold, a.cap_ns), (Hold::Sleep, 5_000_000));
    assert_eq!(a.to_string(), "exp:20us,cap=5ms,hold=sleep");
    assert_eq!(model(&a.to_string()), a);
    // The cap check sees a cap given before or after hold.
    assert!("fixed:20ms,hold=sleep".parse::<ServiceModel>().is_err());
    assert_eq!(model("fixed:20ms,hold=sleep,cap=30ms").cap_ns, 30_000_000);
    // Sleeping draws the same sequence: hold changes how a draw is served, not the draw.
    let mut s = ServiceTime::new(model("exp:20us,hold=sleep"), 7);
    let mut t = ServiceTime::new(model("exp:20us"), 7);
    assert!((0..100).all(|_| s.draw_ns() == t.draw_ns()));
}

#[test]
fn bad_models_are_refused_with_the_reason() {
    for (s, says) in [
        ("", "KIND:ARGS"),
        ("uniform:20us", "not a model"),
        ("fixed:20", "no unit"),
        ("fixed:20min", "not a unit"),
        ("fixed:1.2.3us", "not a number"),
        ("fixed:20us,30us", "takes one duration"),
        ("exp:0us", "above 0"),
        ("lognormal:20us", "median and sigma"),
        ("lognormal:20us,9", "sigma in"),
        ("bimodal:20us,1ms", "P%:DURATION"),
        ("bimodal:20us,101%:1ms", "not in 0..100"),
        ("bimodal:20us,1%:20ms", "above the cap"),
        ("fixed:2s", "longer than 1 s"),
        ("exp:1us,cap=0ns", "above 0"),
        ("fixed:20us,hold=nap", "hold `nap` is not spin or sleep"),
        ("fixed:20us,hold=", "hold `` is not spin or sleep"),
        ("fixed:20us,hold=sleep,hold=spin", "hold= is given twice"),
        (
            "fixed:20us,cap=5ms,hold=sleep,cap=6ms",
            "cap= is given twice",
        ),
        ("fixed:20us,nap=1ms", "`nap=` is not an option"),
        ("fixed:hold=sleep,20us", "come after the arguments"),
        ("fixed:hold=sleep", "takes one duration"),
    ] {
        let e = s.parse::<ServiceModel>().unwrap_err();
        assert!(e.contains(says), "{s}: {e}");
    }
}

#[test]
fn fixed_is_exact() {
    assert!(draws("fixed:20us", 1000).iter().all(|&d| d == 20_000.0));
}

#[test]
fn exponential_matches_its_mean_and_median() {
    let v = draws("exp:20us,cap=1s", 200_000);
    // Standard error of the mean: 20 us / sqrt(200k) = 45 ns; 1% is 4 of them.
    assert!((mean(&v) - 20_000.0).abs() < 200.0, "{}", mean(&v));
    let median = quantile(&v, 0.5);
    assert!((median - 20_000.0 * 2f64.ln()).abs() < 250.0, "{median}");
    let p99 = quantile(&v, 0.99);
    assert!((p99 - 20_000.0 * 100f64.ln()).abs() < 2_500.0, "{p99}");
}

#[test]
fn lognormal_matches_its_median_and_mean() {
    let v = draws("lognormal:20us,0.5", 200_000);
    let median = quantile(&v, 0.5);
    assert!((median - 20_000.0).abs() < 200.0, "{median}");
    let want = 20_000.0 * (0.125f64).exp();
    assert!((mean(&v) - want).abs() < want * 0.01, "{}", mean(&v));
    // p84 sits one sigma up: median * e^0.5.
    let p84 = quantile(&v, 0.841_345);
    assert!((p84 - 20_000.0 * 0.5f64.exp()).abs() < 500.0, "{p84}");
}

#[test]
fn bimodal_slow_share_is_binomial() {
    let v = draws("bimodal:20us,1%:1ms", 200_000);
    let slow = v.iter().filter(|&&d| d == 1_000_000.0).count() as f64 / v.len() as f64;
    // sd of the share: sqrt(0.01 * 0.99 / 200k) = 0.022%; 0.1% is 4.5 of them.
    assert!((slow - 0.01).abs() < 0.001, "{slow}");
    assert!(v.iter().all(|&d| d == 20_000.0 || d == 1_000_000.0));
    assert_eq!(model("bimodal:20us,1%:1ms").slow_fraction(), 0.01);
}

#[test]
fn the_cap_holds() {
    for s in ["exp:1ms,cap=2ms", "lognormal:1ms,2,cap=3ms"] {
        let m = model(s);
        let v = draws(s, 100_000);
        assert!(v.iter().all(|&d| d <= m.cap_ns as f64), "{s}");
        // These tails reach the cap often: the cap is what bounds them.
        assert_eq!(*v.last().unwrap(), m.cap_ns as f64, "{s}");
    }
}

#[test]
fn seeds_give_independent_sequences() {
    let m = model("exp:20us");
    let mut a = ServiceTime::new(m, 1);
    let mut b = ServiceTime::new(m, 2);
    let same = (0..1000).filter(|_| a.draw_ns() == b.draw_ns()).count();
    assert!(same < 10, "{same}");
    assert_ne!(ServiceTime::seed_for(0), ServiceTime::seed_for(1));
}

#[test]
fn durations_parse_and_print() {
    assert_eq!(parse_duration_ns("1.5ms"), Ok(1_500_000));
    assert_eq!(parse_duration_ns("250ns"), Ok(250));
    assert_eq!(format_duration_ns(1_500_000), "1.5ms");
    assert_eq!(format_duration_ns(1_234_567), "1234.567us");
    assert_eq!(format_duration_ns(999), "999ns");
    assert_eq!(format_duration_ns(1_000_000_000), "1s");
}
