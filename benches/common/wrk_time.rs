//! Benchmark helper: reading `wrk`'s latencies. Shared by the benches.

/// A `wrk` latency like `1.23ms`, `456.00us` or `2.00s`, in µs.
pub fn micros(text: &str) -> f64 {
    let (num, mul) = if let Some(v) = text.strip_suffix("us") {
        (v, 1.0)
    } else if let Some(v) = text.strip_suffix("ms") {
        (v, 1e3)
    } else if let Some(v) = text.strip_suffix('s') {
        (v, 1e6)
    } else {
        (text, 1.0)
    };
    num.parse::<f64>().map_or(f64::NAN, |n| n * mul)
}
