//! The client's pure logic: no browser, no signals, so it is unit-tested natively
//! (`cargo test -p natter-web`).
//!
//! - [`merge_history`], [`apply_batch`], [`replace_changed`]: fold server batches,
//!   live messages and the cached history into one seq-ordered, duplicate-free list,
//!   each message in its newest known state (by `rev`). (The server gives a connection
//!   each event once; the merge joins what the cache held with what comes, and is a
//!   defence.)
//! - [`storage_key`]: where a room's cached history lives in localStorage, so two
//!   people on one browser never see each other's history.
//! - [`Backoff`]: full-jitter exponential reconnect delays.
//! - The bounds the client keeps under load: [`HELD_PER_ROOM`], [`OFFLINE_PEOPLE`],
//!   [`RESEND_AT_ONCE`], [`PACE_MS`].
//! - [`room_title`]: a room's name. (A person's colour is [`crate::colour`]'s; message
//!   formatting and links are `natter_protocol::format`'s.)

use natter_protocol::{ChatMessage, RoomId, RoomInfo, RoomKind, Seq, UserId};

/// How many messages of one room the browser keeps in localStorage.
pub const CACHE_PER_ROOM: usize = 200;
/// How many messages of one room are held in memory while live ones arrive; the oldest
/// beyond it are let go (and paged back from the server on scroll).
pub const HELD_PER_ROOM: usize = 1000;
/// People shown offline that are remembered; the longest gone are forgotten beyond it.
pub const OFFLINE_PEOPLE: usize = 200;
/// Pending messages resent at once after a reconnect; more are paced.
pub const RESEND_AT_ONCE: usize = 20;
/// Milliseconds between paced sends: 10 a second, half the server's default
/// per-connection rate, so paced sends are never refused for speed.
pub const PACE_MS: u64 = 100;

/// Merges `incoming` into `history` (sorted by seq, no duplicates) and keeps it so. A
/// message already held is replaced by an incoming copy that includes at least as many
/// changes (its `rev`): a history read later knows better. Returns true if anything
/// changed.
pub fn merge_history(
    history: &mut Vec<ChatMessage>,
    incoming: impl IntoIterator<Item = ChatMessage>,
) -> bool {
    let mut changed = false;
    for message in incoming {
        match history.binary_search_by_key(&message.seq, |m| m.seq) {
            Ok(at) => {
                if message.rev >= history[at].rev && history[at] != message {
                    history[at] = message;
                    changed = true;
                }
            }
            Err(at) => {
                history.insert(at, message);
                changed = true;
            }
        }
    }
    changed
}

/// Replaces the held copies of `changed` messages with theirs (when newer); messages
/// not held are not added — they are older than what is held, and the held run has no
/// holes. Returns true if anything changed.
pub fn replace_changed(history: &mut [ChatMessage], changed: Vec<ChatMessage>) -> bool {
    let mut replaced = false;
    for message in changed {
        if let Ok(at) = history.binary_search_by_key(&message.seq, |m| m.seq) {
            if message.rev >= history[at].rev && history[at] != message {
                history[at] = message;
                replaced = true;
            }
        }
    }
    replaced
}

/// Brings the quotes of held replies to message `original` in line with the held
/// original (edited or deleted since they were sent). Nothing when it is not held.
pub fn refresh_quotes(history: &mut [ChatMessage], original: Seq) {
    let Some(now) = history
        .iter()
        .find(|m| m.seq == original)
        .map(natter_protocol::ReplyPreview::of)
    else {
        return;
    };
    for reply in history.iter_mut() {
        if let Some(quote) = reply.reply_to.as_mut().filter(|q| q.seq == original) {
            quote.clone_from(&now);
        }
    }
}

/// Folds a `history` batch from the server into `history`. `missed_some`: the batch is
/// a catch-up that left messages out between what is held and itself — the held ones
/// are dropped, so the client keeps one run without holes and pages the rest back from
/// the server on scroll. Returns true if anything changed.
pub fn apply_batch(
    history: &mut Vec<ChatMessage>,
    batch: Vec<ChatMessage>,
    missed_some: bool,
) -> bool {
    let Some(first) = batch.first().map(|m| m.seq) else {
        return false;
    };
    let mut changed = false;
    if missed_some && history.iter().any(|m| m.seq < first) {
        history.retain(|m| m.seq >= first);
        changed = true;
    }
    merge_history(history, batch) || changed
}

