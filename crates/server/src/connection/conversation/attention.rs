//! Requests about attention: who a message mentions, where I stopped reading, and
//! that I am typing.
//!
//! Mentions are resolved here, before a message is queued: each `@` of the text
//! ([`mention::candidates`]) becomes the longest name that belongs to a member of the
//! room, kept by user id, or `@room` — refused in rooms bigger than
//! `--mention-room-max-members`. Read positions go to the hub, which coalesces them.
//! Typing signals are passed on at most once per [`TYPING_INTERVAL_MS`] (less a
//! little slack for timers) per room and connection, and not at all in rooms bigger
//! than `--typing-max-members`; a "stopped" is passed on only after a "typing" that
//! has not expired.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use natter_protocol::validate::name_key;
use natter_protocol::{
    mention, ErrorCode, Mention, RoomId, Seq, UserId, UserSummary, TYPING_EXPIRY_MS,
    TYPING_INTERVAL_MS,
};

use super::{Conversation, Outcome, Reject};
use crate::telemetry;

/// How much sooner than [`TYPING_INTERVAL_MS`] a repeated signal may come and still be
/// passed on: the client's timer and the network are not exact.
const TYPING_SLACK: Duration = Duration::from_millis(500);

/// Rooms whose typing state one connection keeps before forgetting expired ones.
const TYPING_ROOMS_KEPT: usize = 64;

/// What this connection last said about typing in one room.
#[derive(Debug, Clone, Copy)]
pub(super) struct TypingSignal {
    /// When the last "typing" was passed on.
    at: Instant,
    /// Whether the others were last told "typing" (and not "stopped").
    typing: bool,
}

impl TypingSignal {
    fn expired(&self) -> bool {
        self.at.elapsed() >= Duration::from_millis(TYPING_EXPIRY_MS)
    }
}

impl Conversation {
    /// The mentions in `text`, a message in `room`. (Its sender may mention
    /// themselves: it shows, and the store calls nobody for it.)
    pub(super) async fn resolve_mentions(
        &self,
        room: RoomId,
        text: &str,
    ) -> Result<Vec<Mention>, Reject> {
        let candidates = mention::candidates(text);
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let mut names: Vec<&str> = candidates
            .iter()
            .flatten()
            .copied()
            .filter(|name| name_key(name) != mention::ROOM)
            .collect();
        names.sort_unstable();
        names.dedup();
        // Names are unique among people online, not among everyone ever: of two
        // members with one name, the one online now is meant (else the smaller id, so
        // the choice is at least stable).
        let mut members: HashMap<String, UserId> = HashMap::new();
        for member in self.hub.store().members_named(room, &names).await? {
            let key = name_key(&member.name);
            let online = |id: &UserId| self.hub.online_name(id).is_some();
            let better = match members.get(&key) {
                None => true,
                Some(held) => match (online(&member.id), online(held)) {
                    (true, false) => true,
                    (false, true) => false,
                    _ => member.id < *held,
                },
            };
            if better {
                members.insert(key, member.id);
            }
        }
        let mut mentions = Vec::new();
        let mut mentioned = HashSet::new();
        for options in candidates {
            for name in options {
                let key = name_key(name);
                let who = if key == mention::ROOM {
                    if !mentioned.contains(&None) {
                        self.allow_mention_room(room).await?;
                    }
                    None
                } else if let Some(member) = members.get(&key) {
                    Some(member.clone())
                } else {
                    continue;
                };
                if mentioned.insert(who.clone()) {
                    mentions.push(Mention {
                        user: who,
                        name: name.to_string(),
                    });
                }
                break;
            }
        }
        Ok(mentions)
    }

    /// Refuses `@room` in a room bigger than `--mention-room-max-members`, counted
    /// now (it is rare, and a count a few seconds old could let it through).
    async fn allow_mention_room(&self, room: RoomId) -> Outcome {
        let max = self.quotas.settings().mention_room_max_members;
        let members = self.hub.store().member_count(room).await?;
        if members > max {
            telemetry::refused("mention_room_not_allowed");
            return Err(Reject::new(
                ErrorCode::MentionRoomNotAllowed,
                format!(
                    "@room notifies everyone, so it works only in rooms of up to {max} people; this one has {members}."
                ),
            ));
        }
        Ok(())
    }

    /// `mark_read`: noted by the hub, stored and sent to my connections within a second.
    pub(super) fn mark_read(&self, user: &UserId, room: RoomId, seq: Seq) -> Outcome {
        self.require_member(user, room)?;
        self.hub.mark_read(user, room, seq);
        Ok(())
    }

    /// `typing`: passed on to the room's members unless it came too soon after the
    /// last one, says nothing new, or the room is too big.
    pub(super) async fn typing(&mut self, user: &UserId, room: RoomId, typing: bool) -> Outcome {
        self.require_member(user, room)?;
        let last = self.typing.get(&room).copied();
        let pass_on = match (typing, last) {
            (true, Some(last)) => {
                last.at.elapsed() + TYPING_SLACK >= Duration::from_millis(TYPING_INTERVAL_MS)
            }
            (true, None) => true,
            (false, Some(last)) => last.typing && !last.expired(),
            (false, None) => false,
        };
        if !pass_on {
            return Ok(());
        }
        if self.hub.member_count(room).await? > self.quotas.settings().typing_max_members {
            return Ok(());
        }
        if self.typing.len() >= TYPING_ROOMS_KEPT {
            self.typing.retain(|_, signal| !signal.expired());
        }
        let at = match (typing, last) {
            (true, _) | (false, None) => Instant::now(),
            (false, Some(last)) => last.at,
        };
        self.typing.insert(room, TypingSignal { at, typing });
        let name = self.hub.online_name(user).unwrap_or_default();
        let typist = UserSummary {
            id: user.clone(),
            name,
        };
        self.hub
            .publish_typing(room, typist, typing, self.outbox.id);
        Ok(())
    }

    /// I sent a message in `room`: clients stop showing me typing there by
    /// themselves, and my next keystroke may say so again at once.
    pub(super) fn sent_in(&mut self, room: RoomId) {
        self.typing.remove(&room);
    }
}
