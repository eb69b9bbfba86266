//! What each frame from the server does to the [`ChatState`]: the reducer proper.
//!
//! [`ChatState::apply`] takes one [`ServerMsg`] and returns the [`Effect`]s it calls
//! for. The subtle parts: `history` batches merge into one run without holes, a
//! catch-up moves `through` (what is held up to) and replaces the held messages that
//! changed, and `more_before` is decided only when a batch starts what is held; every
//! live event (message or change) extends `through` or, past a gap, asks to
//! `catch_up`; a `changed` is applied only above its message's `rev`; an `ack` turns a
//! pending send into my message (or clears a pending change); a presence frame naming
//! me renames me; `left` moves the main pane to another room; an error lands next to
//! the form its `ref` names, and one naming a pending send or change by its client id
//! drops it; a message from someone I block neither counts as unread nor opens a
//! popup. Read states, typing and notifications are `attention.rs`'s.
//!
//! Why one long file: it is one `match` over every `ServerMsg`, each arm a short
//! method; split, the order the reducer relies on (what `through`, `rev` and pending
//! mean to each frame) would be spread over several files.

use std::collections::HashMap;

use natter_protocol::{
    Change, ChannelInfo, ChatMessage, ClientMsg, ErrorCode, GuestCredentials, Mention, MessageKind,
    RoomId, RoomInfo, RoomKind, Seq, ServerMsg, Timestamp, UserId, UserSummary, DEFAULT_CHANNEL,
};

use super::{form, form_of, is_direct_kind, push_once, ChatState, Effect, Person, Popup};
use crate::logic;

impl ChatState {
    /// Folds one frame from the server into the state.
    pub fn apply(&mut self, msg: ServerMsg) -> Vec<Effect> {
        let mut out = Vec::new();
        match msg {
            ServerMsg::Ready {
                me,
                credentials,
                rooms,
                blocked,
            } => {
                self.blocked.set(blocked);
                self.on_ready(me, credentials, rooms, &mut out);
            }
            ServerMsg::Blocked { users } => self.blocked.set(users),
            ServerMsg::Channels { channels } => self.add_channels(channels),
            ServerMsg::Presence { online, offline } => self.on_presence(online, offline, &mut out),
            ServerMsg::ChannelDirectory { channels, .. } => {
                let counts = self.member_counts.edit();
                counts.extend(channels.into_iter().map(|c| (c.id, c.members)));
            }
            ServerMsg::ChannelAdded { channel } => self.add_channels(vec![channel]),
            ServerMsg::ChannelRemoved { room } => self.channels.edit().retain(|ch| ch.id != room),
            ServerMsg::Joined { room, by } => self.on_joined(room, by, &mut out),
            ServerMsg::Left { room } => self.on_left(room, &mut out),
            ServerMsg::History {
                room,
                messages,
                more_before,
                through,
                changed,
            } => self.on_history(room, messages, more_before, through, changed, &mut out),
            ServerMsg::Message { message } => self.on_message(message, true, &mut out),
            ServerMsg::Read { room, state } => self.on_read(room, state, &mut out),
            ServerMsg::Typing { room, user, typing } => {
                self.on_typing(room, user, typing, &mut out)
            }
            ServerMsg::Changed {
                room,
                seq,
                ts,
                by,
                target,
                change,
            } => self.on_changed(room, seq, ts, &by, target, &change, &mut out),
            ServerMsg::Ack {
                client_id,
                room,
                seq,
                ts,
                mentions,
            } => self.on_ack(&client_id, room, seq, ts, mentions, &mut out),
            ServerMsg::Error {
                code,
                message,
                request_ref,
                retry_after_ms,
            } => self.on_error(code, message, request_ref, retry_after_ms, &mut out),
        }
        out
    }

