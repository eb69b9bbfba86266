//! What the browser keeps in localStorage (gloo-storage), all under keys made of the
//! server's origin and, for anything personal, the user's id (see [`crate::logic`]):
//!
//! - the guest credentials for this server (an account's session is an HttpOnly
//!   cookie instead, out of reach of scripts);
//! - per user: a [`Profile`] (who I am, my rooms, read positions, the room on screen,
//!   open popups) and each room's last [`logic::CACHE_PER_ROOM`] messages;
//! - how often each emoji was used to react, so the picker offers those first.
//!
//! A corrupt or old-format entry is deleted and treated as absent, never a crash.
//!
//! This module owns the shapes it stores ([`Profile`], [`StoredPopup`]) and knows
//! nothing of the chat state or the socket: [`crate::chat`] hands it plain data. The
//! formats are what browsers already hold, so they never change silently (a test pins
//! the profile's JSON).

use std::collections::HashMap;

use gloo_storage::{LocalStorage, Storage};
use natter_protocol::{ChatMessage, GuestCredentials, RoomId, RoomInfo, Seq, UserId, UserSummary};
use serde::{Deserialize, Serialize};

use crate::logic;

/// The user's own snapshot, restored before the socket is back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    /// Who I was.
    pub me: UserSummary,
    /// My rooms.
    pub rooms: Vec<RoomInfo>,
    /// Newest seq read per room.
    pub read: Vec<(RoomId, Seq)>,
    /// The room in the main pane.
    pub current: Option<RoomId>,
    /// Open direct-message popups.
    pub popups: Vec<StoredPopup>,
    /// Rooms muted on this browser (absent in profiles from before mutes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub muted: Vec<RoomId>,
}

/// An open direct-message popup, as the profile keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPopup {
    /// The direct room.
    pub room: RoomId,
    /// Folded to its title bar.
    pub minimized: bool,
}

/// This page's origin: the namespace of everything natter keeps here.
pub fn origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}

/// Reads a key; a value that does not parse is removed.
fn get<T: for<'de> Deserialize<'de>>(key: &str) -> Option<T> {
    match LocalStorage::get::<T>(key) {
        Ok(value) => Some(value),
        Err(gloo_storage::errors::StorageError::KeyNotFound(_)) => None,
        Err(err) => {
            leptos::logging::warn!("dropping unreadable cache entry {key}: {err}");
            LocalStorage::delete(key);
            None
        }
    }
}

fn set<T: Serialize + ?Sized>(key: &str, value: &T) {
    if let Err(err) = LocalStorage::set(key, value) {
        // Quota exceeded or storage disabled: the cache is an optimisation only.
        leptos::logging::warn!("could not cache {key}: {err}");
    }
}

/// The guest identity this browser holds for this server.
pub fn load_credentials() -> Option<GuestCredentials> {
    get(&logic::credentials_key(&origin()))
}

/// Keeps the guest identity for the next visit.
pub fn save_credentials(credentials: &GuestCredentials) {
    set(&logic::credentials_key(&origin()), credentials);
}

/// Forgets the guest identity.
pub fn forget_credentials() {
    LocalStorage::delete(logic::credentials_key(&origin()));
}

/// The profile of the identity this browser holds, if it matches the credentials.
pub fn load_profile() -> Option<Profile> {
    let credentials = load_credentials()?;
    let profile: Profile = get(&logic::profile_key(&origin(), &credentials.user_id))?;
    (profile.me.id == credentials.user_id).then_some(profile)
}

/// The profile cached for a signed-in account's user.
pub fn load_profile_of(user: &UserId) -> Option<Profile> {
    let profile: Profile = get(&logic::profile_key(&origin(), user))?;
    (&profile.me.id == user).then_some(profile)
}

/// Saves the profile.
pub fn save_profile(profile: &Profile) {
    set(&logic::profile_key(&origin(), &profile.me.id), profile);
}

/// A room's cached messages; anything malformed or from another room is dropped.
pub fn load_history(user: &UserId, room: RoomId) -> Vec<ChatMessage> {
    let mut messages: Vec<ChatMessage> =
        get(&logic::storage_key(&origin(), user, room)).unwrap_or_default();
    messages.retain(|m| m.room == room);
    let mut clean = Vec::with_capacity(messages.len());
    logic::merge_history(&mut clean, messages);
    clean
}

