//! What one person may create or try: the limits on counts a client can grow.
//!
//! Frames per second are [`crate::limits`]' business; this is about what the frames
//! leave behind. Each limit has its own error code (docs/protocol.md, "Limits"):
//!
//! | limit | default | refusal |
//! |---|---|---|
//! | rooms one user is in | 500 | `too_many_rooms` |
//! | channels on the server | 1000 | `too_many_channels` |
//! | people one user blocks | 1000 | `too_many_blocks` |
//! | channels and code rooms created, per user and per IP | 20 an hour | `quota_exceeded` |
//! | new direct rooms opened, per user and per IP | 30 an hour | `quota_exceeded` |
//! | wrong room codes tried, per user and per IP | 20 an hour | `quota_exceeded` |
//! | files uploaded, per user and per IP | 20 a minute | HTTP `429 quota_exceeded` |
//!
//! "N an hour" is a bucket of N that refills at N an hour: all at once, then evenly.
//! (Bytes uploaded per day are counted from the database by [`crate::files`].)
//!
//! Hourly quotas count per user **and** per IP (an IPv6 /64): a stranger who makes a
//! new guest for every attempt still meets the IP's bucket, and people behind one
//! address (an office) each have their own user bucket inside the IP's larger one.
//! Buckets live in a [`KeyedLimits`], bounded like the account limiters'.

use std::net::IpAddr;
use std::time::Duration;

use natter_protocol::UserId;

use crate::limits::{ip_key, Allowance, KeyedLimits};

/// A quota counted per user and per IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// Channels and code rooms created.
    RoomsCreated,
    /// Direct rooms opened that did not exist yet.
    DirectsOpened,
    /// `join_by_code` attempts naming no room.
    FailedCodes,
    /// Files uploaded (`POST /api/uploads`).
    Uploads,
}

impl Quota {
    /// The key prefix that keeps this quota's buckets apart from the others'.
    fn label(self) -> &'static str {
        match self {
            Quota::RoomsCreated => "rooms-created",
            Quota::DirectsOpened => "directs-opened",
            Quota::FailedCodes => "failed-codes",
            Quota::Uploads => "uploads",
        }
    }

    /// Its `kind` label in `natter_refusals_total`.
    pub fn metric_kind(self) -> &'static str {
        match self {
            Quota::RoomsCreated => "quota_rooms_created",
            Quota::DirectsOpened => "quota_directs_opened",
            Quota::FailedCodes => "quota_failed_codes",
            Quota::Uploads => "quota_uploads",
        }
    }

    /// What the person is told, with how long to wait.
    pub fn refusal(self, wait: Duration) -> String {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let what = match self {
            Quota::RoomsCreated => "You created many rooms lately",
            Quota::DirectsOpened => "You started many private conversations lately",
            Quota::FailedCodes => "Too many wrong room codes",
            Quota::Uploads => {
                let seconds = wait.as_secs().max(1);
                return format!("You uploaded many files just now; try again in {seconds} s.");
            }
        };
        format!("{what}; try again in {minutes} min.")
    }
}

/// The limits' settings (from [`crate::Config`]).
#[derive(Debug, Clone, Copy)]
pub struct QuotaSettings {
    /// Rooms one user may be a member of.
    pub max_rooms_per_user: usize,
    /// Channels the server holds at most.
    pub max_channels: usize,
    /// People one user may block.
    pub max_blocks_per_user: usize,
    /// How long after sending a message its author may edit it (`None`: always).
    pub edit_window: Option<Duration>,
    /// Most members a room may have for `@room` to be allowed in it.
    pub mention_room_max_members: u32,
    /// Most members a room may have for typing indicators to be passed on in it.
    pub typing_max_members: u32,
    /// Channels and code rooms one user (and one IP) may create.
    pub rooms_created: Allowance,
    /// New direct rooms one user (and one IP) may open.
    pub directs_opened: Allowance,
    /// Wrong room codes one user (and one IP) may try.
    pub failed_codes: Allowance,
    /// Files one user (and one IP) may upload.
    pub uploads: Allowance,
}

