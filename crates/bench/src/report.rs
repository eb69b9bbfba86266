//! Turning results into what a person reads: aligned tables, a text chart of p99
//! latency against publish rate, and the Markdown written to docs/benchmarks. The SVG
//! chart beside it is drawn in `report/chart.rs`.

use std::fmt::Write;

mod chart;

use crate::suite::{Churn, Idle, Server, Step};

/// File name of the SVG chart, written next to the Markdown report.
pub const CHART_FILE: &str = "small-rooms.svg";

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
    /// Churn scenario per server.
    pub churn: Vec<(Server, Churn)>,
    /// Small-rooms ramp with unpinned servers.
    pub unpinned: Vec<(Server, Vec<Step>)>,
    /// The web client as browsers download it, if `dist/` was built.
    pub web_client: Option<crate::client_size::ClientSize>,
    /// A history page in a room full of changes, if the scenario ran.
    pub history: Option<crate::history::HistoryPages>,
    /// natter's small-rooms ramp without and with typing and read markers, if the
    /// attention scenario ran.
    pub attention: Option<(Vec<Step>, Vec<Step>)>,
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
        best_table(&mut out, &self.small_rooms);
        let _ = writeln!(out, "\nEvery step:\n");
        steps_table(&mut out, &self.small_rooms);
        let _ = writeln!(out);
        chart(&mut out, &self.small_rooms);
        let _ = writeln!(out, "\n![p99 latency against publish rate]({CHART_FILE})");
        let _ = writeln!(out, "\n## Big room: latency to every member\n");
        steps_table(&mut out, &self.big_room);
        self.churn_section(&mut out);
        if !self.unpinned.is_empty() {
            let _ = writeln!(
                out,
                "\n## Small rooms, unpinned (servers may use both cores)\n"
            );
            best_table(&mut out, &self.unpinned);
            let _ = writeln!(out, "\nEvery step:\n");
            steps_table(&mut out, &self.unpinned);
        }
        if let Some(pages) = &self.history {
            let _ = writeln!(out, "\n## History with edits and reactions\n");
            let _ = writeln!(
                out,
                "A page of the newest 100 messages (natter, SQLite), read over the WebSocket \
                 one at a time, request to answer; the changed room holds {} reactions \
                 (20 emoji from each of 5 people on every message of the page) and {} \
                 edits, stored in {:.1} s.\n",
                pages.reactions, pages.edits, pages.seed_secs
            );
            let _ = writeln!(out, "| room | p50 ms | p99 ms |\n|---|---:|---:|");
            let _ = writeln!(
                out,
                "| 1,000 messages, never changed | {:.2} | {:.2} |",
                pages.plain_ms.0, pages.plain_ms.1
            );
            let _ = writeln!(
                out,
                "| 1,000 messages, 10,000 reactions, 1,000 edits | {:.2} | {:.2} |",
                pages.changed_ms.0, pages.changed_ms.1
            );
        }
        if let Some((off, active)) = &self.attention {
            let _ = writeln!(out, "\n## Typing and read markers\n");
            let _ = writeln!(
                out,
                "natter (SQLite), small rooms; \"with\": every member also says it is typing \
                 every 3 s and marks what it read every second while messages arrive, as the \
                 web client does. CPU µs per message delivery (typing and read frames are \
                 not counted as deliveries, so their cost shows here).\n"
            );
            let _ = writeln!(
                out,
                "| msg/s | p99 ms without | p99 ms with | CPU µs/delivery without | CPU µs/delivery with |\n|---:|---:|---:|---:|---:|"
            );
            for (plain, busy) in off.iter().zip(active) {
                let _ = writeln!(
                    out,
                    "| {:.0} | {:.1} | {:.1} | {:.1} | {:.1} |",
                    plain.rate,
                    plain.p99_ms,
                    busy.p99_ms,
                    plain.cpu_us_per_delivery,
                    busy.cpu_us_per_delivery
                );
            }
        }
        let _ = writeln!(out, "\n## Web client\n");
        match self.web_client {
            Some(size) => {
                let kb = |bytes: u64| bytes as f64 / 1000.0;
                let _ = writeln!(
                    out,
                    "The page and its files (wasm, JS, CSS) as `natter-server` sends them, \
                     fetched over HTTP: **{:.1} KB** to a browser that takes brotli, {:.1} KB \
                     with gzip only, {:.1} KB uncompressed (target ≤ 300 KB transferred). \
                     The `.br`/`.gz` files are made once by `cargo xtask` (brotli 11, \
                     gzip 9): compressing per request at a level a server can afford would \
                     send more and cost CPU on every visit.",
                    kb(size.brotli),
                    kb(size.gzip),
                    kb(size.plain)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "`dist/` was not built; run `cargo xtask run` or `cargo xtask test` first."
                );
            }
        }
        self.targets_section(&mut out);
        out
    }
}