/// Caches the newest messages of a room.
pub fn save_history(user: &UserId, room: RoomId, messages: &[ChatMessage]) {
    let start = messages.len().saturating_sub(logic::CACHE_PER_ROOM);
    set(
        &logic::storage_key(&origin(), user, room),
        &messages[start..],
    );
}

/// The emoji the reaction picker offers first: the ones this browser used most, then
/// [`logic::PICKER_EMOJI`].
pub fn frequent_emoji() -> Vec<String> {
    let counts: HashMap<String, u32> = get(&logic::emoji_key(&origin())).unwrap_or_default();
    logic::rank_emoji(&counts)
}

/// Counts one more use of `emoji` for [`frequent_emoji`].
pub fn count_emoji(emoji: &str) {
    let key = logic::emoji_key(&origin());
    let mut counts: HashMap<String, u32> = get(&key).unwrap_or_default();
    *counts.entry(emoji.to_string()).or_default() += 1;
    // Bounded: the least used go once there are more than the picker could show.
    if counts.len() > 2 * logic::PICKER_EMOJI.len() {
        let mut ranked: Vec<(String, u32)> = counts.into_iter().collect();
        ranked.sort_by_key(|entry| std::cmp::Reverse(entry.1));
        ranked.truncate(logic::PICKER_EMOJI.len());
        counts = ranked.into_iter().collect();
    }
    set(&key, &counts);
}

/// Whether notifications were offered on this browser already (they are offered once).
pub fn notifications_offered() -> bool {
    get::<bool>(&logic::notifications_offered_key(&origin())).unwrap_or(false)
}

/// Notes that notifications were offered (whatever the answer).
pub fn note_notifications_offered() {
    set(&logic::notifications_offered_key(&origin()), &true);
}

/// Removes a room's cached messages (after leaving it).
pub fn forget_room(user: &UserId, room: RoomId) {
    LocalStorage::delete(logic::storage_key(&origin(), user, room));
}

/// Removes everything stored for `user` on this server.
pub fn forget_user(user: &UserId) {
    let prefix = logic::user_prefix(&origin(), user);
    let storage = LocalStorage::raw();
    let keys: Vec<String> = (0..storage.length().unwrap_or(0))
        .filter_map(|i| storage.key(i).ok().flatten())
        .filter(|key| key.starts_with(&prefix))
        .collect();
    for key in keys {
        LocalStorage::delete(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_protocol::RoomKind;

    /// A profile exactly as browsers already hold it: whatever the code's types become,
    /// this must keep loading and be written back the same way.
    const STORED_PROFILE: &str = r#"{"me":{"id":"u1","name":"Ann"},"rooms":[{"id":3,"kind":"channel","name":"general","delete_when_empty":false,"latest_seq":7},{"id":9,"kind":"direct","members":[{"id":"u1","name":"Ann"},{"id":"u2","name":"Bob"}],"delete_when_empty":false,"latest_seq":2}],"read":[[3,7],[9,1]],"current":3,"popups":[{"room":9,"minimized":true}]}"#;

    #[test]
    fn the_stored_profile_format_is_unchanged() {
        let profile: Profile = match serde_json::from_str(STORED_PROFILE) {
            Ok(profile) => profile,
            Err(err) => panic!("a stored profile no longer loads: {err}"),
        };
        assert_eq!(profile.me.name, "Ann");
        assert_eq!(profile.read, [(RoomId(3), 7), (RoomId(9), 1)]);
        assert_eq!(profile.current, Some(RoomId(3)));
        assert_eq!(profile.popups.len(), 1);
        assert_eq!(profile.popups[0].room, RoomId(9));
        assert!(profile.popups[0].minimized);
        assert!(matches!(&profile.rooms[1].kind, RoomKind::Direct { .. }));
        assert_eq!(
            serde_json::to_string(&profile).ok().as_deref(),
            Some(STORED_PROFILE)
        );
    }
}
