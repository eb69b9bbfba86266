//! What a run measures, recorded lock-free from thousands of reader tasks: a
//! log-scale latency histogram and delivery counters, plus the server process's CPU
//! time and memory from `/proc`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Buckets per power of two: ~9% resolution.
const SUB_BUCKETS: u32 = 8;
/// Latencies up to 2^36 ns (~69 s).
const MAX_POW: u32 = 36;

/// A latency histogram with atomic, log-scale buckets.
pub struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..(MAX_POW * SUB_BUCKETS) as usize)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }
}

fn bucket_of(ns: u64) -> usize {
    let ns = ns.max(1);
    let pow = 63 - ns.leading_zeros();
    let sub = if pow >= 3 {
        ((ns >> (pow - 3)) & 0b111) as u32
    } else {
        0
    };
    ((pow.min(MAX_POW - 1)) * SUB_BUCKETS + sub) as usize
}

fn bucket_upper_ns(index: usize) -> u64 {
    let pow = index as u32 / SUB_BUCKETS;
    let sub = u64::from(index as u32 % SUB_BUCKETS);
    if pow >= 3 {
        (1u64 << pow) + ((sub + 1) << (pow - 3))
    } else {
        1u64 << (pow + 1)
    }
}

impl Histogram {
    /// Records one latency.
    pub fn record(&self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(ns)].fetch_add(1, Ordering::Relaxed);
    }

    /// Empties the histogram (between steps).
    pub fn reset(&self) {
        for bucket in &self.buckets {
            bucket.store(0, Ordering::Relaxed);
        }
    }

    /// The latency below which `q` (0–1) of the recorded values fall (bucket upper
    /// bound), or zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_nanos(bucket_upper_ns(index));
            }
        }
        Duration::from_nanos(bucket_upper_ns(counts.len() - 1))
    }
}

/// Delivery counters of one step.
#[derive(Default)]
pub struct Counters {
    /// Messages the generator published.
    pub sent: AtomicU64,
    /// Messages the generator could not even queue (its own overload).
    pub not_sent: AtomicU64,
    /// Deliveries received by members.
    pub received: AtomicU64,
    /// A message a member had already received.
    pub duplicates: AtomicU64,
    /// A message that arrived after a later one from the same sender.
    pub out_of_order: AtomicU64,
}

impl Counters {
    /// Zeroes every counter (between steps).
    pub fn reset(&self) {
        for counter in [
            &self.sent,
            &self.not_sent,
            &self.received,
            &self.duplicates,
            &self.out_of_order,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after ')'.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Linux reports clock ticks of 1/100 s (USER_HZ) on every mainstream platform.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Waits until a process has gone quiet — under 5% of a core over half a second —
/// so that one phase's leftovers (a connect storm's presence frames, say) do not count
/// against the next. Gives up after `limit` and says so.
pub async fn settle(pid: u32, limit: Duration) -> bool {
    let window = Duration::from_millis(500);
    let deadline = tokio::time::Instant::now() + limit;
    let mut before = cpu_time(pid).unwrap_or_default();
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(window).await;
        let now = cpu_time(pid).unwrap_or_default();
        if now.saturating_sub(before) * 20 <= window {
            return true;
        }
        before = now;
    }
    false
}

/// Kernel memory held by TCP sockets, in KiB, from `/proc/net/sockstat` (the `mem`
/// field counts pages of socket buffers, system-wide).
pub fn tcp_kernel_kib() -> Option<u64> {
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let tcp = sockstat.lines().find(|l| l.starts_with("TCP:"))?;
    let mut fields = tcp.split_whitespace();
    fields.find(|f| *f == "mem")?;
    let pages: u64 = fields.next()?.parse().ok()?;
    Some(pages * 4)
}

/// Kernel slab memory in KiB (`Slab:` in `/proc/meminfo`): socket structures live
/// there, so the growth over a connect phase is the kernel's cost per connection.
pub fn slab_kib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("Slab:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Resident memory of a process in KiB, from `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_bucket() {
        let h = Histogram::default();
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms));
        }
        let p50 = h.quantile(0.5).as_secs_f64() * 1000.0;
        let p99 = h.quantile(0.99).as_secs_f64() * 1000.0;
        assert!((50.0..=56.0).contains(&p50), "{p50}");
        assert!((99.0..=110.0).contains(&p99), "{p99}");
        h.reset();
        assert_eq!(h.quantile(0.5), Duration::ZERO);
    }

    #[test]
    fn buckets_grow_monotonically() {
        let mut last = 0;
        for index in 0..(MAX_POW * SUB_BUCKETS) as usize {
            let upper = bucket_upper_ns(index);
            assert!(upper >= last, "{index}");
            last = upper;
        }
        assert!(bucket_upper_ns(bucket_of(12_345)) >= 12_345);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_kib(me).is_some_and(|kib| kib > 0));
        assert!(cpu_time(me).is_some());
        assert!(slab_kib().is_some_and(|kib| kib > 0));
        assert!(tcp_kernel_kib().is_some());
    }
}
