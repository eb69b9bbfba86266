//! Abuse limits: token buckets per connection and per IP, a cap on connections per
//! IP, and [`KeyedLimits`] for the account endpoints (per IP and per account).
//!
//! A client over its rate gets `rate_limited` errors with `retry_after_ms`; one that
//! keeps going (more than [`MAX_REFUSALS`] refused frames within [`REFUSAL_WINDOW`]) is
//! closed with 1008. The state per IP lives in one short-locked map; an entry outlives
//! the IP's last connection until its bucket has refilled, so reconnecting does not
//! buy a fresh bucket, and entries with nothing left to remember are swept when the
//! map grows, so memory stays bounded by recently active clients.
//!
//! Every per-IP count is per [`ip_key`]: an IPv4 address, or an IPv6 address's /64 —
//! one customer's line usually gets a whole /64, and counting each of its 2⁶⁴
//! addresses apart would make every per-IP limit meaningless.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Refused frames tolerated within [`REFUSAL_WINDOW`] before the connection is closed.
pub const MAX_REFUSALS: u32 = 30;
/// The window over which refusals are counted.
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(10);

/// The address per-IP limits count: IPv4 as it is (also when written as an
/// IPv4-mapped IPv6 address), IPv6 by its /64 network.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(network))
            }
        },
    }
}

/// Entries of a per-key map beyond which entries with nothing to remember are swept.
const SWEEP_AT: usize = 10_000;
/// A large map is swept at most this often, so a flood of new keys costs one pass a
/// second, not one per key.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// A map whose stale entries are swept out once it is large (see [`SWEEP_AT`]).
#[derive(Debug)]
struct SweptMap<K, V> {
    entries: HashMap<K, V>,
    swept: Option<Instant>,
}

impl<K, V> Default for SweptMap<K, V> {
    fn default() -> Self {
        SweptMap {
            entries: HashMap::new(),
            swept: None,
        }
    }
}

impl<K: std::hash::Hash + Eq, V> SweptMap<K, V> {
    /// Drops the entries `keep` rejects, if the map is large and was not swept lately.
    fn sweep(&mut self, now: Instant, keep: impl FnMut(&K, &mut V) -> bool) {
        let due = self
            .swept
            .is_none_or(|at| now.saturating_duration_since(at) >= SWEEP_EVERY);
        if self.entries.len() >= SWEEP_AT && due {
            self.entries.retain(keep);
            self.swept = Some(now);
        }
    }
}

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
    ips: Arc<Mutex<SweptMap<IpAddr, IpState>>>,
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
        if let Some(state) = ips.entries.get_mut(&self.ip) {
            state.connections = state.connections.saturating_sub(1);
            // The bucket stays until it has refilled: reconnecting must not refill it.
            if state.connections == 0 && state.bucket.is_full(Instant::now()) {
                ips.entries.remove(&self.ip);
            }
        }
    }
}