    fn on_ready(
        &mut self,
        me: UserSummary,
        credentials: Option<GuestCredentials>,
        rooms: Vec<RoomInfo>,
        out: &mut Vec<Effect>,
    ) {
        if self
            .me
            .as_ref()
            .is_some_and(|previous| previous.id != me.id)
        {
            // A different identity than the cache was for: drop what was shown.
            self.history.set(HashMap::new());
            self.read.set(HashMap::new());
            self.popups.set(Vec::new());
            self.current.set(None);
        }
        if let Some(credentials) = credentials {
            out.push(Effect::SaveCredentials(credentials));
        }
        // Rooms left elsewhere while away are gone from the cache too; a catch-up asked
        // on the old connection is not coming (the resume in `hello` covers it).
        self.history
            .edit()
            .retain(|id, _| rooms.iter().any(|r| r.id == *id));
        for held in self.history.edit().values_mut() {
            held.catching_up = false;
        }
        // Where I stopped reading, on whichever device: the newer of that and this
        // browser's.
        for room in &rooms {
            self.take_read_state(room.id, room.read);
        }
        let current_ok = self
            .current
            .is_some_and(|c| rooms.iter().any(|r| r.id == c && !is_direct_kind(&r.kind)));
        let in_default = rooms
            .iter()
            .any(|r| matches!(&r.kind, RoomKind::Channel { name } if name == DEFAULT_CHANNEL));
        self.popups
            .edit()
            .retain(|p| rooms.iter().any(|r| r.id == p.room));
        // The snapshot that follows `ready` says who is online and which channels
        // exist; until then, nobody is known to be online and no channel is listed.
        self.people.edit().iter_mut().for_each(|p| p.online = false);
        self.me.set(Some(me));
        self.rooms.set(rooms);
        self.channels.set(Vec::new());
        if !current_ok {
            let first = self.first_main_room();
            self.current.set(first);
        }
        if self.current.is_none() && !in_default {
            out.push(Effect::Send(ClientMsg::JoinChannel {
                name: DEFAULT_CHANNEL.into(),
            }));
        }
        out.push(Effect::SessionReady);
        self.save_profile(out);
        // Anything not acknowledged before the drop goes out again, same client ids:
        // a few at once, many paced (all at once, most would be refused for speed).
        if self.pending.len() <= logic::RESEND_AT_ONCE {
            out.push(Effect::ResendPending);
        } else if !self.throttled {
            self.throttled = true;
            out.push(Effect::PaceAfter { ms: 0 });
        }
    }

    fn on_presence(
        &mut self,
        online: Vec<UserSummary>,
        offline: Vec<UserId>,
        out: &mut Vec<Effect>,
    ) {
        let my_id = self.me.as_ref().map(|me| me.id.clone());
        if let Some(me) = online.iter().find(|u| Some(&u.id) == my_id.as_ref()) {
            self.set_error(form::RENAME, None);
            // Reconnects say hello under the new name.
            out.push(Effect::SetHelloName(me.name.clone()));
            self.me.set(Some(me.clone()));
            self.save_profile(out);
        }
        // Direct rooms are titled by the other person's name: it follows their id.
        let renamed: HashMap<&UserId, &str> =
            online.iter().map(|u| (&u.id, u.name.as_str())).collect();
        let stale = |m: &UserSummary| renamed.get(&m.id).is_some_and(|name| *name != m.name);
        let outdated = self.rooms.iter().any(|r| match &r.kind {
            RoomKind::Direct { members } => members.iter().any(stale),
            _ => false,
        });
        if outdated {
            for room in self.rooms.edit().iter_mut() {
                if let RoomKind::Direct { members } = &mut room.kind {
                    for member in members.iter_mut() {
                        if let Some(name) = renamed.get(&member.id) {
                            member.name = (*name).to_string();
                        }
                    }
                }
            }
            self.save_profile(out);
        }
        let people = self.people.edit();
        // One pass to index, one per change: a snapshot of thousands stays linear.
        let mut at: HashMap<UserId, usize> = people
            .iter()
            .enumerate()
            .map(|(i, p)| (p.user.id.clone(), i))
            .collect();
        for user in online {
            match at.get(&user.id) {
                Some(&i) => {
                    people[i].user = user;
                    people[i].online = true;
                }
                None => {
                    at.insert(user.id.clone(), people.len());
                    people.push(Person { user, online: true });
                }
            }
        }
        let mut went_offline = false;
        for user in offline {
            if let Some(&i) = at.get(&user) {
                people[i].online = false;
                went_offline = true;
            }
        }
        // Remember a bounded number of people who left: the longest gone go first.
        let offline_count = people.iter().filter(|p| !p.online).count();
        if went_offline && offline_count > logic::OFFLINE_PEOPLE {
            let mut excess = offline_count - logic::OFFLINE_PEOPLE;
            people.retain(|p| {
                let forget = !p.online && excess > 0;
                excess -= usize::from(forget);
                !forget
            });
        }
    }

