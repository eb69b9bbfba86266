//! One connection's conversation: what each [`ClientMsg`] does.
//!
//! A [`Conversation`] knows nothing of WebSocket frames: it takes decoded requests and
//! answers through the connection's [`Outbox`]. Every failure becomes a typed
//! `ServerMsg::Error` naming the request it answers; nothing here panics on input.
//!
//! Why one long file: it is one `match` over every request a client can send, each arm
//! a short method with its checks; kept together, a reader sees every request's
//! validation and error codes in one place. Blocking, with its own rules about who sees
//! what, is in `blocking.rs`; changes to messages and the history reads around them in
//! `changes.rs`.

mod attention;
mod blocking;
mod changes;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use natter_protocol::{
    validate, Attachment, ChannelInfo, ClientFrame, ClientMsg, ErrorCode, FileId, GuestCredentials,
    MessageKind, ReadState, ResumePosition, RoomId, Seq, ServerMsg, UserId, UserSummary,
    MAX_ATTACHMENTS, PROTOCOL_VERSION, SNAPSHOT_CHUNK,
};
use rand::distributions::{Alphanumeric, Uniform};
use rand::Rng;

use crate::broker::{CatchUp, Effect, Target};
use crate::hub::appender::{AppendError, AppendReply};
use crate::hub::history::catch_up;
use crate::hub::{Outbox, Outgoing, RoomCatchUp, RoomHub};
use crate::quota::{Quota, Quotas};
use crate::secret::digest;
use crate::store::{NewMessage, RoomRecord, RoomRecordKind, StoreError, UserRecord};
use crate::telemetry;
use changes::ChangeRequest;

/// A refused request: the error frame's code and message, and for a quota, when the
/// next attempt is allowed.
#[derive(Debug)]
struct Reject {
    code: ErrorCode,
    message: String,
    retry_after: Option<Duration>,
}

impl Reject {
    fn new(code: ErrorCode, message: String) -> Self {
        Reject {
            code,
            message,
            retry_after: None,
        }
    }

    /// A quota ran out; the next use is allowed after `wait`.
    fn quota(quota: Quota, wait: Duration) -> Self {
        telemetry::refused(quota.metric_kind());
        Reject {
            code: ErrorCode::QuotaExceeded,
            message: quota.refusal(wait),
            retry_after: Some(wait),
        }
    }
}

impl From<StoreError> for Reject {
    fn from(err: StoreError) -> Self {
        tracing::error!(%err, "store operation failed");
        Reject::new(
            ErrorCode::Internal,
            "The server could not complete that; try again.".into(),
        )
    }
}

impl From<AppendError> for Reject {
    fn from(err: AppendError) -> Self {
        match err {
            AppendError::NoSuchRoom => {
                Reject::new(ErrorCode::NoSuchRoom, "That room no longer exists.".into())
            }
            AppendError::Failed => Reject::new(
                ErrorCode::Internal,
                "The server could not store that; try again.".into(),
            ),
            // Changes are refused by the append queue itself, not through here.
            AppendError::NoSuchMessage => Reject::new(ErrorCode::NoSuchMessage, err.to_string()),
            AppendError::NotAuthor => Reject::new(ErrorCode::NotAuthor, err.to_string()),
            AppendError::TooManyReactions => {
                Reject::new(ErrorCode::TooManyReactions, err.to_string())
            }
        }
    }
}

type Outcome = Result<(), Reject>;

/// The state of one connection's conversation.
pub struct Conversation {
    /// The hub this connection talks through.
    hub: RoomHub,
    /// This connection's outbound queue.
    outbox: Outbox,
    /// Who this connection is, once `hello` succeeded.
    user: Option<UserId>,
    /// The account this connection was opened signed in to (by its session cookie).
    account: Option<UserId>,
    /// What one person may create or try, and the address this connection counts
    /// against.
    quotas: Quotas,
    /// The client's address (through trusted proxies), for the per-IP quotas.
    ip: IpAddr,
    /// The client said `goodbye`: no grace period when this connection closes.
    leaving_for_good: bool,
    /// What this connection last said about typing, per room (see `attention.rs`).
    typing: HashMap<RoomId, attention::TypingSignal>,
}

