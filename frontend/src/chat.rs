//! The Leptos side of the chat: [`Chat`], the context every component reads and calls.
//!
//! It is a thin wrapper. The chat's data is one [`ChatState`] in one signal; each
//! decoded [`ServerMsg`] goes to [`ChatState::apply`], and the [`Effect`]s that come
//! back are carried out here: requests on the [`Socket`], saves to [`crate::cache`].
//! What components call lives in [`crate::actions`]; the connection in
//! [`crate::socket`].
//!
//! Why one signal and [`Part`]s rather than a signal per field: the reducer stays plain
//! Rust that takes `&mut ChatState`, with no signal in sight, and is tested natively.
//! But one signal alone would re-run every view on every event: a chat message would
//! re-sort the people list and rebuild the room pane. So components read the state
//! through [`Part`]s, each following one [`Versioned`] field by its version number (a
//! memo of a `u64`, no clone, no comparison of data): a view re-runs exactly when its
//! part was changed, as it did with a signal per field.
//!
//! `chat/attention.rs` adds what the components ask about attention (unread and
//! mention counts, mutes, typing) and reports read positions to the server.

mod attention;

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use natter_protocol::account::Account;
use natter_protocol::{
    ChannelInfo, ReadState, ReplyPreview, RoomId, RoomInfo, Seq, ServerMsg, UserId, UserSummary,
};

use crate::cache::{self, Profile, StoredPopup};
use crate::socket::{Introduction, Listener, Socket, Status};
use crate::state::{
    form, CachedVisit, ChatState, DirectoryEntry, Effect, Pending, Person, Popup, RoomHistory,
    Typist, Versioned,
};

/// One part of the chat state as components read it: reading subscribes to this part
/// only. Cheap to copy.
pub struct Part<T: 'static> {
    /// The whole state.
    state: RwSignal<ChatState>,
    /// The part's version: changes exactly when the part was changed.
    version: Memo<u64>,
    /// Where the part is in the state.
    pick: fn(&ChatState) -> &Versioned<T>,
}

impl<T> Clone for Part<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Part<T> {}

impl<T> Part<T> {
    fn new(state: RwSignal<ChatState>, pick: fn(&ChatState) -> &Versioned<T>) -> Self {
        Part {
            state,
            version: Memo::new(move |_| state.with(|s| pick(s).version())),
            pick,
        }
    }

    /// Subscribes the running view or effect to this part.
    pub fn track(&self) {
        // Reading (not just tracking) the memo keeps it computed, so it hears the state.
        self.version.get();
    }

    /// Looks at the part, subscribing to it.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        self.track();
        self.with_untracked(f)
    }

    /// Looks at the part without subscribing.
    pub fn with_untracked<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let pick = self.pick;
        self.state.with_untracked(|s| f(pick(s)))
    }
}

impl<T: Clone> Part<T> {
    /// A copy of the part, subscribing to it.
    pub fn get(&self) -> T {
        self.with(T::clone)
    }

    /// A copy of the part, without subscribing.
    pub fn get_untracked(&self) -> T {
        self.with_untracked(T::clone)
    }
}

