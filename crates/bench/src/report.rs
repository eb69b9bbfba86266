//! Turning results into what a person reads: aligned tables, a text chart of p99
//! latency against publish rate, and the Markdown written to docs/benchmarks.

use std::fmt::Write;

use crate::suite::{Idle, Server, Step};

/// All results of one suite run.
pub struct Results {
    /// Machine and settings, one line each.
    pub setup: Vec<String>,
    /// Idle scenario per server.
    pub idle: Vec<(Server, Idle)>,
    /// Small-rooms ramp per server.
    pub small_rooms: Vec<(Server, Vec<Step>)>,
    /// Big-room steps per server.
    pub big_room: Vec<(Server, Vec<Step>)>,
}

/// The highest clean step of a ramp.
pub fn best(steps: &[Step]) -> Option<&Step> {
    steps
        .iter()
        .filter(|s| s.clean())
        .max_by(|a, b| a.rate.total_cmp(&b.rate))
}

fn steps_table(out: &mut String, runs: &[(Server, Vec<Step>)]) {
    let _ = writeln!(out, "| server | msg/s | deliveries/s | lost | dup | reordered | p50 ms | p99 ms | p99.9 ms | CPU µs/delivery |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (server, steps) in runs {
        for s in steps {
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.0} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
                server.name(),
                s.rate,
                s.deliveries_per_sec,
                s.lost(),
                s.duplicates,
                s.out_of_order,
                s.p50_ms,
                s.p99_ms,
                s.p999_ms,
                s.cpu_us_per_delivery
            );
        }
    }
}

/// A text chart: one row per server and rate, bar length = p99 (log-ish scale).
fn chart(out: &mut String, runs: &[(Server, Vec<Step>)]) {
    let _ = writeln!(out, "```text");
    let _ = writeln!(
        out,
        "p99 latency by publish rate (each # ≈ 1 ms, capped at 60; ✗ = not clean)"
    );
    for (server, steps) in runs {
        let _ = writeln!(out, "{}", server.name());
        for s in steps {
            let bar = "#".repeat((s.p99_ms.ceil() as usize).clamp(1, 60));
            let mark = if s.clean() { "" } else { " ✗" };
            let _ = writeln!(
                out,
                "  {:>7.0} msg/s │{bar} {:.1} ms{mark}",
                s.rate, s.p99_ms
            );
        }
    }
    let _ = writeln!(out, "```");
}

impl Results {
    /// The whole report as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# natter benchmark results\n");
        let _ = writeln!(out, "Produced by `cargo xtask bench`. Setup:\n");
        for line in &self.setup {
            let _ = writeln!(out, "- {line}");
        }
        let _ = writeln!(out, "\n## Idle connections\n");
        let _ = writeln!(
            out,
            "| server | connections | RSS KiB per connection | kernel KiB per connection (both ends) | connects/s | quiet after (s) |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
        for (server, idle) in &self.idle {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.1} | {:.0} | {:.1} |",
                server.name(),
                idle.connections,
                idle.rss_kib_per_conn,
                idle.kernel_kib_per_conn,
                idle.connects_per_sec,
                idle.settle_secs
            );
        }
        let _ = writeln!(
            out,
            "\n## Small rooms: highest clean rate (p99 < 50 ms, nothing lost)\n"
        );
        let _ = writeln!(
            out,
            "| server | highest clean msg/s | deliveries/s | CPU µs/delivery | p99 ms |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        let ceiling = self
            .small_rooms
            .iter()
            .find(|(s, _)| *s == Server::Ceiling)
            .and_then(|(_, steps)| best(steps))
            .map(|s| s.rate);
        for (server, steps) in &self.small_rooms {
            match best(steps) {
                Some(s) => {
                    let ratio = ceiling
                        .map(|c| format!(" ({:.2}× ceiling)", s.rate / c))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "| {} | {:.0}{ratio} | {:.0} | {:.1} | {:.1} |",
                        server.name(),
                        s.rate,
                        s.deliveries_per_sec,
                        s.cpu_us_per_delivery,
                        s.p99_ms
                    );
                }
                None => {
                    let _ = writeln!(out, "| {} | none clean | | | |", server.name());
                }
            }
        }
        let _ = writeln!(out, "\nEvery step:\n");
        steps_table(&mut out, &self.small_rooms);
        let _ = writeln!(out);
        chart(&mut out, &self.small_rooms);
        let _ = writeln!(out, "\n## Big room: latency to every member\n");
        steps_table(&mut out, &self.big_room);
        out
    }
}