    /// Adds channels to the list (snapshot frames after `ready`, or one created live).
    fn add_channels(&mut self, channels: Vec<ChannelInfo>) {
        let list = self.channels.edit();
        for channel in channels {
            if !list.iter().any(|ch| ch.id == channel.id) {
                list.push(channel);
            }
        }
    }

    fn on_joined(&mut self, room: RoomInfo, by: UserId, out: &mut Vec<Effect>) {
        let id = room.id;
        let direct = is_direct_kind(&room.kind);
        // Opened at the very moment I blocked them: it does not pop up.
        let unwanted = self.with_blocked(&room);
        let read = room.read;
        let rooms = self.rooms.edit();
        match rooms.iter_mut().find(|r| r.id == id) {
            Some(existing) => *existing = room,
            None => rooms.push(room),
        }
        self.take_read_state(id, read);
        let mine = self.me.as_ref().is_some_and(|me| me.id == by);
        if direct && !unwanted {
            self.open_popup(id, out);
        } else if mine {
            self.set_error(form::CHANNEL, None);
            self.set_error(form::CODE, None);
            self.show(id, out);
        }
        self.save_profile(out);
    }

    fn on_left(&mut self, room: RoomId, out: &mut Vec<Effect>) {
        self.rooms.edit().retain(|r| r.id != room);
        self.history.edit().remove(&room);
        if let Some(me) = self.me.as_ref() {
            out.push(Effect::ForgetRoom {
                user: me.id.clone(),
                room,
            });
        }
        if *self.current == Some(room) {
            let first = self.first_main_room();
            self.current.set(first);
        }
        self.save_profile(out);
    }

    fn on_history(
        &mut self,
        room: RoomId,
        messages: Vec<ChatMessage>,
        more_before: bool,
        through: Option<Seq>,
        changed: Vec<ChatMessage>,
        out: &mut Vec<Effect>,
    ) {
        let batch_first = messages.first().map(|m| m.seq);
        let entry = self.history.edit().entry(room).or_default();
        // A catch-up (it says `through`) that left messages out drops what is held
        // before it; a page of older messages never does.
        let missed_some = through.is_some() && more_before;
        logic::apply_batch(&mut entry.messages, messages, missed_some);
        // (With nothing new to show, "missed some" still means the held copies are
        // stale: the server says so when too many of them changed to list.)
        if missed_some && batch_first.is_none() {
            entry.messages.clear();
        }
        let changed_seqs: Vec<Seq> = changed.iter().map(|m| m.seq).collect();
        logic::replace_changed(&mut entry.messages, changed);
        for seq in changed_seqs {
            logic::refresh_quotes(&mut entry.messages, seq);
        }
        if let Some(through) = through {
            entry.through = entry.through.max(through);
            entry.catching_up = false;
        }
        // `more_before` describes what lies before this batch: it is the room's answer
        // only if the batch now starts what we hold.
        if batch_first.is_some() && entry.messages.first().map(|m| m.seq) == batch_first {
            entry.more_before = more_before;
            entry.loading_older = false;
        } else if batch_first.is_none() {
            entry.more_before = more_before && !entry.messages.is_empty();
            entry.loading_older = false;
        }
        self.after_messages(room, out);
    }