/// The highest clean step per server, with its ratio to the ceiling's.
fn best_table(out: &mut String, runs: &[(Server, Vec<Step>)]) {
    let _ = writeln!(
        out,
        "| server | highest clean msg/s | deliveries/s | CPU µs/delivery | p99 ms |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    let ceiling = runs
        .iter()
        .find(|(s, _)| *s == Server::Ceiling)
        .and_then(|(_, steps)| best(steps))
        .map(|s| s.rate);
    for (server, steps) in runs {
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
}

/// A target of issue 5 and how this run did against it.
struct Target {
    what: &'static str,
    goal: &'static str,
    measured: Option<(f64, String)>,
    met: fn(f64) -> bool,
}

impl Results {
    fn ramp(&self, server: Server) -> Option<&[Step]> {
        self.small_rooms
            .iter()
            .find(|(s, _)| *s == server)
            .map(|(_, steps)| steps.as_slice())
    }

    fn best_rate(&self, server: Server) -> Option<f64> {
        self.ramp(server).and_then(best).map(|s| s.rate)
    }

    /// CPU-µs per delivery of natter and of the ceiling at the highest rate both ran
    /// cleanly.
    fn cpu_at_same_rate(&self) -> Option<(f64, f64, f64)> {
        let natter = self.ramp(Server::Natter)?;
        let ceiling = self.ramp(Server::Ceiling)?;
        natter
            .iter()
            .filter(|s| s.clean())
            .filter_map(|n| {
                ceiling
                    .iter()
                    .find(|c| c.rate == n.rate && c.clean())
                    .map(|c| (n.rate, n.cpu_us_per_delivery, c.cpu_us_per_delivery))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
    }

    fn big_room_p99_at(&self, server: Server, rate: f64) -> Option<f64> {
        self.big_room
            .iter()
            .find(|(s, _)| *s == server)?
            .1
            .iter()
            .find(|s| s.rate == rate)
            .map(|s| s.p99_ms)
    }

    fn targets_section(&self, out: &mut String) {
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let ratio_of = |r: Option<f64>, detail: String| r.map(|r| (r, detail));
        let rate = |r: Option<f64>| r.map_or("—".to_string(), |r| format!("{r:.0}"));
        let natter = self.best_rate(Server::Natter);
        let ceiling = self.best_rate(Server::Ceiling);
        let memory = self.best_rate(Server::NatterMemory);
        let cpu = self.cpu_at_same_rate();
        let big = (
            self.big_room_p99_at(Server::Natter, 50.0),
            self.big_room_p99_at(Server::Ceiling, 50.0),
        );
        let idle = self
            .idle
            .iter()
            .find(|(s, _)| *s == Server::Natter)
            .map(|(_, i)| i.rss_kib_per_conn);
        let targets = [
            Target {
                what: "small rooms: natter's highest clean rate / ceiling's",
                goal: "≥ 0.8",
                measured: ratio_of(
                    ratio(natter, ceiling),
                    format!("{} / {} msg/s", rate(natter), rate(ceiling)),
                ),
                met: |r| r >= 0.8,
            },
            Target {
                what: "CPU-µs per delivery, natter / ceiling at the same rate",
                goal: "≤ 1.3",
                measured: cpu
                    .map(|(rate, n, c)| (n / c, format!("{n:.1} / {c:.1} µs at {rate:.0} msg/s"))),
                met: |r| r <= 1.3,
            },
            Target {
                what: "big room p99 at 50 msg/s, natter / ceiling",
                goal: "≤ 1.3",
                measured: ratio_of(
                    ratio(big.0, big.1),
                    format!(
                        "{:.1} / {:.1} ms",
                        big.0.unwrap_or(0.0),
                        big.1.unwrap_or(0.0)
                    ),
                ),
                met: |r| r <= 1.3,
            },
            Target {
                what: "idle: natter RSS per connection (KiB)",
                goal: "≤ 12",
                measured: idle.map(|kib| (kib, format!("{kib:.1} KiB"))),
                met: |kib| kib <= 12.0,
            },
            Target {
                what: "natter on SQLite / natter in memory, highest clean rate",
                goal: "≥ 0.8",
                measured: ratio_of(
                    ratio(natter, memory),
                    format!("{} / {} msg/s", rate(natter), rate(memory)),
                ),
                met: |r| r >= 0.8,
            },
            Target {
                what: "web client, transferred (KB)",
                goal: "≤ 300",
                measured: self.web_client.map(|size| {
                    let kb = size.brotli as f64 / 1000.0;
                    (kb, format!("{kb:.1} KB brotli"))
                }),
                met: |kb| kb <= 300.0,
            },
        ];
        let _ = writeln!(out, "\n## Targets\n");
        let _ = writeln!(out, "| target | goal | this run | detail | met |");
        let _ = writeln!(out, "|---|---|---:|---|---|");
        for t in targets {
            let (value, detail, met) = match &t.measured {
                Some((v, d)) => (
                    format!("{v:.2}"),
                    d.as_str(),
                    if (t.met)(*v) { "yes" } else { "**no**" },
                ),
                None => ("—".into(), "not measured in this run", "—"),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {value} | {detail} | {met} |",
                t.what, t.goal
            );
        }
    }

    fn churn_section(&self, out: &mut String) {
        if self.churn.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\n## Churn: people coming and going, one client never reads\n"
        );
        let _ = writeln!(out, "| server | msg/s | lost | p99 ms | presence p50 / p99 ms (online seen) | RSS before → after (MiB) | client that never reads |");
        let _ = writeln!(out, "|---|---:|---:|---:|---|---|---|");
        for (server, c) in &self.churn {
            let presence = match c.presence_ms {
                Some((p50, p99)) => format!(
                    "{p50:.1} / {p99:.1} ({} of {})",
                    c.presence_seen.0, c.presence_seen.1
                ),
                None => "no presence".into(),
            };
            let _ = writeln!(
                out,
                "| {} | {:.0} | {} | {:.1} | {presence} | {:.1} → {:.1} | {} |",
                server.name(),
                c.step.rate,
                c.step.lost(),
                c.step.p99_ms,
                c.rss_kib.0 as f64 / 1024.0,
                c.rss_kib.1 as f64 / 1024.0,
                c.non_reader
            );
        }
    }
}
