//! How a room's messages are laid out for reading, as plain data (tested natively):
//! a day separator where the local day changes, consecutive messages of one sender
//! within [`GROUP_GAP_MS`] grouped under one name and avatar, and a run of join/leave
//! notices collapsed into one line ("Ann and 3 others joined").

use natter_protocol::{ChatMessage, MessageKind, Seq, Timestamp, UserSummary};

/// Messages of one sender this close together (and on one day) share a group.
pub const GROUP_GAP_MS: Timestamp = 5 * 60 * 1000;

/// One line of the message list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    /// The first message of a local day follows.
    Day {
        /// The local day's number (days since the epoch, in the reader's time zone).
        day: i64,
        /// A time on that day, to write it out.
        ts: Timestamp,
    },
    /// A message; `starts_group` when it shows the sender's name and avatar.
    Message {
        /// The message (boxed: a message is far bigger than the other rows).
        message: Box<ChatMessage>,
        /// First of its group.
        starts_group: bool,
    },
    /// Join and leave notices that came one after another.
    Notices {
        /// The first notice's seq.
        first: Seq,
        /// The last notice's seq.
        last: Seq,
        /// When the last one happened.
        ts: Timestamp,
        /// Who joined, in order, each once.
        joined: Vec<UserSummary>,
        /// Who left, in order, each once.
        left: Vec<UserSummary>,
    },
}

impl Row {
    /// A key that changes whenever the row must be drawn again.
    pub fn key(&self) -> (u8, i64, Seq, Seq) {
        match self {
            Row::Day { day, .. } => (0, *day, 0, 0),
            Row::Message {
                message,
                starts_group,
            } => (1, i64::from(*starts_group), message.seq, look(message)),
            Row::Notices { first, last, .. } => (2, 0, *first, *last),
        }
    }
}

/// What a message row shows that can change without a new row: its own changes (`rev`)
/// and the quote of the message it answers (edited or deleted since).
fn look(message: &ChatMessage) -> Seq {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    message.rev.hash(&mut hasher);
    message
        .reply_to
        .as_ref()
        .map(|r| (r.seq, r.deleted, &r.text))
        .hash(&mut hasher);
    hasher.finish()
}

/// Lays `messages` (seq order) out in rows; `day_of` gives a time's local day.
pub fn rows(messages: &[ChatMessage], day_of: impl Fn(Timestamp) -> i64) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::with_capacity(messages.len() + 4);
    let mut current_day = None;
    for message in messages {
        let day = day_of(message.ts);
        let new_day = current_day != Some(day);
        if new_day {
            current_day = Some(day);
            rows.push(Row::Day {
                day,
                ts: message.ts,
            });
        }
        if message.kind == MessageKind::Text {
            let starts_group = match rows.last() {
                Some(Row::Message {
                    message: before, ..
                }) => {
                    before.sender.id != message.sender.id
                        || message.ts.saturating_sub(before.ts) > GROUP_GAP_MS
                }
                _ => true,
            };
            rows.push(Row::Message {
                message: Box::new(message.clone()),
                starts_group,
            });
            continue;
        }
        if let Some(Row::Notices {
            last,
            ts,
            joined,
            left,
            ..
        }) = rows.last_mut()
        {
            *last = message.seq;
            *ts = message.ts;
            add_once(
                if message.kind == MessageKind::Join {
                    joined
                } else {
                    left
                },
                &message.sender,
            );
            continue;
        }
        let (mut joined, mut left) = (Vec::new(), Vec::new());
        add_once(
            if message.kind == MessageKind::Join {
                &mut joined
            } else {
                &mut left
            },
            &message.sender,
        );
        rows.push(Row::Notices {
            first: message.seq,
            last: message.seq,
            ts: message.ts,
            joined,
            left,
        });
    }
    rows
}

fn add_once(people: &mut Vec<UserSummary>, who: &UserSummary) {
    if !people.iter().any(|p| p.id == who.id) {
        people.push(who.clone());
    }
}