    /// A live event (message or change) with `seq` arrived in `room`: it extends what is
    /// held through — or it shows a gap, and the room is caught up from what is held
    /// (once; later events wait for the answer). Returns false past a gap: the event is
    /// then left to the catch-up, so nothing is held beyond a hole.
    fn live_event(&mut self, room: RoomId, seq: Seq, out: &mut Vec<Effect>) -> bool {
        if let Some(info) = self.rooms.edit().iter_mut().find(|r| r.id == room) {
            info.latest_seq = info.latest_seq.max(seq);
        }
        let held = self.history.edit().entry(room).or_default();
        if held.through == 0 || seq == held.through + 1 {
            held.through = seq;
            return true;
        }
        if seq <= held.through {
            // Already held (a history brought it): applying again changes nothing.
            return true;
        }
        if !held.catching_up {
            held.catching_up = true;
            out.push(Effect::Send(ClientMsg::CatchUp {
                room,
                after: held.through,
            }));
        }
        false
    }

    /// A message of `room`: live from the server, or my own send acknowledged (`live`
    /// false: acks travel outside the room's order, so one may come ahead of events
    /// before it — it is held, but says nothing about gaps).
    fn on_message(&mut self, message: ChatMessage, live: bool, out: &mut Vec<Effect>) {
        let room = message.room;
        let seq = message.seq;
        if live && !self.live_event(room, seq, out) {
            return;
        }
        let message_sender = message.sender.id.clone();
        let held = self.history.edit().entry(room).or_default();
        if !live && seq == held.through + 1 {
            held.through = seq;
        }
        logic::merge_history(&mut held.messages, [message]);
        // A reply's quote as the original now is, if the original is held (it may
        // have changed since the reply was sent).
        if let Some(original) = held
            .messages
            .iter()
            .find(|m| m.seq == seq)
            .and_then(|m| m.reply_to.as_ref().map(|r| r.seq))
        {
            logic::refresh_quotes(&mut held.messages, original);
        }
        // Live messages do not grow memory for ever: the oldest are let go (and paged
        // back from the server if the person scrolls up).
        if held.messages.len() > logic::HELD_PER_ROOM {
            let excess = held.messages.len() - logic::HELD_PER_ROOM;
            held.messages.drain(..excess);
            held.more_before = true;
        }
        if live {
            if let Some(message) = self.history.get(&room).and_then(|h| {
                h.messages
                    .binary_search_by_key(&seq, |m| m.seq)
                    .ok()
                    .map(|at| h.messages[at].clone())
            }) {
                self.attend_to(&message, out);
            }
        }
        // A new message in a closed direct room brings its popup back.
        let shown = !self.blocks(&message_sender);
        if shown && self.is_direct(room) && !self.popups.iter().any(|p| p.room == room) {
            self.popups.edit().push(Popup {
                room,
                minimized: false,
            });
        }
        self.after_messages(room, out);
    }

    /// Applies a change to the held message it targets (when it is news to it) and to
    /// the quotes of replies to it.
    #[allow(clippy::too_many_arguments)]
    fn on_changed(
        &mut self,
        room: RoomId,
        seq: Seq,
        ts: Timestamp,
        by: &UserSummary,
        target: Seq,
        change: &Change,
        out: &mut Vec<Effect>,
    ) {
        if !self.live_event(room, seq, out) {
            return;
        }
        let me = self.me.as_ref().map(|m| m.id.clone());
        let held = self.history.edit().entry(room).or_default();
        if let Ok(at) = held.messages.binary_search_by_key(&target, |m| m.seq) {
            let message = &mut held.messages[at];
            if seq > message.rev {
                message.apply_change(change, by, ts, seq, me.as_ref());
            }
        }
        if matches!(change, Change::Edit { .. } | Change::Delete) {
            logic::refresh_quotes(&mut held.messages, target);
        }
        self.after_messages(room, out);
    }

