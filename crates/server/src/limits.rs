//! Abuse limits: token buckets per connection and per IP, a cap on connections per
//! IP, and [`KeyedLimits`] for the account endpoints (per IP and per account).
//!
//! A client over its rate gets `rate_limited` errors with `retry_after_ms`; one that
//! keeps going (more than [`MAX_REFUSALS`] refused frames within [`REFUSAL_WINDOW`]) is
//! closed with 1008. The state per IP lives in one short-locked map whose entries go
//! away when the IP has no connection left, so memory stays bounded by live clients
//! (an IP that reconnects starts with a full bucket, as a new connection does).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Refused frames tolerated within [`REFUSAL_WINDOW`] before the connection is closed.
pub const MAX_REFUSALS: u32 = 30;
/// The window over which refusals are counted.
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(10);

/// A classic token bucket: `burst` tokens, refilled at `per_sec` per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Tokens available now (fractional while refilling).
    tokens: f64,
    /// Most tokens it holds.
    burst: f64,
    /// Tokens added per second.
    per_sec: f64,
    /// When `tokens` was last brought up to date.
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(per_sec: u32, burst: u32, now: Instant) -> Self {
        TokenBucket {
            tokens: f64::from(burst.max(1)),
            burst: f64::from(burst.max(1)),
            per_sec: f64::from(per_sec.max(1)),
            updated: now,
        }
    }

    /// A full bucket of `burst` tokens gaining one every `every`: for slow limits
    /// (sign-ups an hour) that a per-second rate cannot express.
    pub fn every(every: Duration, burst: u32, now: Instant) -> Self {
        TokenBucket {
            tokens: f64::from(burst.max(1)),
            burst: f64::from(burst.max(1)),
            per_sec: 1.0 / every.as_secs_f64().max(0.001),
            updated: now,
        }
    }

    /// Gives a token back (an attempt that turned out not to count).
    pub fn refund(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.burst);
    }

    /// True when the bucket has refilled completely: it then holds no information
    /// and can be forgotten.
    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        self.updated = now;
    }

    /// Takes one token, or says how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec))
        }
    }
}

/// Rate settings (from [`crate::Config`]).
#[derive(Debug, Clone, Copy)]
pub struct RateSettings {
    /// Frames per second one connection may send, sustained.
    pub conn_per_sec: u32,
    /// Frames one connection may send in a burst.
    pub conn_burst: u32,
    /// Frames per second all connections of one IP may send, sustained.
    pub ip_per_sec: u32,
    /// Frames all connections of one IP may send in a burst.
    pub ip_burst: u32,
    /// WebSocket connections one IP may hold open.
    pub max_conns_per_ip: u32,
}

#[derive(Debug)]
struct IpState {
    connections: u32,
    bucket: TokenBucket,
}

/// Limits shared by all connections: per-IP buckets and connection counts.
#[derive(Debug, Clone)]
pub struct IpLimits {
    settings: RateSettings,
    ips: Arc<Mutex<HashMap<IpAddr, IpState>>>,
}

/// Proof that a connection was counted against its IP; uncounts on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    ip: IpAddr,
    limits: IpLimits,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut ips = self.limits.lock();
        if let Some(state) = ips.get_mut(&self.ip) {
            state.connections = state.connections.saturating_sub(1);
            if state.connections == 0 {
                ips.remove(&self.ip);
            }
        }
    }
}

impl IpLimits {
    /// Limits with these settings.
    pub fn new(settings: RateSettings) -> Self {
        IpLimits {
            settings,
            ips: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, IpState>> {
        self.ips.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a new connection from `ip`, unless the IP is at its cap.
    pub fn connect(&self, ip: IpAddr) -> Option<ConnectionSlot> {
        let now = Instant::now();
        let mut ips = self.lock();
        let state = ips.entry(ip).or_insert_with(|| IpState {
            connections: 0,
            bucket: TokenBucket::new(self.settings.ip_per_sec, self.settings.ip_burst, now),
        });
        if state.connections >= self.settings.max_conns_per_ip {
            return None;
        }
        state.connections += 1;
        Some(ConnectionSlot {
            ip,
            limits: self.clone(),
        })
    }

    /// Takes a token from `ip`'s shared bucket.
    fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut ips = self.lock();
        match ips.get_mut(&ip) {
            Some(state) => state.bucket.take(now),
            None => Ok(()),
        }
    }

    /// Connections currently counted for `ip`.
    #[cfg(test)]
    fn connections(&self, ip: IpAddr) -> u32 {
        self.lock().get(&ip).map_or(0, |s| s.connections)
    }
}

/// What the connection should do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Handle it.
    Allow,
    /// Refuse it with `rate_limited`; a token is available after this long.
    Refuse(Duration),
    /// Refused too often: close the connection with 1008.
    Close,
}

/// One connection's limiter: its own bucket, its IP's bucket, and its refusal count.
#[derive(Debug)]
pub struct ConnectionLimiter {
    /// Keeps the connection counted against its IP while it lives.
    slot: ConnectionSlot,
    bucket: TokenBucket,
    refusals: u32,
    window_start: Instant,
}

impl ConnectionLimiter {
    /// A limiter for a connection holding `slot`.
    pub fn new(slot: ConnectionSlot) -> Self {
        let now = Instant::now();
        let settings = slot.limits.settings;
        ConnectionLimiter {
            bucket: TokenBucket::new(settings.conn_per_sec, settings.conn_burst, now),
            slot,
            refusals: 0,
            window_start: now,
        }
    }