/// The chat every component reads and acts on; cheap to copy.
#[derive(Clone, Copy)]
pub struct Chat {
    /// Connection state for the header.
    pub status: RwSignal<Status>,
    /// The account this browser is signed in to; `None` for a guest.
    pub account: RwSignal<Option<Account>>,
    /// Who I am: from the cache at start, confirmed by `ready`.
    pub me: Part<Option<UserSummary>>,
    /// Everyone seen since the page loaded, online or not.
    pub people: Part<Vec<Person>>,
    /// Every public channel.
    pub channels: Part<Vec<ChannelInfo>>,
    /// Rooms I am in.
    pub rooms: Part<Vec<RoomInfo>>,
    /// Messages per room.
    pub history: Part<HashMap<RoomId, RoomHistory>>,
    /// The channel or code room in the main pane.
    pub current: Part<Option<RoomId>>,
    /// Direct-message popups, oldest first.
    pub popups: Part<Vec<Popup>>,
    /// Sent but not acknowledged, in sending order.
    pub pending: Part<Vec<Pending>>,
    /// Whether the sidebar drawer is open (narrow screens).
    pub drawer_open: Part<bool>,
    /// The people I block (their messages are hidden).
    pub blocked: Part<Vec<UserSummary>>,
    /// Everyone's current name by id (read through [`Chat::name_of`]).
    names: Memo<HashMap<UserId, String>>,
    /// Members per channel for the browser (read through [`Chat::channel_directory`]).
    member_counts: Part<HashMap<RoomId, u32>>,
    /// Newest seq read per room (read through [`Chat::unread`]).
    read: Part<HashMap<RoomId, Seq>>,
    /// The server's read states (read through [`Chat::unread`]).
    read_states: Part<HashMap<RoomId, ReadState>>,
    /// Muted rooms (read through [`Chat::is_muted`]).
    muted: Part<Vec<RoomId>>,
    /// Where "new messages" lines go (read through [`Chat::new_since`]).
    new_since: Part<HashMap<RoomId, Seq>>,
    /// Who is typing (read through [`Chat::typing_line`]).
    typing: Part<HashMap<RoomId, Vec<Typist>>>,
    /// Show the offer to turn on notifications (see [`crate::notify`]).
    pub notifications_offer: RwSignal<bool>,
    /// Errors by form (read through [`Chat::error`]).
    errors: Part<HashMap<&'static str, String>>,
    /// The message being edited in place, if any (one at a time).
    pub editing: RwSignal<Option<(RoomId, Seq)>>,
    /// The message whose deletion waits for the person's confirmation.
    pub confirm_delete: RwSignal<Option<(RoomId, Seq)>>,
    /// Per room, the message the next one sent there answers.
    pub replying: RwSignal<HashMap<RoomId, ReplyPreview>>,
    /// A message to scroll to (a reply's quote was clicked), until it is shown.
    pub jump: RwSignal<Option<(RoomId, Seq)>>,
    /// The chat's data; changed only by [`Chat::change`].
    state: RwSignal<ChatState>,
    /// The connection.
    socket: StoredValue<Socket, LocalStorage>,
    /// Rooms whose cached history is due to be saved (see [`Chat::save_history_soon`]).
    unsaved: StoredValue<HashSet<(UserId, RoomId)>, LocalStorage>,
    /// Read positions not yet told to the server (see [`Chat::report_read_soon`]).
    unreported: StoredValue<HashMap<RoomId, Seq>, LocalStorage>,
}

/// How often, at most, the cached history of a busy room is written to localStorage.
const SAVE_EVERY: Duration = Duration::from_secs(1);

impl Chat {
    /// State restored from this browser's cache; connects if a name was chosen before.
    pub fn boot() -> Self {
        let state = RwSignal::new(ChatState::default());
        let status = RwSignal::new(Status::Idle);
        let socket = Socket::new(status);
        let people = Part::new(state, |s| &s.people);
        let names = Memo::new(move |_| {
            people.with(|people: &Vec<Person>| {
                people
                    .iter()
                    .map(|p| (p.user.id.clone(), p.user.name.clone()))
                    .collect()
            })
        });
        let chat = Chat {
            status,
            account: RwSignal::new(None),
            me: Part::new(state, |s| &s.me),
            people,
            names,
            channels: Part::new(state, |s| &s.channels),
            rooms: Part::new(state, |s| &s.rooms),
            history: Part::new(state, |s| &s.history),
            current: Part::new(state, |s| &s.current),
            popups: Part::new(state, |s| &s.popups),
            pending: Part::new(state, |s| &s.pending),
            drawer_open: Part::new(state, |s| &s.drawer_open),
            blocked: Part::new(state, |s| &s.blocked),
            member_counts: Part::new(state, |s| &s.member_counts),
            read: Part::new(state, |s| &s.read),
            read_states: Part::new(state, |s| &s.read_states),
            muted: Part::new(state, |s| &s.muted),
            new_since: Part::new(state, |s| &s.new_since),
            typing: Part::new(state, |s| &s.typing),
            notifications_offer: RwSignal::new(false),
            errors: Part::new(state, |s| &s.errors),
            editing: RwSignal::new(None),
            confirm_delete: RwSignal::new(None),
            replying: RwSignal::new(HashMap::new()),
            jump: RwSignal::new(None),
            state,
            socket: StoredValue::new_local(socket.clone()),
            unsaved: StoredValue::new_local(HashSet::new()),
            unreported: StoredValue::new_local(HashMap::new()),
        };
        // What waits to be saved is saved before the page goes away (or to the
        // background on a phone, where it may never come back).
        window_event_listener(leptos::ev::pagehide, move |_| chat.save_histories());
        window_event_listener(leptos::ev::visibilitychange, move |_| {
            chat.save_histories();
            chat.change_and_perform(|s| s.set_page_hidden(crate::notify::page_hidden()));
        });
        chat.change(|s| s.set_page_hidden(crate::notify::page_hidden()));
        crate::notify::title_follows_unread(chat);
        socket.set_listener(Rc::new(chat));
        if let Some(profile) = cache::load_profile() {
            // A guest: show the last session at once; the server confirms or corrects it.
            chat.restore(profile);
        }
        // A session cookie (invisible to this code) makes the connection an account's;
        // ask who that is, and connect as them if no guest identity is waiting.
        leptos::task::spawn_local(async move {
            if let Some(account) = crate::account::current_session().await {
                chat.signed_in(account);
            }
        });
        chat
    }

