//! The database-independent half of [`Store::append`](super::Store::append): turning a
//! batch of messages into a constant number of statements.
//!
//! Every backend appends a batch in three steps — look up the idempotency keys that
//! were stored before, reserve a block of seqs per room, insert every new row — each of
//! which can be one statement for the whole batch where statements are round trips
//! (a database across the network), or cached prepared statements on the database's
//! own thread (SQLite).
//!
//! [`AppendBatch`] does the bookkeeping between those steps: which messages are
//! resends (stored before, or twice in this batch), how many seqs each room needs, and
//! which seq each new message gets.

use std::collections::{BTreeMap, HashMap};

use natter_protocol::{ChatMessage, RoomId, Seq};

use super::{Appended, NewMessage};

/// What became of one message of the batch while planning.
#[derive(Debug)]
enum Slot {
    /// Not seen before: needs a seq and a row.
    New,
    /// Stored in an earlier batch under the same `(sender, client_id)`.
    StoredBefore(Box<ChatMessage>),
    /// A resend of the message at this earlier index of the same batch.
    SameAs(usize),
}

/// A batch being appended; see the module docs for the statements around it.
#[derive(Debug)]
pub struct AppendBatch {
    messages: Vec<NewMessage>,
    slots: Vec<Slot>,
}

/// A message stored now: the outcome index it belongs to and its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRow {
    /// Index into the outcomes (which hold the full message as `Appended::Stored`).
    pub index: usize,
    /// The sender's `client_id`, if any.
    pub client_id: Option<String>,
}

impl AppendBatch {
    /// Starts planning `messages`, in the order they were queued.
    pub fn new(messages: Vec<NewMessage>) -> Self {
        let slots = messages.iter().map(|_| Slot::New).collect();
        AppendBatch { messages, slots }
    }

    /// The `(sender id, client_id)` keys to look up among stored messages.
    pub fn idempotency_keys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.messages.iter().filter_map(|m| {
            m.client_id
                .as_deref()
                .map(|client_id| (m.sender.id.0.as_str(), client_id))
        })
    }

    /// Marks resends: messages whose key was stored before (`stored_before`, keyed by
    /// sender id and client id) and later copies of a key within this batch.
    pub fn mark_resends(&mut self, mut stored_before: HashMap<(String, String), ChatMessage>) {
        let mut first_in_batch: HashMap<(&str, &str), usize> = HashMap::new();
        for (index, message) in self.messages.iter().enumerate() {
            let Some(client_id) = message.client_id.as_deref() else {
                continue;
            };
            let key = (message.sender.id.0.as_str(), client_id);
            if let Some(earlier) = first_in_batch.get(&key) {
                self.slots[index] = Slot::SameAs(*earlier);
                continue;
            }
            // Later copies in this batch point here, whatever this one turns out to be.
            first_in_batch.insert(key, index);
            if let Some(original) = stored_before.remove(&(key.0.to_string(), key.1.to_string())) {
                self.slots[index] = Slot::StoredBefore(Box::new(original));
            }
        }
    }

    /// How many seqs each room needs, in room order (a fixed order for row locks).
    pub fn seq_demand(&self) -> BTreeMap<RoomId, u64> {
        let mut demand = BTreeMap::new();
        for (message, slot) in self.messages.iter().zip(&self.slots) {
            if matches!(slot, Slot::New) {
                *demand.entry(message.room).or_insert(0) += 1;
            }
        }
        demand
    }

    /// Gives each new message its seq, given each room's `latest_seq` *after* the
    /// reservation (rooms missing from `latest` no longer exist). Returns one outcome
    /// per message, in order, and the rows to insert.
    pub fn assign(self, latest: &HashMap<RoomId, Seq>) -> (Vec<Appended>, Vec<NewRow>) {
        let demand = self.seq_demand();
        // The next seq to hand out per room: the first of its reserved block.
        let mut next: HashMap<RoomId, Seq> = demand
            .iter()
            .filter_map(|(room, count)| latest.get(room).map(|l| (*room, l + 1 - count)))
            .collect();
        let mut outcomes: Vec<Appended> = Vec::with_capacity(self.messages.len());
        let mut rows = Vec::new();
        for (index, (message, slot)) in self.messages.into_iter().zip(self.slots).enumerate() {
            let outcome = match slot {
                Slot::StoredBefore(original) => Appended::Duplicate(*original),
                Slot::SameAs(earlier) => match &outcomes[earlier] {
                    Appended::Stored(first) | Appended::Duplicate(first) => {
                        Appended::Duplicate(first.clone())
                    }
                    Appended::NoSuchRoom => Appended::NoSuchRoom,
                },
                Slot::New => match next.get_mut(&message.room) {
                    None => Appended::NoSuchRoom,
                    Some(seq) => {
                        let assigned = *seq;
                        *seq += 1;
                        rows.push(NewRow {
                            index,
                            client_id: message.client_id,
                        });
                        let mut stored = ChatMessage::new(
                            message.room,
                            assigned,
                            message.sender,
                            message.ts,
                            message.kind,
                            message.text,
                        );
                        stored.attachments = message.attachments;
                        stored.reply_to = message.reply_to;
                        stored.mentions = message.mentions;
                        Appended::Stored(stored)
                    }
                },
            };
            outcomes.push(outcome);
        }
        (outcomes, rows)
    }
}