/// Keeps only the newest `keep` messages.
pub fn trim_history(history: &mut Vec<ChatMessage>, keep: usize) {
    if history.len() > keep {
        history.drain(..history.len() - keep);
    }
}

/// The localStorage key of a room's cached history: server origin + user + room.
pub fn storage_key(origin: &str, user: &UserId, room: RoomId) -> String {
    format!("{}room/{room}", user_prefix(origin, user))
}

/// The prefix of every localStorage key that belongs to one user on one server, so
/// signing out can remove exactly that user's data.
pub fn user_prefix(origin: &str, user: &UserId) -> String {
    format!("natter/v1/{origin}/{user}/")
}

/// The localStorage key of a user's own snapshot: rooms, read positions, last room.
pub fn profile_key(origin: &str, user: &UserId) -> String {
    format!("{}profile", user_prefix(origin, user))
}

/// The localStorage key of this browser's guest identity on a server.
pub fn credentials_key(origin: &str) -> String {
    format!("natter/v1/{origin}/credentials")
}

/// The localStorage key of how often each emoji was used to react on a server.
pub fn emoji_key(origin: &str) -> String {
    format!("natter/v1/{origin}/emoji")
}

/// The localStorage key saying notifications were offered on this browser (once).
pub fn notifications_offered_key(origin: &str) -> String {
    format!("natter/v1/{origin}/notifications-offered")
}

/// What the reaction picker offers when nothing was used yet, most common first.
pub const PICKER_EMOJI: [&str; 16] = [
    "👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀", "🔥", "✅", "👎", "🤔", "💯", "🚀", "👏", "😊",
];

/// The picker's emoji: those used most first (ties in a fixed order), then the
/// defaults not used yet; as many as [`PICKER_EMOJI`] has.
pub fn rank_emoji(counts: &std::collections::HashMap<String, u32>) -> Vec<String> {
    let mut used: Vec<(&String, &u32)> = counts
        .iter()
        .filter(|(emoji, _)| natter_protocol::validate::emoji(emoji).is_ok())
        .collect();
    used.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut ranked: Vec<String> = used.into_iter().map(|(e, _)| e.clone()).collect();
    for emoji in PICKER_EMOJI {
        if !ranked.iter().any(|e| e == emoji) {
            ranked.push(emoji.to_string());
        }
    }
    ranked.truncate(PICKER_EMOJI.len());
    ranked
}

/// The localStorage key of the last display name used on a server.
pub fn name_key(origin: &str) -> String {
    format!("natter/v1/{origin}/name")
}

/// Full-jitter exponential backoff: attempt n waits a random time in
/// `[0, min(cap, base·2^n)]`, which spreads a crowd of reconnecting clients out.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// First ceiling, in milliseconds.
    base_ms: u64,
    /// Largest ceiling, in milliseconds.
    cap_ms: u64,
    /// Failed attempts so far.
    attempt: u32,
}

impl Backoff {
    /// natter's reconnect policy: from about 0.5 s up to 20 s.
    pub fn reconnect() -> Self {
        Backoff {
            base_ms: 500,
            cap_ms: 20_000,
            attempt: 0,
        }
    }

    /// The next delay; `random` is a uniform number in [0, 1).
    pub fn next_delay_ms(&mut self, random: f64) -> u64 {
        let ceiling = self.ceiling_ms();
        self.attempt = self.attempt.saturating_add(1);
        // Never 0: at least a short pause so a down server is not hammered.
        ((ceiling as f64) * random.clamp(0.0, 1.0)).max(100.0) as u64
    }

    /// The current attempt's upper bound.
    pub fn ceiling_ms(&self) -> u64 {
        let exp = 1u64.checked_shl(self.attempt.min(20)).unwrap_or(u64::MAX);
        self.base_ms.saturating_mul(exp).min(self.cap_ms)
    }