    /// What `user` is called now: a rename shows at once on everything they wrote.
    /// (Someone not seen since the page loaded keeps the name they had.)
    pub fn name_of(&self, user: &UserSummary) -> String {
        self.names
            .with(|names| names.get(&user.id).cloned())
            .unwrap_or_else(|| user.name.clone())
    }

    /// The connection.
    pub(crate) fn socket(&self) -> Socket {
        self.socket.get_value()
    }

    /// Looks at the whole state without subscribing (for actions, not views).
    pub(crate) fn with_state_untracked<R>(&self, f: impl FnOnce(&ChatState) -> R) -> R {
        self.state.with_untracked(f)
    }

    /// Changes the state (outside any view: nothing is subscribed by this).
    pub(crate) fn change<R: Default>(&self, f: impl FnOnce(&mut ChatState) -> R) -> R {
        self.state.try_update(f).unwrap_or_default()
    }

    /// Changes the state, then carries out what the change calls for.
    pub(crate) fn change_and_perform(&self, f: impl FnOnce(&mut ChatState) -> Vec<Effect>) {
        let effects = self.change(f);
        self.perform(effects);
    }

    /// Carries out effects, in order.
    fn perform(&self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send(msg) => {
                    self.socket().send(msg, None);
                }
                Effect::SendTagged { request, client_id } => {
                    self.socket().send_tagged(request, client_id);
                }
                Effect::ResendPending => self.resend_pending(),
                Effect::PaceAfter { ms } => {
                    let chat = *self;
                    set_timeout(
                        move || chat.change_and_perform(ChatState::pace),
                        Duration::from_millis(ms),
                    );
                }
                Effect::SayHello => self.socket().say_hello(),
                Effect::SetHelloName(name) => self.socket().set_name(name),
                Effect::SessionReady => self.socket().session_ready(),
                Effect::SaveProfile => self.save_profile(),
                Effect::SaveHistory { user, room } => self.save_history_soon(user, room),
                Effect::ForgetRoom { user, room } => cache::forget_room(&user, room),
                Effect::ForgetUser(user) => cache::forget_user(&user),
                Effect::SaveCredentials(credentials) => cache::save_credentials(&credentials),
                Effect::ForgetCredentials => cache::forget_credentials(),
                Effect::ReportRead { room, seq } => self.report_read_soon(room, seq),
                Effect::ExpireTyping {
                    room,
                    user,
                    generation,
                    after_ms,
                } => {
                    let chat = *self;
                    set_timeout(
                        move || chat.change(|s| s.typing_expired(room, &user, generation)),
                        Duration::from_millis(after_ms),
                    );
                }
                Effect::Notify { room, title, body } => {
                    crate::notify::attention(*self, room, &title, &body)
                }
            }
        }
    }

    /// Marks a room's cache for saving, at most once per [`SAVE_EVERY`]: a busy room
    /// would otherwise rewrite its 200 cached messages for every message that arrives.
    fn save_history_soon(&self, user: UserId, room: RoomId) {
        let first = self.unsaved.try_update_value(|unsaved| {
            let first = unsaved.is_empty();
            unsaved.insert((user, room));
            first
        });
        if first == Some(true) {
            let chat = *self;
            set_timeout(move || chat.save_histories(), SAVE_EVERY);
        }
    }

    /// Writes every history marked for saving (also when the page is hidden or left).
    pub(crate) fn save_histories(&self) {
        let unsaved = self
            .unsaved
            .try_update_value(std::mem::take)
            .unwrap_or_default();
        self.state.with_untracked(|s| {
            for (user, room) in unsaved {
                if let Some(held) = s.history.get(&room) {
                    cache::save_history(&user, room, &held.messages);
                }
            }
        });
    }

    fn resend_pending(&self) {
        let pending = self.pending.get_untracked();
        let changes = self.with_state_untracked(|s| s.pending_changes.to_vec());
        self.socket().resend(&pending, &changes);
    }

    /// Keeps the profile of whoever is here for the next visit.
    fn save_profile(&self) {
        let profile = self.state.with_untracked(|s| {
            let me = s.me.as_ref()?.clone();
            Some(Profile {
                me,
                rooms: s.rooms.to_vec(),
                read: s.read.iter().map(|(room, seq)| (*room, *seq)).collect(),
                muted: s.muted.to_vec(),
                current: *s.current,
                popups: s
                    .popups
                    .iter()
                    .map(|p| StoredPopup {
                        room: p.room,
                        minimized: p.minimized,
                    })
                    .collect(),
            })
        });
        if let Some(profile) = profile {
            cache::save_profile(&profile);
        }
    }

    /// Puts a cached profile on screen and connects as its owner.
    fn restore(&self, profile: Profile) {
        let history = profile
            .rooms
            .iter()
            .map(|room| (room.id, cache::load_history(&profile.me.id, room.id)))
            .collect();
        let name = profile.me.name.clone();
        let visit = CachedVisit {
            me: profile.me,
            rooms: profile.rooms,
            read: profile.read.into_iter().collect(),
            muted: profile.muted,
            current: profile.current,
            popups: profile
                .popups
                .into_iter()
                .map(|p| Popup {
                    room: p.room,
                    minimized: p.minimized,
                })
                .collect(),
            history,
        };
        self.change(|s| s.restore(visit));
        self.start(name);
    }

    /// Connects (or says hello again on the open socket) as `name`.
    pub fn start(&self, name: String) {
        self.change(|s| s.set_error(form::HELLO, None));
        self.socket().start(name);
    }

    /// The browser is signed in to `account` (just now, or by a cookie from before):
    /// show its cached profile and (re)connect, so the upgrade carries the cookie.
    pub fn signed_in(&self, account: Account) {
        let same = self
            .me
            .with_untracked(|me| me.as_ref().is_some_and(|m| m.id == account.user_id));
        self.account.set(Some(account.clone()));
        self.change(|s| s.set_error(form::ACCOUNT, None));
        if same && self.status.get_untracked() == Status::Online {
            return;
        }
        self.socket().close();
        match cache::load_profile_of(&account.user_id) {
            Some(profile) => self.restore(profile),
            None => self.start(account.name),
        }
    }

    /// Forgets who is using this browser and everything kept for them.
    pub(crate) fn forget_me(&self) {
        self.socket().stop();
        self.account.set(None);
        if let Some(me) = self.me.get_untracked() {
            cache::forget_user(&me.id);
        }
        cache::forget_credentials();
        self.change(ChatState::forget);
    }

    /// The inline error of a form, if any (reactive).
    pub fn error(&self, form: &'static str) -> Option<String> {
        self.errors.with(|errors| errors.get(form).cloned())
    }

    /// How a room is called on my screen (reactive).
    pub fn room_title(&self, room: RoomId) -> String {
        self.me.track();
        self.rooms.track();
        self.state.with_untracked(|s| s.room_title(room))
    }

    /// The channel browser's list for `filter` (reactive; see
    /// [`ChatState::channel_directory`]).
    pub fn channel_directory(&self, filter: &str) -> Vec<DirectoryEntry> {
        self.channels.track();
        self.member_counts.track();
        self.rooms.track();
        self.state.with_untracked(|s| s.channel_directory(filter))
    }

    /// Ids of my rooms: direct-message rooms or the others (reactive).
    pub fn room_ids(&self, direct: bool) -> Vec<RoomId> {
        self.rooms.track();
        self.state.with_untracked(|s| s.room_ids(direct))
    }
}

impl Listener for Chat {
    fn introduction(&self) -> Introduction {
        // Signed in, the cookie says who we are; otherwise the guest identity does.
        let account = self.account.get_untracked().map(|a| a.user_id);
        let credentials = match account {
            Some(_) => None,
            None => cache::load_credentials(),
        };
        let identity = account.or_else(|| credentials.as_ref().map(|c| c.user_id.clone()));
        // Resume only rooms cached for the identity we present.
        let resume = self
            .state
            .with_untracked(|s| s.resume_positions(identity.as_ref()));
        Introduction {
            credentials,
            resume,
        }
    }

    fn receive(&self, msg: ServerMsg) {
        self.change_and_perform(|s| s.apply(msg));
    }

    fn session_ended(&self) {
        // Signed out (here or in another tab), or a password reset; or another tab
        // signed in again, which replaced the cookie: then carry on with that session.
        let chat = *self;
        leptos::task::spawn_local(async move {
            match crate::account::current_session().await {
                Some(account) => chat.signed_in(account),
                None => {
                    chat.forget_me();
                    chat.change(|s| {
                        s.set_error(form::ACCOUNT, Some("You were signed out.".into()))
                    });
                }
            }
        });
    }
}
