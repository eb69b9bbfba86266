//! Changes to messages and the reads around them: edit, delete, react, unreact, the
//! message a reply answers, and the histories a client asks for.
//!
//! What is checked here, before a change is queued, is what cannot go stale: the
//! request's shape, membership, the message's author and its age (a message's sender
//! and time never change). The store checks again what can
//! change meanwhile — the message was deleted, the reactions filled up — inside the
//! transaction that takes the seq (see `store/changes.rs`).

use natter_protocol::{
    validate, Change, ChatMessage, ClientMsg, ErrorCode, MessageKind, ReplyPreview, RoomId, Seq,
    ServerMsg, UserId, UserSummary, HISTORY_PAGE,
};

use super::{Conversation, Outcome, Reject};
use crate::hub::appender::AppendReply;
use crate::hub::{Outgoing, RoomCatchUp};
use crate::store::changes::NewChange;
use crate::telemetry;

/// A change request as it arrived (the variants of `ClientMsg` that change a message).
pub(super) struct ChangeRequest {
    /// The room.
    pub room: RoomId,
    /// Its idempotency key.
    pub client_id: String,
    /// The message to change.
    pub seq: Seq,
    /// What to change.
    pub change: Change,
    /// The request's `ref`, for an error.
    pub request_ref: Option<String>,
}

impl ChangeRequest {
    /// The change a request asks for; `None` for a request that changes no message.
    pub(super) fn of(msg: ClientMsg, request_ref: Option<String>) -> Option<Self> {
        let (room, client_id, seq, change) = match msg {
            ClientMsg::Edit {
                room,
                client_id,
                seq,
                text,
            } => (
                room,
                client_id,
                seq,
                Change::Edit {
                    text,
                    mentions: Vec::new(),
                },
            ),
            ClientMsg::Delete {
                room,
                client_id,
                seq,
            } => (room, client_id, seq, Change::Delete),
            ClientMsg::React {
                room,
                client_id,
                seq,
                emoji,
            } => (room, client_id, seq, Change::React { emoji }),
            ClientMsg::Unreact {
                room,
                client_id,
                seq,
                emoji,
            } => (room, client_id, seq, Change::Unreact { emoji }),
            _ => return None,
        };
        Some(ChangeRequest {
            room,
            client_id,
            seq,
            change,
            request_ref,
        })
    }
}

fn no_such_message() -> Reject {
    Reject::new(
        ErrorCode::NoSuchMessage,
        "That message does not exist (any more).".into(),
    )
}

impl Conversation {
    /// Checks a change by `user` and queues it; the ack (or a refusal found in the
    /// transaction) comes from the append queue.
    pub(super) async fn change(&self, user: &UserId, request: ChangeRequest) -> Outcome {
        validate::client_id(&request.client_id)
            .map_err(|m| Reject::new(ErrorCode::InvalidClientId, m))?;
        let change = match request.change {
            Change::Edit { text, .. } => Change::Edit {
                text: validate::message_text(&text)
                    .map_err(|m| Reject::new(ErrorCode::InvalidText, m))?,
                mentions: Vec::new(),
            },
            Change::React { emoji } | Change::Unreact { emoji }
                if validate::emoji(&emoji).is_err() =>
            {
                return Err(Reject::new(
                    ErrorCode::InvalidEmoji,
                    format!(
                        "A reaction is one emoji (at most {} characters).",
                        validate::MAX_EMOJI_CHARS
                    ),
                ));
            }
            other => other,
        };
        self.require_member(user, request.room)?;
        // A message that is not there (deleted since) may be a resend's: the store
        // answers that with the original change, or refuses it.
        let found = self.text_message(request.room, request.seq).await.ok();
        if let (Some(message), Change::Edit { .. } | Change::Delete) = (found, &change) {
            if &message.sender.id != user {
                telemetry::refused("not_author");
                return Err(Reject::new(
                    ErrorCode::NotAuthor,
                    "Only its author can edit or delete a message.".into(),
                ));
            }
            let window = self.quotas.settings().edit_window;
            let age_ms = crate::clock::now_ms().saturating_sub(message.ts);
            if let (Change::Edit { .. }, Some(window)) = (&change, window) {
                if u128::try_from(age_ms).unwrap_or(0) > window.as_millis() {
                    return Err(Reject::new(
                        ErrorCode::EditWindowClosed,
                        format!(
                            "Messages can be edited for {} minutes after sending.",
                            window.as_secs().div_ceil(60)
                        ),
                    ));
                }
            }
        }
        // Mentions are resolved once the edit is known to be allowed (a lookup per
        // refused edit would be work for nothing).
        let change = match change {
            Change::Edit { text, .. } => {
                let mentions = self.resolve_mentions(request.room, &text).await?;
                Change::Edit { text, mentions }
            }
            other => other,
        };
        let change = NewChange {
            room: request.room,
            target: request.seq,
            by: UserSummary {
                id: user.clone(),
                name: self.hub.online_name(user).unwrap_or_default(),
            },
            ts: crate::clock::now_ms(),
            client_id: request.client_id.clone(),
            change,
        };
        let reply = AppendReply::Ack {
            outbox: self.outbox.clone(),
            client_id: request.client_id,
            request_ref: request.request_ref,
        };
        self.hub.appender().change(change, reply).await;
        Ok(())
    }