#[cfg(test)]
mod tests {
    use natter_protocol::{MessageKind, UserId, UserSummary};

    use super::*;

    fn msg(room: i64, sender: &str, client_id: Option<&str>, text: &str) -> NewMessage {
        NewMessage {
            room: RoomId(room),
            sender: UserSummary {
                id: UserId(sender.into()),
                name: sender.into(),
            },
            ts: 1,
            kind: MessageKind::Text,
            text: text.into(),
            client_id: client_id.map(String::from),
            attachments: Vec::new(),
            reply_to: None,
            mentions: Vec::new(),
        }
    }

    fn seq_of(outcome: &Appended) -> Option<Seq> {
        match outcome {
            Appended::Stored(m) | Appended::Duplicate(m) => Some(m.seq),
            Appended::NoSuchRoom => None,
        }
    }

    #[test]
    fn seqs_are_consecutive_per_room_in_queue_order() {
        let batch = AppendBatch::new(vec![
            msg(1, "a", Some("x"), "1"),
            msg(2, "a", Some("y"), "2"),
            msg(1, "b", None, "3"),
            msg(1, "a", Some("z"), "4"),
        ]);
        let demand = batch.seq_demand();
        assert_eq!(demand, BTreeMap::from([(RoomId(1), 3), (RoomId(2), 1)]));
        // Room 1 was at 10 and reserved 3 (now 13); room 2 was at 0 (now 1).
        let latest = HashMap::from([(RoomId(1), 13), (RoomId(2), 1)]);
        let (outcomes, rows) = batch.assign(&latest);
        let seqs: Vec<_> = outcomes.iter().map(seq_of).collect();
        assert_eq!(seqs, [Some(11), Some(1), Some(12), Some(13)]);
        assert_eq!(
            rows.iter().map(|r| r.index).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert_eq!(rows[2].client_id, None);
    }

    #[test]
    fn resends_take_no_seq_and_return_the_original() {
        let mut batch = AppendBatch::new(vec![
            msg(1, "a", Some("old"), "resent"),
            msg(1, "a", Some("new"), "first copy"),
            msg(1, "a", Some("new"), "second copy"),
            msg(1, "b", Some("new"), "other sender, same client id"),
            msg(1, "a", Some("old"), "resent again"),
        ]);
        let keys: Vec<_> = batch.idempotency_keys().collect();
        assert_eq!(keys.len(), 5);
        let original = ChatMessage::new(
            RoomId(1),
            4,
            UserSummary {
                id: UserId("a".into()),
                name: "a".into(),
            },
            0,
            MessageKind::Text,
            "resent".into(),
        );
        batch.mark_resends(HashMap::from([(
            ("a".to_string(), "old".to_string()),
            original.clone(),
        )]));
        assert_eq!(batch.seq_demand(), BTreeMap::from([(RoomId(1), 2)]));
        let (outcomes, rows) = batch.assign(&HashMap::from([(RoomId(1), 9)]));
        assert_eq!(outcomes[0], Appended::Duplicate(original.clone()));
        assert!(
            matches!(&outcomes[1], Appended::Stored(m) if m.seq == 8 && m.text == "first copy")
        );
        assert!(
            matches!(&outcomes[2], Appended::Duplicate(m) if m.seq == 8 && m.text == "first copy")
        );
        assert!(matches!(&outcomes[3], Appended::Stored(m) if m.seq == 9));
        assert_eq!(outcomes[4], Appended::Duplicate(original));
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn messages_to_a_deleted_room_are_refused_with_their_resends() {
        let mut batch = AppendBatch::new(vec![
            msg(7, "a", Some("x"), "gone"),
            msg(1, "a", Some("y"), "kept"),
            msg(7, "a", Some("x"), "gone again"),
        ]);
        batch.mark_resends(HashMap::new());
        let (outcomes, rows) = batch.assign(&HashMap::from([(RoomId(1), 1)]));
        assert_eq!(outcomes[0], Appended::NoSuchRoom);
        assert!(matches!(&outcomes[1], Appended::Stored(m) if m.seq == 1));
        assert_eq!(outcomes[2], Appended::NoSuchRoom);
        assert_eq!(rows.len(), 1);
    }
}