impl IpLimits {
    /// Limits with these settings.
    pub fn new(settings: RateSettings) -> Self {
        IpLimits {
            settings,
            ips: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SweptMap<IpAddr, IpState>> {
        self.ips.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a new connection from `ip` (by its [`ip_key`]), unless the IP is at
    /// its cap.
    pub fn connect(&self, ip: IpAddr) -> Option<ConnectionSlot> {
        let ip = ip_key(ip);
        let now = Instant::now();
        let mut ips = self.lock();
        ips.sweep(now, |_, state| {
            state.connections > 0 || !state.bucket.is_full(now)
        });
        let state = ips.entries.entry(ip).or_insert_with(|| IpState {
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
        match ips.entries.get_mut(&ip) {
            Some(state) => state.bucket.take(now),
            None => Ok(()),
        }
    }

    /// Connections currently counted for `ip`.
    #[cfg(test)]
    fn connections(&self, ip: IpAddr) -> u32 {
        self.lock()
            .entries
            .get(&ip_key(ip))
            .map_or(0, |s| s.connections)
    }
}

/// Plain HTTP connections open per IP (by [`ip_key`]), capped; trusted proxies,
/// which carry many clients' requests, are not counted.
#[derive(Debug, Clone)]
pub struct HttpConnections {
    max_per_ip: u32,
    trusted: Arc<[IpAddr]>,
    open: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

/// One counted HTTP connection; uncounts on drop.
#[derive(Debug)]
pub struct HttpSlot {
    ip: Option<IpAddr>,
    counts: HttpConnections,
}

impl Drop for HttpSlot {
    fn drop(&mut self) {
        let Some(ip) = self.ip else { return };
        let mut open = self.counts.lock();
        if let Some(count) = open.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&ip);
            }
        }
    }
}

impl HttpConnections {
    /// At most `max_per_ip` connections per IP, except from `trusted` proxies.
    pub fn new(max_per_ip: u32, trusted: Vec<IpAddr>) -> Self {
        HttpConnections {
            max_per_ip,
            trusted: trusted.into(),
            open: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a connection from `peer`, or `None` when its IP is at the cap.
    pub fn open(&self, peer: IpAddr) -> Option<HttpSlot> {
        if self.trusted.contains(&peer) {
            return Some(HttpSlot {
                ip: None,
                counts: self.clone(),
            });
        }
        let ip = ip_key(peer);
        let mut open = self.lock();
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return None;
        }
        *count += 1;
        Some(HttpSlot {
            ip: Some(ip),
            counts: self.clone(),
        })
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

    /// The address (by [`ip_key`]) this connection counts against.
    pub fn ip(&self) -> IpAddr {
        self.slot.ip
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
/// (allowance, key). Buckets that have refilled are forgotten when the map grows, and
/// the map never holds more than [`KEYED_MAX`] buckets: when that many keys are all
/// still limited, a new key is refused until some refill (failing closed — the
/// per-IP limits in front make that take very many addresses). Callers validate keys
/// before using them, so a key is short.
#[derive(Debug, Clone, Default)]
pub struct KeyedLimits {
    buckets: Arc<Mutex<SweptMap<(Allowance, String), TokenBucket>>>,
}

/// Most buckets a [`KeyedLimits`] holds.
pub const KEYED_MAX: usize = 100_000;
/// How long a new key is told to wait when the map is full of limited keys.
const KEYED_FULL_WAIT: Duration = Duration::from_secs(60);

impl KeyedLimits {
    fn lock(&self) -> std::sync::MutexGuard<'_, SweptMap<(Allowance, String), TokenBucket>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a token for `key` under `allowance`, or says how long to wait.
    pub fn take(&self, allowance: Allowance, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.lock();
        let entry = (allowance, key.to_string());
        if !buckets.entries.contains_key(&entry) {
            buckets.sweep(now, |_, bucket| !bucket.is_full(now));
            if buckets.entries.len() >= KEYED_MAX {
                return Err(KEYED_FULL_WAIT);
            }
        }
        buckets
            .entries
            .entry(entry)
            .or_insert_with(|| TokenBucket::every(allowance.every, allowance.burst, now))
            .take(now)
    }

    /// Gives back the token an attempt took (a correct password does not count
    /// against the account's failed-attempt allowance).
    pub fn refund(&self, allowance: Allowance, key: &str) {
        if let Some(bucket) = self.lock().entries.get_mut(&(allowance, key.to_string())) {
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

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(other));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(ip_key(mapped), IpAddr::from([10, 0, 0, 1]));
        // One /64 shares the connection cap.
        let limits = IpLimits::new(settings());
        let _first = limits.connect(a).expect("first");
        let _second = limits.connect(b).expect("second");
        assert!(limits.connect(a).is_none());
        assert!(limits.connect(other).is_some());
    }

    #[test]
    fn reconnecting_does_not_refill_the_ip_bucket() {
        let limits = IpLimits::new(RateSettings {
            ip_burst: 2,
            ip_per_sec: 1,
            conn_burst: 100,
            conn_per_sec: 100,
            max_conns_per_ip: 10,
        });
        let ip: IpAddr = [10, 0, 0, 7].into();
        let now = Instant::now();
        let mut first = ConnectionLimiter::new(limits.connect(ip).expect("first"));
        assert_eq!(first.check(now), Verdict::Allow);
        assert_eq!(first.check(now), Verdict::Allow);
        drop(first);
        let mut again = ConnectionLimiter::new(limits.connect(ip).expect("again"));
        assert!(matches!(again.check(now), Verdict::Refuse(_)));
    }

    #[test]
    fn keyed_limits_hold_a_bounded_number_of_keys() {
        let limits = KeyedLimits::default();
        let slow = Allowance {
            burst: 1,
            every: Duration::from_secs(3600),
        };
        for key in 0..KEYED_MAX {
            assert!(limits.take(slow, &key.to_string()).is_ok());
        }
        // Every bucket is still limited, so none can be forgotten: a new key waits.
        assert!(limits.take(slow, "one more").is_err());
        assert_eq!(limits.lock().entries.len(), KEYED_MAX);
        // A key it knows is still answered from its own bucket.
        assert!(limits.take(slow, "0").is_err());
    }
}