    /// What a reply to message `seq` of `room` quotes; the message must be a text
    /// message that is not deleted.
    pub(super) async fn reply_preview(
        &self,
        room: RoomId,
        seq: Seq,
    ) -> Result<ReplyPreview, Reject> {
        Ok(ReplyPreview::of(&self.text_message(room, seq).await?))
    }

    /// Message `seq` of `room`, when it is a text message not deleted.
    async fn text_message(&self, room: RoomId, seq: Seq) -> Result<ChatMessage, Reject> {
        match self.hub.store().message_at(room, seq).await? {
            Some(message) if message.kind == MessageKind::Text && !message.deleted => Ok(message),
            _ => Err(no_such_message()),
        }
    }

    /// A page of `room`'s messages before `before`, for a client scrolling back. The
    /// room's live events wait for it (see `order.rs`), so a change to one of these
    /// messages reaches the client after the page that brings the message.
    pub(super) async fn history_page(
        &self,
        user: &UserId,
        room: RoomId,
        before: Seq,
        limit: u32,
    ) -> Outcome {
        self.require_member(user, room)?;
        let limit = limit.clamp(1, HISTORY_PAGE);
        self.outbox.push(Outgoing::Hold { room });
        let started = std::time::Instant::now();
        let read = self
            .hub
            .store()
            .history_before(room, before, limit, user)
            .await;
        telemetry::store_call("history", started);
        let messages = match read {
            Ok(messages) => messages,
            Err(err) => {
                self.release_hold(user, room);
                return Err(err.into());
            }
        };
        // Seq 1 always holds a message (a change needs a message before it).
        let more_before = messages.first().is_some_and(|m| m.seq > 1);
        let frame = ServerMsg::History {
            room,
            messages,
            more_before,
            through: None,
            changed: Vec::new(),
        };
        self.outbox.push(Outgoing::History {
            room,
            newest: 0,
            frame: frame.to_json().into(),
        });
        Ok(())
    }

    /// Ends a hold whose history will not come (its read failed): a catch-up with
    /// nothing to read settles the room at once, and its live events go out.
    fn release_hold(&self, user: &UserId, room: RoomId) {
        self.outbox.push(Outgoing::CatchUp {
            viewer: user.clone(),
            rooms: vec![RoomCatchUp {
                room,
                after: 0,
                latest: 0,
            }],
        });
    }

    /// Brings the client up to date in `room` after `after` (it found a gap): a
    /// catch-up history as on resume, read by the connection's writer, with the room's
    /// live events held until it is sent.
    pub(super) async fn catch_up(&self, user: &UserId, room: RoomId, after: Seq) -> Outcome {
        self.require_member(user, room)?;
        self.outbox.push(Outgoing::Hold { room });
        let latest = self
            .hub
            .store()
            .latest_seqs(&[room])
            .await
            .map(|latest| latest.first().map_or(0, |(_, seq)| *seq));
        let latest = match latest {
            Ok(latest) => latest,
            Err(err) => {
                self.release_hold(user, room);
                return Err(err.into());
            }
        };
        self.outbox.push(Outgoing::CatchUp {
            viewer: user.clone(),
            rooms: vec![RoomCatchUp {
                room,
                after,
                latest,
            }],
        });
        Ok(())
    }
}