/// The quotas' settings and buckets, shared by every connection of the node.
#[derive(Debug, Clone)]
pub struct Quotas {
    settings: QuotaSettings,
    buckets: KeyedLimits,
}

impl Quotas {
    /// Empty buckets under these settings.
    pub fn new(settings: QuotaSettings) -> Self {
        Quotas {
            settings,
            buckets: KeyedLimits::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &QuotaSettings {
        &self.settings
    }

    fn allowance(&self, quota: Quota) -> Allowance {
        match quota {
            Quota::RoomsCreated => self.settings.rooms_created,
            Quota::DirectsOpened => self.settings.directs_opened,
            Quota::FailedCodes => self.settings.failed_codes,
            Quota::Uploads => self.settings.uploads,
        }
    }

    fn keys(quota: Quota, user: &UserId, ip: IpAddr) -> [String; 2] {
        [
            format!("{}:user:{}", quota.label(), user.0),
            format!("{}:ip:{}", quota.label(), ip_key(ip)),
        ]
    }

    /// Counts one use of `quota` by `user` from `ip`, or says how long to wait. A
    /// refusal takes nothing from either bucket.
    pub fn take(&self, quota: Quota, user: &UserId, ip: IpAddr) -> Result<(), Duration> {
        let allowance = self.allowance(quota);
        let [user_key, ip_key] = Self::keys(quota, user, ip);
        self.buckets.take(allowance, &user_key)?;
        if let Err(wait) = self.buckets.take(allowance, &ip_key) {
            self.buckets.refund(allowance, &user_key);
            return Err(wait);
        }
        Ok(())
    }

    /// Gives back a use that turned out not to count (the room existed already).
    pub fn refund(&self, quota: Quota, user: &UserId, ip: IpAddr) {
        let allowance = self.allowance(quota);
        for key in Self::keys(quota, user, ip) {
            self.buckets.refund(allowance, &key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotas() -> Quotas {
        let two = Allowance {
            burst: 2,
            every: Duration::from_secs(3600),
        };
        Quotas::new(QuotaSettings {
            max_rooms_per_user: 10,
            max_channels: 10,
            max_blocks_per_user: 10,
            edit_window: None,
            mention_room_max_members: 50,
            typing_max_members: 100,
            rooms_created: two,
            directs_opened: two,
            failed_codes: two,
            uploads: two,
        })
    }

    #[test]
    fn a_new_guest_per_attempt_still_meets_the_ip_bucket() {
        let quotas = quotas();
        let ip: IpAddr = [203, 0, 113, 5].into();
        let guest = |n: u32| UserId(format!("guest{n}"));
        assert!(quotas.take(Quota::FailedCodes, &guest(1), ip).is_ok());
        assert!(quotas.take(Quota::FailedCodes, &guest(2), ip).is_ok());
        assert!(quotas.take(Quota::FailedCodes, &guest(3), ip).is_err());
        // Another address, another bucket; another quota, too.
        let elsewhere: IpAddr = [198, 51, 100, 1].into();
        assert!(quotas
            .take(Quota::FailedCodes, &guest(3), elsewhere)
            .is_ok());
        assert!(quotas.take(Quota::RoomsCreated, &guest(4), ip).is_ok());
    }

    #[test]
    fn a_refused_use_and_a_refund_cost_nothing() {
        let quotas = quotas();
        let ip: IpAddr = [203, 0, 113, 6].into();
        let ann = UserId("ann".into());
        let bo = UserId("bo".into());
        assert!(quotas.take(Quota::DirectsOpened, &ann, ip).is_ok());
        assert!(quotas.take(Quota::DirectsOpened, &bo, ip).is_ok());
        // The IP is empty: Ann's own bucket keeps its last token.
        assert!(quotas.take(Quota::DirectsOpened, &ann, ip).is_err());
        let other_ip: IpAddr = [203, 0, 113, 7].into();
        assert!(quotas.take(Quota::DirectsOpened, &ann, other_ip).is_ok());
        quotas.refund(Quota::DirectsOpened, &ann, other_ip);
        assert!(quotas.take(Quota::DirectsOpened, &ann, other_ip).is_ok());
        assert!(quotas.take(Quota::DirectsOpened, &ann, other_ip).is_err());
    }
}