impl Conversation {
    /// A conversation that has not said `hello` yet; `account` when the connection came
    /// with a valid session cookie; `ip` is the client's address.
    pub fn new(
        hub: RoomHub,
        outbox: Outbox,
        account: Option<UserId>,
        quotas: Quotas,
        ip: IpAddr,
    ) -> Self {
        Conversation {
            hub,
            outbox,
            user: None,
            account,
            quotas,
            ip,
            leaving_for_good: false,
            typing: HashMap::new(),
        }
    }

    /// True once `hello` succeeded.
    pub fn is_ready(&self) -> bool {
        self.user.is_some()
    }

    /// Sends a frame to this connection only.
    pub fn send(&self, msg: &ServerMsg) {
        self.outbox.send(msg);
    }

    /// Answers a frame that could not be decoded.
    pub fn reject_frame(&self, reason: &str, request_ref: Option<String>) {
        self.outbox.send(&ServerMsg::error(
            ErrorCode::BadFrame,
            format!("Could not read that frame: {reason}"),
            request_ref,
        ));
    }

    /// Handles one request; errors go back to the client as error frames.
    pub async fn handle(&mut self, frame: ClientFrame) {
        let ClientFrame { request_ref, msg } = frame;
        let outcome = match (&self.user, msg) {
            (
                None,
                ClientMsg::Hello {
                    version,
                    name,
                    credentials,
                    resume,
                },
            ) => self.hello(version, &name, credentials, &resume).await,
            (None, _) => Err(Reject::new(
                ErrorCode::HelloRequired,
                "Say hello first.".into(),
            )),
            (Some(_), ClientMsg::Hello { .. }) => Err(Reject::new(
                ErrorCode::AlreadyReady,
                "This connection already said hello.".into(),
            )),
            (Some(user), msg) => {
                let user = user.clone();
                self.request(user, msg, request_ref.clone()).await
            }
        };
        if let Err(reject) = outcome {
            self.outbox.send(&ServerMsg::Error {
                code: reject.code,
                message: reject.message,
                request_ref,
                retry_after_ms: reject
                    .retry_after
                    .map(|wait| u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1)),
            });
        }
    }

    /// The connection closed: the user goes offline after the grace period (at once
    /// after `goodbye`) unless another connection of theirs is open.
    pub fn disconnect(&self) {
        if let Some(user) = &self.user {
            self.hub
                .disconnect(user, self.outbox.id, self.leaving_for_good);
        }
    }

    async fn request(
        &mut self,
        user: UserId,
        msg: ClientMsg,
        request_ref: Option<String>,
    ) -> Outcome {
        match msg {
            ClientMsg::Hello { .. } => Ok(()),
            ClientMsg::Rename { name } => self.rename(&user, &name).await,
            ClientMsg::CreateChannel {
                name,
                delete_when_empty,
            } => {
                let name = validate::channel_name(&name)
                    .map_err(|m| Reject::new(ErrorCode::InvalidChannelName, m))?;
                self.room_to_spare(&user)?;
                let max_channels = self.quotas.settings().max_channels;
                if self.hub.channel_count() >= max_channels {
                    telemetry::refused("too_many_channels");
                    return Err(Reject::new(
                        ErrorCode::TooManyChannels,
                        format!("This server has {max_channels} channels, as many as it allows."),
                    ));
                }
                self.use_quota(Quota::RoomsCreated, &user)?;
                let room = match self
                    .hub
                    .store()
                    .create_channel(&name, delete_when_empty)
                    .await
                {
                    Err(StoreError::Conflict) => {
                        self.quotas.refund(Quota::RoomsCreated, &user, self.ip);
                        return Err(Reject::new(
                            ErrorCode::ChannelExists,
                            format!("#{name} already exists."),
                        ));
                    }
                    other => other?,
                };
                let listed = Effect::Channel {
                    id: room.id,
                    name: name.clone(),
                };
                let channel = ChannelInfo { id: room.id, name };
                self.hub.publish_with(
                    Target::Everyone,
                    listed,
                    &ServerMsg::ChannelAdded { channel },
                );
                self.join(&user, room).await
            }
            ClientMsg::JoinChannel { name } => {
                let name = validate::channel_name(&name)
                    .map_err(|m| Reject::new(ErrorCode::InvalidChannelName, m))?;
                match self.hub.store().find_channel(&name).await? {
                    Some(room) => self.join(&user, room).await,
                    None => Err(Reject::new(
                        ErrorCode::NoSuchRoom,
                        format!("There is no channel #{name}."),
                    )),
                }
            }
            ClientMsg::CreateCodeRoom { delete_when_empty } => {
                self.room_to_spare(&user)?;
                self.use_quota(Quota::RoomsCreated, &user)?;
                let room = self.create_code_room(delete_when_empty).await?;
                self.join(&user, room).await
            }
            ClientMsg::JoinByCode { code } => {
                let code = validate::room_code(&code)
                    .map_err(|m| Reject::new(ErrorCode::InvalidCode, m))?;
                // Every attempt takes a token and a right code gives it back: only
                // wrong ones count, and with the bucket empty no guess is answered.
                self.use_quota(Quota::FailedCodes, &user)?;
                match self.hub.store().find_code_room(&code).await? {
                    Some(room) => {
                        self.quotas.refund(Quota::FailedCodes, &user, self.ip);
                        self.join(&user, room).await
                    }
                    None => Err(Reject::new(
                        ErrorCode::NoSuchRoom,
                        format!("No room has the code {code}."),
                    )),
                }
            }
            ClientMsg::Leave { room } => self.leave(&user, room).await,
            ClientMsg::OpenDirect { user: other } => self.open_direct(&user, &other).await,
            ClientMsg::Block { user: other } => self.block(&user, &other).await,
            ClientMsg::Unblock { user: other } => self.unblock(&user, &other).await,
            ClientMsg::Send {
                room,
                client_id,
                text,
                attachments,
                reply_to,
            } => {
                validate::client_id(&client_id)
                    .map_err(|m| Reject::new(ErrorCode::InvalidClientId, m))?;
                if attachments.len() > MAX_ATTACHMENTS {
                    return Err(Reject::new(
                        ErrorCode::TooManyFiles,
                        format!("A message carries at most {MAX_ATTACHMENTS} files."),
                    ));
                }
                let text = validate::message_with_files(&text, attachments.len())
                    .map_err(|m| Reject::new(ErrorCode::InvalidText, m))?;
                self.require_member(&user, room)?;
                let reply_to = match reply_to {
                    Some(seq) => Some(self.reply_preview(room, seq).await?),
                    None => None,
                };
                let files = self.own_files(&user, room, attachments).await?;
                let mentions = self.resolve_mentions(room, &text).await?;
                let mut message = self.new_message(
                    &user,
                    room,
                    MessageKind::Text,
                    text,
                    Some(client_id.clone()),
                );
                message.attachments = files;
                message.reply_to = reply_to;
                message.mentions = mentions;
                self.sent_in(room);
                let reply = AppendReply::Ack {
                    outbox: self.outbox.clone(),
                    client_id,
                    request_ref,
                };
                self.hub.appender().append(message, reply).await;
                Ok(())
            }
            ClientMsg::BrowseChannels => {
                let listings = self.hub.channel_directory().await?;
                let mut chunks = listings.chunks(SNAPSHOT_CHUNK).peekable();
                if chunks.peek().is_none() {
                    self.outbox.send(&ServerMsg::ChannelDirectory {
                        channels: Vec::new(),
                        complete: true,
                    });
                }
                while let Some(chunk) = chunks.next() {
                    self.outbox.send(&ServerMsg::ChannelDirectory {
                        channels: chunk.to_vec(),
                        complete: chunks.peek().is_none(),
                    });
                }
                Ok(())
            }
            ClientMsg::Goodbye => {
                self.leaving_for_good = true;
                Ok(())
            }
            ClientMsg::History {
                room,
                before,
                limit,
            } => self.history_page(&user, room, before, limit).await,
            ClientMsg::CatchUp { room, after } => self.catch_up(&user, room, after).await,
            ClientMsg::MarkRead { room, seq } => self.mark_read(&user, room, seq),
            ClientMsg::Typing { room, typing } => self.typing(&user, room, typing).await,
            msg @ (ClientMsg::Edit { .. }
            | ClientMsg::Delete { .. }
            | ClientMsg::React { .. }
            | ClientMsg::Unreact { .. }) => match ChangeRequest::of(msg, request_ref) {
                Some(request) => self.change(&user, request).await,
                None => Ok(()),
            },
        }
    }

    async fn hello(
        &mut self,
        version: u32,
        name: &str,
        credentials: Option<GuestCredentials>,
        resume: &[ResumePosition],
    ) -> Outcome {
        if version != PROTOCOL_VERSION {
            return Err(Reject::new(
                ErrorCode::UnsupportedVersion,
                format!("This server speaks protocol version {PROTOCOL_VERSION}; reload the page."),
            ));
        }
        let store = self.hub.store().clone();
        // Each way in holds a claim on the name until `register` below made it theirs.
        let (user, name, credentials, _claim) = match (&self.account, credentials) {
            (Some(account), _) => {
                // Signed in: the account decides who this is and under which name.
                let Some(record) = store.find_user(account).await? else {
                    return Err(Reject::new(
                        ErrorCode::BadCredentials,
                        "This account no longer exists; sign in again.".into(),
                    ));
                };
                let name = record.name.clone();
                let claim = self
                    .hub
                    .claim_name(&record.id, &name)
                    .await
                    .map_err(|_| name_taken(&name))?;
                store.seen(&record.id, crate::clock::now_ms()).await?;
                (record, name, None, claim)
            }
            (None, Some(creds)) => {
                let name = validate::display_name(name)
                    .map_err(|m| Reject::new(ErrorCode::InvalidName, m))?;
                let known = store.find_user(&creds.user_id).await?;
                match known {
                    // Guest secrets are 32 random characters (≈190 bits): a fast hash
                    // is enough, there is nothing to brute-force.
                    Some(record) if record.secret_hash == digest(&creds.secret) => {
                        self.refuse_reserved(&record.id, &name).await?;
                        let claim = self
                            .hub
                            .claim_name(&record.id, &name)
                            .await
                            .map_err(|_| name_taken(&name))?;
                        // A returning guest is not stale (see `--guest-expiry-days`).
                        store.seen(&record.id, crate::clock::now_ms()).await?;
                        (record, name, Some(creds), claim)
                    }
                    _ => {
                        return Err(Reject::new(
                            ErrorCode::BadCredentials,
                            "These guest credentials are not known here; say hello without them for a new identity.".into(),
                        ))
                    }
                }
            }
            (None, None) => {
                let name = validate::display_name(name)
                    .map_err(|m| Reject::new(ErrorCode::InvalidName, m))?;
                let id = UserId(hex::encode(rand::random::<[u8; 8]>()));
                self.refuse_reserved(&id, &name).await?;
                if !self.hub.name_free(&name) {
                    return Err(name_taken(&name));
                }
                let secret: String = rand::thread_rng()
                    .sample_iter(&Alphanumeric)
                    .take(32)
                    .map(char::from)
                    .collect();
                let record = UserRecord {
                    id,
                    secret_hash: digest(&secret),
                    name: name.clone(),
                };
                // Reserved before the user exists, so a name taken on another node
                // leaves no user behind.
                let claim = self
                    .hub
                    .claim_name(&record.id, &name)
                    .await
                    .map_err(|_| name_taken(&name))?;
                store.create_user(&record).await?;
                let creds = GuestCredentials {
                    user_id: record.id.clone(),
                    secret,
                };
                (record, name, Some(creds), claim)
            }
        };
        let started = std::time::Instant::now();
        let records = store.rooms_of(&user.id).await?;
        telemetry::store_call("rooms_of", started);
        let blocked = store.blocked_by(&user.id).await?;
        // My read positions noted on this node are stored first, so they count.
        self.hub.flush_reads_of(&user.id).await;
        let started = std::time::Instant::now();
        let read: HashMap<RoomId, ReadState> =
            store.read_states(&user.id).await?.into_iter().collect();
        telemetry::store_call("read_states", started);
        let mut rooms = Vec::with_capacity(records.len());
        for record in &records {
            let mut info = self.hub.room_info(record).await?;
            info.read = read.get(&record.id).copied().unwrap_or_default();
            rooms.push(info);
        }
        let me = UserSummary {
            id: user.id.clone(),
            name: name.clone(),
        };
        let room_seqs: Vec<(RoomId, Seq)> = records.iter().map(|r| (r.id, r.latest_seq)).collect();
        let ready = ServerMsg::Ready {
            me,
            credentials,
            rooms,
            blocked,
        };
        self.hub
            .register(&user.id, &name, &room_seqs, &self.outbox, ready)
            .map_err(|_| name_taken(&name))?;
        self.user = Some(user.id.clone());
        if user.name != name {
            store.rename_user(&user.id, &name).await?;
        }
        // What each room's catch-up needs, read now that the connection is attached
        // (a message stored since `rooms_of` is then either live or in the history).
        // The connection's writer reads the histories as the socket drains.
        let ids: Vec<RoomId> = records.iter().map(|r| r.id).collect();
        let started = std::time::Instant::now();
        let latest: HashMap<RoomId, Seq> = store.latest_seqs(&ids).await?.into_iter().collect();
        telemetry::store_call("latest_seqs", started);
        let rooms = ids
            .into_iter()
            .map(|room| RoomCatchUp {
                room,
                after: resume.iter().find(|p| p.room == room).map_or(0, |p| p.seq),
                // A room deleted meanwhile has nothing to send.
                latest: latest.get(&room).copied().unwrap_or(0),
            })
            .collect();
        self.outbox.push(Outgoing::CatchUp {
            viewer: user.id.clone(),
            rooms,
        });
        Ok(())
    }

    async fn rename(&mut self, user: &UserId, name: &str) -> Outcome {
        let name =
            validate::display_name(name).map_err(|m| Reject::new(ErrorCode::InvalidName, m))?;
        self.refuse_reserved(user, &name).await?;
        // Claimed before the store is written, and held until the hub made the name
        // ours: nobody can take it in between, so the store never holds a name its
        // owner then cannot connect with.
        let _claim = self
            .hub
            .claim_name(user, &name)
            .await
            .map_err(|_| name_taken(&name))?;
        // An account's reservation moves with the name, in the same transaction.
        match self.hub.store().rename_user(user, &name).await {
            Err(StoreError::Conflict) => return Err(name_reserved(&name)),
            other => other?,
        }
        self.hub
            .rename(user, &name)
            .map_err(|_| name_taken(&name))?;
        Ok(())
    }

    /// Refuses a name that an account other than `user` holds.
    async fn refuse_reserved(&self, user: &UserId, name: &str) -> Outcome {
        let owner = self
            .hub
            .store()
            .name_owner(&validate::name_key(name))
            .await?;
        match owner {
            Some(owner) if &owner != user => Err(name_reserved(name)),
            _ => Ok(()),
        }
    }

    async fn create_code_room(&self, delete_when_empty: bool) -> Result<RoomRecord, Reject> {
        // 26^8 ≈ 2·10^11 codes: a collision is rare, a few retries make it vanishingly so.
        for _ in 0..5 {
            let code: String = rand::thread_rng()
                .sample_iter(Uniform::new_inclusive(b'A', b'Z'))
                .take(validate::ROOM_CODE_LEN)
                .map(char::from)
                .collect();
            match self
                .hub
                .store()
                .create_code_room(&code, delete_when_empty)
                .await
            {
                Err(StoreError::Conflict) => continue,
                other => return Ok(other?),
            }
        }
        Err(Reject::new(
            ErrorCode::Internal,
            "Could not find a free room code; try again.".into(),
        ))
    }

    /// Makes `user` a member of `room` (with a join notice if they were not one), and
    /// sends the room with its latest history to all of the user's connections.
    async fn join(&mut self, user: &UserId, room: RoomRecord) -> Outcome {
        if !self.hub.is_member(user, room.id) {
            self.room_to_spare(user)?;
        }
        let store = self.hub.store().clone();
        let added = match store.add_member(room.id, user).await {
            Err(StoreError::NotFound) => {
                return Err(Reject::new(
                    ErrorCode::NoSuchRoom,
                    "That room no longer exists.".into(),
                ))
            }
            other => other?,
        };
        if added {
            let notice = self.new_message(user, room.id, MessageKind::Join, String::new(), None);
            self.hub.appender().append_notice(notice).await?;
        }
        self.announce_membership(user, room.id, user).await
    }

    /// Tells all of `user`'s connections (on whichever node) they are in `room` — their
    /// node starts fanning the room out to them — followed by its history.
    async fn announce_membership(&self, user: &UserId, room: RoomId, by: &UserId) -> Outcome {
        let Some(record) = self.hub.store().room(room).await? else {
            return Err(Reject::new(
                ErrorCode::NoSuchRoom,
                "That room no longer exists.".into(),
            ));
        };
        let mut info = self.hub.room_info(&record).await?;
        info.read = self.hub.read_state(user, room).await?;
        self.hub.publish_with(
            Target::User(user.clone()),
            Effect::Member {
                room,
                user: user.clone(),
                seq: record.latest_seq,
            },
            &ServerMsg::Joined {
                room: info,
                by: by.clone(),
            },
        );
        self.send_history(room, user).await
    }

    async fn leave(&mut self, user: &UserId, room: RoomId) -> Outcome {
        self.require_member(user, room)?;
        let store = self.hub.store().clone();
        let Some(record) = store.room(room).await? else {
            return Err(Reject::new(
                ErrorCode::NoSuchRoom,
                "That room no longer exists.".into(),
            ));
        };
        if matches!(record.kind, RoomRecordKind::Direct { .. }) {
            return Err(Reject::new(
                ErrorCode::CannotLeaveDirect,
                "Direct messages cannot be left; close the popup instead.".into(),
            ));
        }
        let departure = store.remove_member(room, user).await?;
        // All of the user's tabs, on every node, leave before the notice goes out.
        self.hub.publish_with(
            Target::User(user.clone()),
            Effect::NotMember {
                room,
                user: user.clone(),
            },
            &ServerMsg::Left { room },
        );
        if departure.room_deleted {
            // Deleted with the last membership, in one transaction: nobody who joined
            // meanwhile is left in a deleted room (their join found it gone).
            // A channel leaves everyone's list on every node. (Nobody is a member any
            // more, so no node fans the room out; `Left` above unindexed this user.)
            if matches!(record.kind, RoomRecordKind::Channel { .. }) {
                self.hub.publish_with(
                    Target::Everyone,
                    Effect::RoomGone { room },
                    &ServerMsg::ChannelRemoved { room },
                );
            }
        } else {
            let notice = self.new_message(user, room, MessageKind::Leave, String::new(), None);
            self.hub.appender().append_notice(notice).await?;
        }
        Ok(())
    }

    async fn open_direct(&mut self, user: &UserId, other: &UserId) -> Outcome {
        if user == other {
            return Err(Reject::new(
                ErrorCode::CannotDirectSelf,
                "A direct room needs someone else.".into(),
            ));
        }
        let store = self.hub.store().clone();
        if store.find_user(other).await?.is_none() {
            return Err(Reject::new(ErrorCode::NoSuchUser, "No such user.".into()));
        }
        if store.blocks(user, other).await? {
            return Err(Reject::new(
                ErrorCode::UserBlocked,
                "You blocked this person; unblock them to write to them.".into(),
            ));
        }
        // Opening one that exists is free; a new one counts for its opener (not for
        // the other person, who did not ask: their protection is the opener's quota).
        let room = match store.find_direct(user, other).await? {
            Some(room) => room,
            None => {
                self.room_to_spare(user)?;
                self.use_quota(Quota::DirectsOpened, user)?;
                let (room, created) = store.open_direct(user, other).await?;
                if !created {
                    self.quotas.refund(Quota::DirectsOpened, user, self.ip);
                }
                room
            }
        };
        self.announce_membership(user, room.id, user).await?;
        // Someone who blocks the opener is not told: the room is open for the opener
        // only, and stays out of the other's `rooms_of` until they unblock.
        if !store.blocks(other, user).await? {
            self.announce_membership(other, room.id, user).await?;
        }
        Ok(())
    }

    /// Sends a room's latest page to all of `user`'s connections (after a join).
    async fn send_history(&self, room: RoomId, user: &UserId) -> Outcome {
        let started = std::time::Instant::now();
        let (msg, newest) = catch_up(&**self.hub.store(), room, 0, None, user).await?;
        telemetry::store_call("history", started);
        self.hub
            .publish_history(user, CatchUp { room, newest }, &msg);
        Ok(())
    }

    /// Refuses when `user` is in as many rooms as one person may be.
    fn room_to_spare(&self, user: &UserId) -> Outcome {
        let max = self.quotas.settings().max_rooms_per_user;
        if self.hub.room_count(user) >= max {
            telemetry::refused("too_many_rooms");
            return Err(Reject::new(
                ErrorCode::TooManyRooms,
                format!("You are in {max} rooms, as many as one person can be; leave one first."),
            ));
        }
        Ok(())
    }

    /// Counts one use of `quota` by this user and this connection's address.
    fn use_quota(&self, quota: Quota, user: &UserId) -> Outcome {
        self.quotas
            .take(quota, user, self.ip)
            .map_err(|wait| Reject::quota(quota, wait))
    }

    fn require_member(&self, user: &UserId, room: RoomId) -> Outcome {
        if self.hub.is_member(user, room) {
            Ok(())
        } else {
            Err(Reject::new(
                ErrorCode::NotMember,
                "You are not in that room.".into(),
            ))
        }
    }

    /// The attachments of files `user` uploaded, in the order named (each once); an
    /// unknown file, someone else's, or one already sent in another room refuses the
    /// send. A file sent before in this same room may be named again: a resend must
    /// stay idempotent (and a file lives as long as the room it was first sent in).
    async fn own_files(
        &self,
        user: &UserId,
        room: RoomId,
        ids: Vec<FileId>,
    ) -> Result<Vec<Attachment>, Reject> {
        let mut files: Vec<Attachment> = Vec::with_capacity(ids.len());
        for id in ids {
            if files.iter().any(|f| f.id == id) {
                continue;
            }
            let no_such_file = || {
                Reject::new(
                    ErrorCode::NoSuchFile,
                    "One of the files is not one you uploaded for this room; upload it again."
                        .into(),
                )
            };
            if !crate::files::is_file_id(&id.0) {
                return Err(no_such_file());
            }
            match self.hub.store().file(&id).await? {
                Some(file)
                    if &file.uploader == user && file.room.is_none_or(|sent| sent == room) =>
                {
                    files.push(file.attachment())
                }
                _ => return Err(no_such_file()),
            }
        }
        Ok(files)
    }

    fn new_message(
        &self,
        user: &UserId,
        room: RoomId,
        kind: MessageKind,
        text: String,
        client_id: Option<String>,
    ) -> NewMessage {
        NewMessage {
            room,
            sender: UserSummary {
                id: user.clone(),
                name: self.hub.online_name(user).unwrap_or_default(),
            },
            ts: crate::clock::now_ms(),
            kind,
            text,
            client_id,
            attachments: Vec::new(),
            reply_to: None,
            mentions: Vec::new(),
        }
    }
}

fn name_taken(name: &str) -> Reject {
    Reject::new(
        ErrorCode::NameTaken,
        format!("Someone online is already called {name}."),
    )
}

fn name_reserved(name: &str) -> Reject {
    Reject::new(
        ErrorCode::NameReserved,
        format!("{name} belongs to a registered account; sign in to use it, or pick another."),
    )
}
