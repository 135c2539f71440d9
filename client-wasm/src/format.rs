//! Numbers as the page shows them: sizes, durations, clock times. Plain
//! Rust.
//!
//! Fractions go through [`fixed`], never `format!("{:.1}")`: core's float
//! formatting (Grisu with a Dragon4 fallback and big-number arithmetic) was
//! 21 KiB of the .wasm (8.5 KiB gzipped), and the page only needs a few
//! fixed decimals.

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
    format!("{} {unit}", fixed(value, 1))
}

/// A round-trip time: two decimals under 10 ms, one under 100, none above.
pub fn millis(ms: f64) -> String {
    if !ms.is_finite() {
        return "–".into();
    }
    let decimals = if ms < 10.0 {
        2
    } else if ms < 100.0 {
        1
    } else {
        0
    };
    fixed(ms, decimals) + " ms"
}

/// `value` rounded to `decimals` (at most 9) digits after the point, as
/// `format!("{value:.N}")` writes it (but for ties, which round up here),
/// with integer arithmetic only (see the module's header). NaN reads as 0;
/// beyond `u64` the digits saturate.
pub fn fixed(value: f64, decimals: u32) -> String {
    let scale = 10u64.pow(decimals);
    // `as` truncates and saturates: adding a half first rounds.
    let scaled = (value.abs() * scale as f64 + 0.5) as u64;
    let mut out = String::new();
    if value < 0.0 && scaled > 0 {
        out.push('-');
    }
    out += &(scaled / scale).to_string();
    if decimals > 0 {
        // A leading 1 keeps the fraction's leading zeros: 5 in 100 is "05".
        let fraction = (scale + scaled % scale).to_string();
        out.push('.');
        out += fraction.get(1..).unwrap_or_default();
    }
    out
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

/// What the page says about compression, from the socket's negotiated
/// extensions (`WebSocket.extensions`, `None` without a socket):
/// `compression: permessage-deflate` when the list names it (parameters
/// such as `client_no_context_takeover` aside), `compression: none` when
/// it does not, `compression: –` while there is no socket to ask.
pub fn compression(extensions: Option<&str>) -> String {
    let Some(extensions) = extensions else {
        return "compression: –".into();
    };
    // `name; param, name; param`: the name is what comes before any `;`.
    let deflate = extensions
        .split(',')
        .filter_map(|extension| extension.split(';').next())
        .any(|name| name.trim().eq_ignore_ascii_case("permessage-deflate"));
    if deflate {
        "compression: permessage-deflate".into()
    } else {
        "compression: none".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_labels() {
        assert_eq!(compression(None), "compression: –");
        assert_eq!(compression(Some("")), "compression: none");
        assert_eq!(
            compression(Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
            )),
            "compression: permessage-deflate"
        );
        assert_eq!(
            compression(Some("permessage-deflate")),
            "compression: permessage-deflate"
        );
        assert_eq!(
            compression(Some("x-other; a=1, Permessage-Deflate ; b")),
            "compression: permessage-deflate"
        );
        // A parameter that merely mentions deflate is not the extension.
        assert_eq!(
            compression(Some("x-frame; permessage-deflate")),
            "compression: none"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(1 << 20), "1.0 MiB");
        assert_eq!(bytes(5 << 30), "5.0 GiB");
    }

    #[test]
    fn fixed_decimals() {
        assert_eq!(fixed(0.0, 2), "0.00");
        assert_eq!(fixed(1000.25, 3), "1000.250");
        assert_eq!(fixed(0.05, 1), "0.1");
        assert_eq!(fixed(3.04, 2), "3.04");
        assert_eq!(fixed(9.996, 2), "10.00");
        assert_eq!(fixed(1_795_611_845_678.4, 0), "1795611845678");
        assert_eq!(fixed(-2.5, 1), "-2.5");
        assert_eq!(fixed(-0.01, 1), "0.0");
        assert_eq!(fixed(f64::NAN, 1), "0.0");
        for (value, decimals) in [(0.456, 2), (12.34, 1), (26.0 * 17.0, 0), (123.4567, 3)] {
            assert_eq!(
                fixed(value, decimals),
                format!("{value:.*}", decimals as usize)
            );
        }
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
