//! The channel browser's list: every public channel with its member count.
//!
//! Counting members is a `GROUP BY` over the memberships, too dear to run for every
//! click of a browse button — a guest can send one request after another. So the list
//! is counted once and shared by everyone who asks within [`DIRECTORY_FRESH`]; the
//! async mutex makes a crowd arriving together wait for one count instead of starting
//! one each. Counts that are a few seconds old are fine for choosing a channel.

use std::sync::Arc;
use std::time::Duration;

use natter_protocol::ChannelListing;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::store::{Store, StoreResult};

/// How long one count answers every browse request.
pub const DIRECTORY_FRESH: Duration = Duration::from_secs(5);

/// The last count and when it was taken.
#[derive(Default)]
pub(super) struct DirectoryCache {
    last: Mutex<Option<(Instant, Arc<Vec<ChannelListing>>)>>,
}

impl DirectoryCache {
    /// The channel list, counted at most [`DIRECTORY_FRESH`] ago.
    pub(super) async fn get(&self, store: &dyn Store) -> StoreResult<Arc<Vec<ChannelListing>>> {
        let mut last = self.last.lock().await;
        if let Some((counted, listings)) = last.as_ref() {
            if counted.elapsed() < DIRECTORY_FRESH {
                return Ok(listings.clone());
            }
        }
        let listings = Arc::new(store.channel_directory().await?);
        *last = Some((Instant::now(), listings.clone()));
        Ok(listings)
    }
}