    /// Back to the first step after a successful connection.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// How a room is named in lists and titles, from `me`'s point of view: `#channel`,
/// `Room CODE`, or the other person's name for a direct room.
pub fn room_title(room: &RoomInfo, me: Option<&UserId>) -> String {
    match &room.kind {
        RoomKind::Channel { name } => format!("#{name}"),
        RoomKind::Code { code } => format!("Room {code}"),
        RoomKind::Direct { members } => members
            .iter()
            .find(|m| Some(&m.id) != me)
            .or(members.first())
            .map(|m| m.name.clone())
            .unwrap_or_default(),
    }
}

/// The `@name` being typed at the end of `before_caret` (the text before the cursor),
/// if any: the byte where its `@` is and what follows it so far. An `@` counts at the
/// start or after a space or opening bracket (not inside an email address), and the
/// name so far is one line of at most a name's length.
pub fn mention_query(before_caret: &str) -> Option<(usize, &str)> {
    let at = before_caret.rfind('@')?;
    let query = &before_caret[at + 1..];
    let opens = before_caret[..at]
        .chars()
        .next_back()
        .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | '[' | '{' | '"' | '\'' | '>'));
    let plausible = !query.contains(['\n', '@'])
        && !query.starts_with(' ')
        && !query.contains("  ")
        && query.chars().count() <= natter_protocol::validate::MAX_NAME_CHARS;
    (opens && plausible).then_some((at, query))
}

