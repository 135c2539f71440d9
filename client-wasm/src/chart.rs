//! Geometry of the RTT chart: the y-axis scale and where each sample goes.
//! Plain Rust; the page only draws the points.

/// The smallest "nice" number (1, 2 or 5 times a power of ten) at or above
/// `value`, so the axis label is readable. At least 1 (ms).
pub fn nice_ceiling(value: f64) -> f64 {
    if !value.is_finite() || value <= 1.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    for step in [1.0, 2.0, 5.0, 10.0] {
        let candidate = step * magnitude;
        if candidate >= value {
            return candidate;
        }
    }
    10.0 * magnitude
}

/// Canvas coordinates of the latest `slots` samples: the newest at the right
/// edge, one slot apart, `y_max` at the top and 0 at the bottom. Samples
/// above `y_max` are drawn at the top.
pub fn points(
    samples: &[f64],
    slots: usize,
    width: f64,
    height: f64,
    y_max: f64,
) -> Vec<(f64, f64)> {
    if samples.is_empty() || slots < 2 || y_max <= 0.0 {
        return Vec::new();
    }
    let shown = &samples[samples.len().saturating_sub(slots)..];
    let step = width / (slots - 1) as f64;
    let offset = (slots - shown.len()) as f64;
    shown
        .iter()
        .enumerate()
        .map(|(i, &ms)| {
            let x = (offset + i as f64) * step;
            let y = height - (ms / y_max).clamp(0.0, 1.0) * height;
            (x, y)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.3), 1.0);
        assert_eq!(nice_ceiling(1.5), 2.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(7.2), 10.0);
        assert_eq!(nice_ceiling(10.0), 10.0);
        assert_eq!(nice_ceiling(101.0), 200.0);
        assert_eq!(nice_ceiling(f64::INFINITY), 1.0);
    }

    #[test]
    fn newest_sample_is_at_the_right_edge() {
        let pts = points(&[0.0, 5.0, 10.0], 11, 100.0, 50.0, 10.0);
        assert_eq!(pts, [(80.0, 50.0), (90.0, 25.0), (100.0, 0.0)]);
    }

    #[test]
    fn only_the_latest_slots_are_drawn_and_outliers_are_clamped() {
        let samples: Vec<f64> = (0..100).map(f64::from).collect();
        let pts = points(&samples, 10, 90.0, 10.0, 50.0);
        assert_eq!(pts.len(), 10);
        assert_eq!(pts[0], (0.0, 0.0));
        assert_eq!(pts[9], (90.0, 0.0));
        assert!(points(&[], 10, 90.0, 10.0, 50.0).is_empty());
    }
}
