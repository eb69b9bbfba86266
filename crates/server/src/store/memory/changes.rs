//! [`ChangeStore`] for the in-memory store: the same contract as the SQL stores'
//! (`store/changes.rs`) over the one locked state — a change is checked, given its
//! room's next seq and applied under one lock, as in one transaction.

use async_trait::async_trait;
use natter_protocol::{
    Change, ChatMessage, Reaction, ReplyPreview, RoomId, Seq, UserId, MAX_REACTION_KINDS,
    REACTORS_LISTED,
};

use super::{MemoryStore, Room};
use crate::store::changes::{
    ChangeEvent, ChangeOutcome, ChangeRefusal, ChangeStore, NewChange, RoomEvent,
};
use crate::store::StoreResult;

impl Room {
    /// `message` as it stands, as `viewer` sees it: its reply preview from the
    /// original now, its reactions (`me` only when there is a viewer).
    pub(super) fn current(&self, message: &ChatMessage, viewer: Option<&UserId>) -> ChatMessage {
        let mut now = message.clone();
        now.reply_to = message
            .reply_to
            .as_ref()
            .and_then(|reply| Some(ReplyPreview::of(self.message(reply.seq)?)));
        now.reactions = self
            .reactions
            .get(&message.seq)
            .map(|by_emoji| {
                by_emoji
                    .iter()
                    .map(|(emoji, users)| Reaction {
                        emoji: emoji.clone(),
                        count: users.len() as u32,
                        users: users.iter().take(REACTORS_LISTED).cloned().collect(),
                        me: viewer.is_some_and(|v| users.iter().any(|u| &u.id == v)),
                    })
                    .collect()
            })
            .unwrap_or_default();
        now
    }

    /// A stored change as its event, an edit with its message's text now.
    fn event(&self, change: &ChangeEvent) -> ChangeEvent {
        let mut event = change.clone();
        if let Change::Edit { text, mentions } = &mut event.change {
            let now = self.message(change.target);
            *text = now.map(|m| m.text.clone()).unwrap_or_default();
            *mentions = now.map(|m| m.mentions.clone()).unwrap_or_default();
        }
        event
    }

    /// Checks `new` against the room as it is; `Ok(())` when it changes something, else
    /// the outcome it has (boxed: a stored change is big, a refusal is not).
    fn check(&self, new: &NewChange) -> Result<(), Box<ChangeOutcome>> {
        let Some(message) = self
            .message(new.target)
            .filter(|m| m.kind == natter_protocol::MessageKind::Text && !m.deleted)
        else {
            return Err(Box::new(ChangeOutcome::Refused(
                ChangeRefusal::NoSuchMessage,
            )));
        };
        if matches!(new.change, Change::Edit { .. } | Change::Delete)
            && message.sender.id != new.by.id
        {
            return Err(Box::new(ChangeOutcome::Refused(ChangeRefusal::NotAuthor)));
        }
        if let Change::React { emoji } | Change::Unreact { emoji } = &new.change {
            let by_emoji = self.reactions.get(&new.target);
            let reactors = by_emoji.and_then(|r| r.iter().find(|(e, _)| e == emoji));
            let given = reactors.is_some_and(|(_, users)| users.iter().any(|u| u.id == new.by.id));
            let adding = matches!(new.change, Change::React { .. });
            if adding == given {
                return Err(Box::new(ChangeOutcome::Unchanged {
                    room: new.room,
                    seq: message.rev.max(message.seq),
                    ts: new.ts,
                }));
            }
            if adding && reactors.is_none() && by_emoji.map_or(0, Vec::len) >= MAX_REACTION_KINDS {
                return Err(Box::new(ChangeOutcome::Refused(
                    ChangeRefusal::TooManyReactions,
                )));
            }
        }
        Ok(())
    }