/// The byte index in `text` of the cursor position `utf16` (a text field's
/// `selectionStart` counts UTF-16 code units), clamped to the text.
pub fn byte_index_of_utf16(text: &str, utf16: usize) -> usize {
    let mut units = 0;
    for (at, c) in text.char_indices() {
        if units >= utf16 {
            return at;
        }
        units += c.len_utf16();
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_protocol::{MessageKind, UserSummary};

    #[test]
    fn a_cursor_in_utf16_units_is_found_in_the_text() {
        assert_eq!(byte_index_of_utf16("ab", 1), 1);
        assert_eq!(byte_index_of_utf16("é@a", 1), 2);
        assert_eq!(byte_index_of_utf16("😀@a", 2), 4);
        assert_eq!(byte_index_of_utf16("ab", 9), 2);
    }

    #[test]
    fn a_mention_is_being_typed_after_an_at_that_starts_a_word() {
        assert_eq!(mention_query("hi @an"), Some((3, "an")));
        assert_eq!(mention_query("@"), Some((0, "")));
        assert_eq!(mention_query("hi @Ann Le"), Some((3, "Ann Le")));
        assert_eq!(mention_query("(@bo"), Some((1, "bo")));
        assert_eq!(mention_query("mail ann@example"), None);
        assert_eq!(mention_query("@ann\nnext"), None);
        assert_eq!(mention_query("@ ann"), None);
        assert_eq!(mention_query("no at here"), None);
    }

    fn msg(seq: Seq) -> ChatMessage {
        ChatMessage::new(
            RoomId(1),
            seq,
            UserSummary {
                id: UserId("u".into()),
                name: "Ann".into(),
            },
            0,
            MessageKind::Text,
            format!("m{seq}"),
        )
    }

    fn seqs(history: &[ChatMessage]) -> Vec<Seq> {
        history.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn merge_sorts_and_drops_duplicates() {
        let mut history = vec![msg(2), msg(3)];
        assert!(merge_history(
            &mut history,
            [msg(5), msg(1), msg(3), msg(4)]
        ));
        assert_eq!(seqs(&history), [1, 2, 3, 4, 5]);
        assert!(
            !merge_history(&mut history, [msg(2), msg(5)]),
            "nothing new"
        );
        assert_eq!(seqs(&history), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_catch_up_that_missed_messages_replaces_the_older_ones() {
        let mut history: Vec<_> = (1..=10).map(msg).collect();
        // 150 were missed: the server sends the newest 100 and says it left some out.
        assert!(apply_batch(
            &mut history,
            (161..=260).map(msg).collect(),
            true
        ));
        assert_eq!(history.first().map(|m| m.seq), Some(161));
        assert_eq!(history.len(), 100);
    }

    #[test]
    fn a_batch_that_connects_keeps_everything() {
        let mut history: Vec<_> = (1..=10).map(msg).collect();
        // Seqs may skip (changes took 11 and 12): still one run.
        assert!(apply_batch(
            &mut history,
            (13..=20).map(msg).collect(),
            false
        ));
        assert_eq!(history.len(), 18);
        // An older page (scroll-back) is merged at the front.
        let mut recent: Vec<_> = (101..=110).map(msg).collect();
        assert!(apply_batch(
            &mut recent,
            (1..=100).map(msg).collect(),
            false
        ));
        assert_eq!(recent.len(), 110);
        assert!(
            !apply_batch(&mut recent, vec![], true),
            "an empty batch changes nothing"
        );
    }

    #[test]
    fn a_newer_state_of_a_held_message_replaces_it_an_older_one_does_not() {
        let mut history: Vec<_> = (1..=3).map(msg).collect();
        let mut edited = msg(2);
        edited.text = "edited".into();
        edited.rev = 9;
        assert!(merge_history(&mut history, [edited.clone()]));
        assert_eq!(history[1].text, "edited");
        assert!(
            !merge_history(&mut history, [msg(2)]),
            "an older copy is ignored"
        );
        assert_eq!(history[1].text, "edited");
        let mut later = edited;
        later.deleted = true;
        later.rev = 12;
        assert!(replace_changed(
            &mut history,
            vec![later, {
                let mut unheld = msg(0);
                unheld.rev = 12;
                unheld
            }]
        ));
        assert!(history[1].deleted);
        assert_eq!(history.len(), 3, "a changed message not held is not added");
    }

    #[test]
    fn the_picker_offers_the_most_used_emoji_first() {
        let defaults = rank_emoji(&std::collections::HashMap::new());
        assert_eq!(defaults.len(), PICKER_EMOJI.len());
        assert_eq!(defaults[0], "👍");
        let counts = [("🦀", 5), ("🎉", 9), ("not an emoji", 99)]
            .into_iter()
            .map(|(e, n)| (e.to_string(), n))
            .collect();
        let ranked = rank_emoji(&counts);
        assert_eq!(&ranked[..3], ["🎉", "🦀", "👍"]);
        assert_eq!(ranked.len(), PICKER_EMOJI.len());
        assert!(!ranked.iter().any(|e| e == "not an emoji"));
        assert_eq!(ranked.iter().filter(|e| *e == "🎉").count(), 1);
    }

    #[test]
    fn trim_keeps_the_newest() {
        let mut history: Vec<_> = (1..=10).map(msg).collect();
        trim_history(&mut history, 3);
        assert_eq!(seqs(&history), [8, 9, 10]);
        trim_history(&mut history, 5);
        assert_eq!(seqs(&history), [8, 9, 10]);
    }

    #[test]
    fn storage_keys_separate_servers_users_and_rooms() {
        let ann = UserId("ann".into());
        let bob = UserId("bob".into());
        let key = storage_key("http://a", &ann, RoomId(1));
        assert_ne!(key, storage_key("http://a", &bob, RoomId(1)));
        assert_ne!(key, storage_key("http://b", &ann, RoomId(1)));
        assert_ne!(key, storage_key("http://a", &ann, RoomId(2)));
        assert_ne!(credentials_key("http://a"), credentials_key("http://b"));
        assert!(key.starts_with(&user_prefix("http://a", &ann)));
        assert!(profile_key("http://a", &ann).starts_with(&user_prefix("http://a", &ann)));
        assert!(
            !storage_key("http://a", &bob, RoomId(1)).starts_with(&user_prefix("http://a", &ann))
        );
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_and_resets() {
        let mut backoff = Backoff::reconnect();
        assert_eq!(backoff.ceiling_ms(), 500);
        assert_eq!(backoff.next_delay_ms(1.0), 500);
        assert_eq!(backoff.ceiling_ms(), 1000);
        assert_eq!(backoff.next_delay_ms(0.5), 500);
        for _ in 0..30 {
            let delay = backoff.next_delay_ms(0.999);
            assert!(delay <= 20_000);
        }
        assert_eq!(backoff.ceiling_ms(), 20_000);
        assert_eq!(backoff.next_delay_ms(0.0), 100, "never zero");
        backoff.reset();
        assert_eq!(backoff.ceiling_ms(), 500);
    }

    #[test]
    fn room_titles_name_the_other_person_in_direct_rooms() {
        let ann = UserSummary {
            id: UserId("a".into()),
            name: "Ann".into(),
        };
        let bob = UserSummary {
            id: UserId("b".into()),
            name: "Bob".into(),
        };
        let direct = RoomInfo {
            id: RoomId(5),
            kind: RoomKind::Direct {
                members: [ann.clone(), bob.clone()],
            },
            delete_when_empty: false,
            latest_seq: 0,
            read: Default::default(),
        };
        assert_eq!(room_title(&direct, Some(&ann.id)), "Bob");
        assert_eq!(room_title(&direct, Some(&bob.id)), "Ann");
        let channel = RoomInfo {
            kind: RoomKind::Channel {
                name: "rust".into(),
            },
            ..direct.clone()
        };
        assert_eq!(room_title(&channel, None), "#rust");
        let code = RoomInfo {
            kind: RoomKind::Code {
                code: "ABCDEFGH".into(),
            },
            ..direct
        };
        assert_eq!(room_title(&code, None), "Room ABCDEFGH");
    }
}
