//! The small-rooms chart as a standalone SVG: p99 latency against publish rate for
//! every server of the ramp, drawn by hand (no plotting crate for one chart).

use std::fmt::Write;

use super::Results;

impl Results {
    /// p99 latency against publish rate for every server of the small-rooms ramp, as a
    /// standalone SVG (log-scaled latency axis, the 50 ms bar drawn in).
    pub fn svg_chart(&self) -> String {
        const W: f64 = 760.0;
        const H: f64 = 420.0;
        const LEFT: f64 = 70.0;
        const RIGHT: f64 = 230.0;
        const TOP: f64 = 30.0;
        const BOTTOM: f64 = 50.0;
        // One per server of a full run, so no two lines share a colour.
        const COLORS: [&str; 8] = [
            "#555555", "#d9480f", "#f59f00", "#1971c2", "#2f9e44", "#ae3ec9", "#0c8599", "#a61e4d",
        ];
        let max_rate = self
            .small_rooms
            .iter()
            .flat_map(|(_, steps)| steps.iter().map(|s| s.rate))
            .fold(1.0_f64, f64::max);
        // Latency axis: 1 ms to 10 s, logarithmic.
        let (lo, hi) = (0.0_f64, 4.0_f64);
        let x = |rate: f64| LEFT + (rate / max_rate) * (W - LEFT - RIGHT);
        let y = |ms: f64| {
            let l = ms.max(1.0).log10().clamp(lo, hi);
            H - BOTTOM - (l - lo) / (hi - lo) * (H - TOP - BOTTOM)
        };
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = writeln!(
            svg,
            r#"<text x="{LEFT}" y="18" font-size="14" font-weight="bold">Small rooms (1000 × 10): p99 latency by publish rate</text>"#
        );
        for decade in 0..=4 {
            let ms = 10f64.powi(decade);
            let yy = y(ms);
            let label = if ms >= 1000.0 {
                format!("{} s", ms / 1000.0)
            } else {
                format!("{ms} ms")
            };
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e9ecef"/><text x="{}" y="{:.1}" text-anchor="end">{label}</text>"##,
                W - RIGHT,
                LEFT - 6.0,
                yy + 4.0
            );
        }
        let bar = y(50.0);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{bar:.1}" y2="{bar:.1}" stroke="#c92a2a" stroke-dasharray="4 3"/><text x="{}" y="{:.1}" fill="#c92a2a" text-anchor="end">50 ms bar</text>"##,
            W - RIGHT,
            W - RIGHT - 4.0,
            bar - 4.0
        );
        for i in 0..=5 {
            let rate = max_rate * i as f64 / 5.0;
            let xx = x(rate);
            let _ = writeln!(
                svg,
                r#"<text x="{xx:.1}" y="{}" text-anchor="middle">{rate:.0}</text>"#,
                H - BOTTOM + 18.0
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">published messages per second (each delivered to 9 others)</text>"#,
            (LEFT + W - RIGHT) / 2.0,
            H - 10.0
        );
        for (i, (server, steps)) in self.small_rooms.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let points: Vec<String> = steps
                .iter()
                .map(|s| format!("{:.1},{:.1}", x(s.rate), y(s.p99_ms)))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                points.join(" ")
            );
            for s in steps {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                    x(s.rate),
                    y(s.p99_ms)
                );
            }
            let ly = TOP + 20.0 + i as f64 * 20.0;
            let _ = writeln!(
                svg,
                r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
                W - RIGHT + 10.0,
                W - RIGHT + 30.0,
                W - RIGHT + 36.0,
                ly + 4.0,
                server.name()
            );
        }
        let _ = writeln!(svg, "</svg>");
        svg
    }
}