    fn on_ack(
        &mut self,
        client_id: &str,
        room: RoomId,
        seq: Seq,
        ts: Timestamp,
        mentions: Vec<Mention>,
        out: &mut Vec<Effect>,
    ) {
        // A change is acknowledged; its effect came (or comes) as `changed`.
        if self
            .pending_changes
            .iter()
            .any(|p| p.client_id == client_id)
        {
            self.pending_changes
                .edit()
                .retain(|p| p.client_id != client_id);
            return;
        }
        let pending = self.pending.edit();
        let acknowledged = pending
            .iter()
            .position(|p| p.client_id == client_id)
            .map(|at| pending.remove(at));
        if let (Some(sent), Some(me)) = (acknowledged, self.me.as_ref().cloned()) {
            let mut message = ChatMessage::new(room, seq, me, ts, MessageKind::Text, sent.text);
            message.attachments = sent.attachments;
            message.reply_to = sent.reply_to;
            message.mentions = mentions;
            self.on_message(message, false, out);
        }
    }

    fn on_error(
        &mut self,
        code: ErrorCode,
        message: String,
        request_ref: Option<String>,
        retry_after_ms: Option<u64>,
        out: &mut Vec<Effect>,
    ) {
        // A message or change refused for good (not for speed, not for a failure the
        // server may not have next time) is not sent again.
        let refused_for_good = !matches!(code, ErrorCode::RateLimited | ErrorCode::Internal);
        if let Some(tag) = request_ref.as_deref().filter(|_| refused_for_good) {
            if self.pending.iter().any(|p| p.client_id == tag) {
                self.pending.edit().retain(|p| p.client_id != tag);
            }
            if self.pending_changes.iter().any(|p| p.client_id == tag) {
                self.pending_changes.edit().retain(|p| p.client_id != tag);
            }
        }
        match code {
            ErrorCode::BadCredentials => {
                // This server does not know us (its database was reset): start afresh.
                if let Some(me) = self.me.as_ref() {
                    out.push(Effect::ForgetUser(me.id.clone()));
                }
                out.push(Effect::ForgetCredentials);
                out.push(Effect::SayHello);
            }
            ErrorCode::RateLimited => {
                // A `catch_up` refused for speed is asked again at the next gap.
                for held in self.history.edit().values_mut() {
                    held.catching_up = false;
                }
                // Sends refused for speed stay pending and go out paced from when the
                // server allows more. One pacer: further refusals schedule nothing.
                if !self.throttled {
                    self.throttled = true;
                    out.push(Effect::PaceAfter {
                        ms: retry_after_ms.unwrap_or(1000),
                    });
                }
                self.set_error(form::GENERAL, Some(message));
            }
            ErrorCode::NameTaken | ErrorCode::NameReserved | ErrorCode::InvalidName
                if request_ref.as_deref() == Some(form::HELLO) =>
            {
                // Refused at hello: back to the name prompt with the reason.
                self.me.set(None);
                self.set_error(form::HELLO, Some(message));
            }
            _ => self.set_error(form_of(request_ref.as_deref()), Some(message)),
        }
    }

    /// After messages arrive in `room`: it is read if it is on screen, and its messages
    /// are kept.
    fn after_messages(&mut self, room: RoomId, out: &mut Vec<Effect>) {
        self.mark_read_if_visible(room, out);
        if let Some(me) = self.me.as_ref() {
            push_once(
                out,
                Effect::SaveHistory {
                    user: me.id.clone(),
                    room,
                },
            );
        }
    }

    fn first_main_room(&self) -> Option<RoomId> {
        self.rooms
            .iter()
            .find(|r| !is_direct_kind(&r.kind))
            .map(|r| r.id)
    }
}
