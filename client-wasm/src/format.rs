//! Numbers as the page shows them: sizes, durations, clock times. Plain
//! Rust.

/// A byte count: `512 B`, `1.5 KiB`, `16.0 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

/// A round-trip time: two decimals under 10 ms, one under 100, none above.
pub fn millis(ms: f64) -> String {
    if !ms.is_finite() {
        return "–".into();
    }
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// `HH:MM:SS.mmm` of a time in milliseconds since the Unix epoch, already
/// shifted to local time by the caller.
pub fn clock(local_ms: f64) -> String {
    if !local_ms.is_finite() {
        return "--:--:--.---".into();
    }
    let total = local_ms.max(0.0) as u64;
    let ms = total % 1000;
    let s = total / 1000 % 60;
    let m = total / 60_000 % 60;
    let h = total / 3_600_000 % 24;
    format!("{h:02}:{m:02}:{s:02}.{ms:03}")
}

/// Whole seconds left until `due_ms`, rounded up, for "reconnecting in N s".
pub fn seconds_left(now_ms: f64, due_ms: f64) -> u64 {
    let left = (due_ms - now_ms) / 1000.0;
    if left.is_finite() && left > 0.0 {
        left.ceil() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(1 << 20), "1.0 MiB");
        assert_eq!(bytes(5 << 30), "5.0 GiB");
    }

    #[test]
    fn durations() {
        assert_eq!(millis(0.456), "0.46 ms");
        assert_eq!(millis(12.34), "12.3 ms");
        assert_eq!(millis(1234.0), "1234 ms");
        assert_eq!(millis(f64::NAN), "–");
        assert_eq!(seconds_left(1000.0, 3500.0), 3);
        assert_eq!(seconds_left(1000.0, 900.0), 0);
    }

    #[test]
    fn clock_times() {
        assert_eq!(clock(0.0), "00:00:00.000");
        // 2026-11-25 13:04:05.678 UTC
        assert_eq!(clock(1_795_611_845_678.0), "13:04:05.678");
    }
}