    /// Applies a checked change that took `seq`.
    fn apply(&mut self, new: &NewChange, seq: Seq) {
        let target = new.target;
        match &new.change {
            Change::React { emoji } => {
                let by_emoji = self.reactions.entry(target).or_default();
                match by_emoji.iter_mut().find(|(e, _)| e == emoji) {
                    Some((_, users)) => users.push(new.by.clone()),
                    None => by_emoji.push((emoji.clone(), vec![new.by.clone()])),
                }
            }
            Change::Unreact { emoji } => {
                if let Some(by_emoji) = self.reactions.get_mut(&target) {
                    for (e, users) in by_emoji.iter_mut() {
                        if e == emoji {
                            users.retain(|u| u.id != new.by.id);
                        }
                    }
                    by_emoji.retain(|(_, users)| !users.is_empty());
                }
            }
            Change::Delete => {
                self.reactions.remove(&target);
                self.mentioned.remove(&target);
            }
            Change::Edit { mentions, .. } => {
                self.mentioned.remove(&target);
                self.note_mentions(target, &new.by.id, mentions);
            }
        }
        if let Ok(at) = self.messages.binary_search_by_key(&target, |m| m.seq) {
            // Reactions are kept above; the message itself only takes its new rev.
            let reactions_apart =
                matches!(new.change, Change::React { .. } | Change::Unreact { .. });
            let message = &mut self.messages[at];
            if reactions_apart {
                message.rev = seq;
            } else {
                message.apply_change(&new.change, &new.by, new.ts, seq, None);
            }
        }
    }
}

#[async_trait]
impl ChangeStore for MemoryStore {
    async fn apply_changes(&self, batch: Vec<NewChange>) -> StoreResult<Vec<ChangeOutcome>> {
        let mut state = self.state();
        let mut outcomes = Vec::with_capacity(batch.len());
        for new in batch {
            let key = (new.by.id.0.clone(), new.client_id.clone());
            if let Some((room, seq)) = state.change_ids.get(&key).copied() {
                let original = state.rooms.get(&room).and_then(|r| {
                    let at = r.changes.binary_search_by_key(&seq, |c| c.seq).ok()?;
                    Some(r.event(&r.changes[at]))
                });
                if let Some(original) = original {
                    outcomes.push(ChangeOutcome::Duplicate(original));
                    continue;
                }
            }
            let Some(room) = state.rooms.get_mut(&new.room) else {
                outcomes.push(ChangeOutcome::NoSuchRoom);
                continue;
            };
            if let Err(outcome) = room.check(&new) {
                outcomes.push(*outcome);
                continue;
            }
            room.record.latest_seq += 1;
            let seq = room.record.latest_seq;
            // A deleted message's files go with it.
            let files_gone: Vec<_> = match (&new.change, room.message(new.target)) {
                (Change::Delete, Some(message)) => {
                    message.attachments.iter().map(|a| a.id.clone()).collect()
                }
                _ => Vec::new(),
            };
            room.apply(&new, seq);
            let event = ChangeEvent {
                room: new.room,
                seq,
                ts: new.ts,
                by: new.by,
                target: new.target,
                change: new.change,
            };
            room.changes.push(event.clone());
            state.change_ids.insert(key, (event.room, seq));
            state.files.retain(|id, _| !files_gone.contains(id));
            outcomes.push(ChangeOutcome::Stored(event));
        }
        Ok(outcomes)
    }

    async fn message_at(&self, room: RoomId, seq: Seq) -> StoreResult<Option<ChatMessage>> {
        let state = self.state();
        Ok(state.rooms.get(&room).and_then(|r| {
            let mut message = r.current(r.message(seq)?, None);
            message.reactions.clear();
            Some(message)
        }))
    }

    async fn changed_since(
        &self,
        room: RoomId,
        after: Seq,
        viewer: &UserId,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>> {
        let state = self.state();
        let Some(room) = state.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        let mut changed: Vec<&ChatMessage> = room
            .messages
            .iter()
            .filter(|m| m.seq <= after && m.rev > after)
            .collect();
        changed.sort_by_key(|m| std::cmp::Reverse(m.rev));
        changed.truncate(limit as usize);
        changed.sort_by_key(|m| m.seq);
        Ok(changed
            .into_iter()
            .map(|m| room.current(m, Some(viewer)))
            .collect())
    }

    async fn events_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> StoreResult<Vec<RoomEvent>> {
        let state = self.state();
        let Some(room) = state.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        let mut events: Vec<RoomEvent> = room
            .newest(after.saturating_add(1), Seq::MAX, limit, None)
            .into_iter()
            .map(RoomEvent::Message)
            .chain(
                room.changes
                    .iter()
                    .filter(|c| c.seq > after)
                    .map(|c| RoomEvent::Change(room.event(c))),
            )
            .collect();
        events.sort_by_key(RoomEvent::seq);
        let excess = events.len().saturating_sub(limit as usize);
        events.drain(..excess);
        Ok(events)
    }
}