    /// Decides about one incoming frame.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let outcome = self
            .bucket
            .take(now)
            .and_then(|()| self.slot.limits.take(self.slot.ip, now));
        match outcome {
            Ok(()) => Verdict::Allow,
            Err(wait) => {
                if now.saturating_duration_since(self.window_start) > REFUSAL_WINDOW {
                    self.window_start = now;
                    self.refusals = 0;
                }
                self.refusals += 1;
                if self.refusals > MAX_REFUSALS {
                    Verdict::Close
                } else {
                    Verdict::Refuse(wait)
                }
            }
        }
    }
}

/// A limit on one kind of account request: `burst` at once, then one every `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Allowance {
    /// Requests allowed at once.
    pub burst: u32,
    /// One more is allowed after this long.
    pub every: Duration,
}

/// Rate limits keyed by anything (an IP, an account's email): one token bucket per
/// (allowance, key). Buckets that have refilled are forgotten when the map grows, so
/// memory is bounded by the keys active within one refill period.
#[derive(Debug, Clone, Default)]
pub struct KeyedLimits {
    buckets: Arc<Mutex<HashMap<(Allowance, String), TokenBucket>>>,
}

/// Entries beyond which full buckets are swept out.
const KEYED_SWEEP_AT: usize = 10_000;

impl KeyedLimits {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Allowance, String), TokenBucket>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a token for `key` under `allowance`, or says how long to wait.
    pub fn take(&self, allowance: Allowance, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.lock();
        if buckets.len() >= KEYED_SWEEP_AT {
            buckets.retain(|_, bucket| !bucket.is_full(now));
        }
        buckets
            .entry((allowance, key.to_string()))
            .or_insert_with(|| TokenBucket::every(allowance.every, allowance.burst, now))
            .take(now)
    }

    /// Gives back the token an attempt took (a correct password does not count
    /// against the account's failed-attempt allowance).
    pub fn refund(&self, allowance: Allowance, key: &str) {
        if let Some(bucket) = self.lock().get_mut(&(allowance, key.to_string())) {
            bucket.refund();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RateSettings {
        RateSettings {
            conn_per_sec: 10,
            conn_burst: 3,
            ip_per_sec: 100,
            ip_burst: 100,
            max_conns_per_ip: 2,
        }
    }

    #[test]
    fn bucket_allows_a_burst_then_refills() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 3, start);
        for _ in 0..3 {
            assert!(bucket.take(start).is_ok());
        }
        let wait = bucket.take(start).expect_err("empty");
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert!(bucket.take(start + Duration::from_millis(100)).is_ok());
        assert!(bucket.take(start + Duration::from_millis(100)).is_err());
        // Never more than the burst, however long it rested.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(bucket.take(later).is_ok());
        }
        assert!(bucket.take(later).is_err());
    }

    #[test]
    fn connections_per_ip_are_capped_and_released() {
        let limits = IpLimits::new(settings());
        let ip: IpAddr = [10, 0, 0, 1].into();
        let first = limits.connect(ip).expect("first");
        let _second = limits.connect(ip).expect("second");
        assert!(limits.connect(ip).is_none(), "third is over the cap");
        assert!(
            limits.connect([10, 0, 0, 2].into()).is_some(),
            "other IPs unaffected"
        );
        drop(first);
        assert_eq!(limits.connections(ip), 1);
        assert!(limits.connect(ip).is_some());
    }

    #[test]
    fn persistent_abuse_closes_the_connection() {
        let limits = IpLimits::new(settings());
        let mut limiter =
            ConnectionLimiter::new(limits.connect([10, 0, 0, 1].into()).expect("slot"));
        let now = Instant::now();
        let verdicts: Vec<Verdict> = (0..3 + MAX_REFUSALS + 1)
            .map(|_| limiter.check(now))
            .collect();
        assert!(verdicts[..3].iter().all(|v| *v == Verdict::Allow));
        assert!(verdicts[3..3 + MAX_REFUSALS as usize]
            .iter()
            .all(|v| matches!(v, Verdict::Refuse(_))));
        assert_eq!(verdicts.last(), Some(&Verdict::Close));
    }

    #[test]
    fn an_ip_shares_one_bucket_across_connections() {
        let limits = IpLimits::new(RateSettings {
            ip_burst: 4,
            ip_per_sec: 1,
            conn_burst: 100,
            conn_per_sec: 100,
            max_conns_per_ip: 10,
        });
        let ip: IpAddr = [10, 0, 0, 9].into();
        let mut a = ConnectionLimiter::new(limits.connect(ip).expect("a"));
        let mut b = ConnectionLimiter::new(limits.connect(ip).expect("b"));
        let now = Instant::now();
        assert_eq!(a.check(now), Verdict::Allow);
        assert_eq!(b.check(now), Verdict::Allow);
        assert_eq!(a.check(now), Verdict::Allow);
        assert_eq!(b.check(now), Verdict::Allow);
        assert!(matches!(a.check(now), Verdict::Refuse(_)));
        assert!(matches!(b.check(now), Verdict::Refuse(_)));
    }
}