/// "Ann joined", "Ann and Bo joined", "Ann and 3 others joined" (names as `name_of`
/// gives them now); joins and leaves of one run side by side.
pub fn notice_text(
    joined: &[UserSummary],
    left: &[UserSummary],
    name_of: impl Fn(&UserSummary) -> String,
) -> String {
    let part = |people: &[UserSummary], verb: &str| -> Option<String> {
        let first = name_of(people.first()?);
        Some(match people.len() {
            1 => format!("{first} {verb}"),
            2 => format!("{first} and {} {verb}", name_of(&people[1])),
            n => format!("{first} and {} others {verb}", n - 1),
        })
    };
    [part(joined, "joined"), part(left, "left")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ")
}

/// Up to two initials of a name, for an avatar ("Ann Lee" → "AL", "bo" → "B").
pub fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|word| word.chars().next())
        .take(2)
        .flat_map(char::to_uppercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_protocol::{RoomId, UserId};

    const MINUTE: Timestamp = 60 * 1000;
    const DAY: Timestamp = 24 * 60 * MINUTE;

    fn who(name: &str) -> UserSummary {
        UserSummary {
            id: UserId(format!("{name}-id")),
            name: name.into(),
        }
    }

    fn at(seq: Seq, name: &str, ts: Timestamp, kind: MessageKind) -> ChatMessage {
        let text = if kind == MessageKind::Text {
            format!("m{seq}")
        } else {
            String::new()
        };
        ChatMessage::new(RoomId(1), seq, who(name), ts, kind, text)
    }

    fn shape(rows: &[Row]) -> Vec<String> {
        rows.iter()
            .map(|row| match row {
                Row::Day { day, .. } => format!("day {day}"),
                Row::Message {
                    message,
                    starts_group,
                } => {
                    format!("{}{}", if *starts_group { "+" } else { " " }, message.seq)
                }
                Row::Notices { joined, left, .. } => notice_text(joined, left, |u| u.name.clone()),
            })
            .collect()
    }

    #[test]
    fn one_sender_close_together_is_one_group_and_days_are_separated() {
        use MessageKind::Text;
        let messages = [
            at(1, "Ann", 0, Text),
            at(2, "Ann", 4 * MINUTE, Text),
            at(3, "Ann", 10 * MINUTE, Text), // too long after: a new group
            at(4, "Bo", 11 * MINUTE, Text),
            at(5, "Ann", 12 * MINUTE, Text),
            at(6, "Ann", DAY + MINUTE, Text), // the next day
        ];
        let rows = rows(&messages, |ts| ts.div_euclid(DAY));
        assert_eq!(
            shape(&rows),
            ["day 0", "+1", " 2", "+3", "+4", "+5", "day 1", "+6"]
        );
    }

    #[test]
    fn notices_in_a_row_collapse_and_never_join_a_group() {
        use MessageKind::{Join, Leave, Text};
        let messages = [
            at(1, "Ann", 0, Join),
            at(2, "Bo", 1, Join),
            at(3, "Ann", 2, Text),
            at(4, "Cy", 3, Join),
            at(5, "Di", 4, Join),
            at(6, "Ed", 5, Join),
            at(7, "Cy", 6, Join), // again: counted once
            at(8, "Bo", 7, Leave),
            at(9, "Ann", 8, Text),
        ];
        let rows = rows(&messages, |_| 0);
        assert_eq!(
            shape(&rows),
            [
                "day 0",
                "Ann and Bo joined",
                "+3",
                "Cy and 2 others joined · Bo left",
                "+9"
            ]
        );
        assert_eq!(rows[3].key(), (2, 0, 4, 8), "the run's seqs are its key");
    }

    #[test]
    fn initials_of_names() {
        assert_eq!(initials("Ann Lee"), "AL");
        assert_eq!(initials("bo"), "B");
        assert_eq!(initials("  émile   zola  x"), "ÉZ");
        assert_eq!(initials(""), "");
    }
}
