//! The reducer, natively: at least one test per [`ServerMsg`] variant (in the order of
//! the enum, each section headed by the variant), then the person's own transitions.
//! Each asserts what the state becomes and the exact effects asked for, in order.
//!
//! The file is long because every test builds its own small world from the helpers at
//! the top and reads on its own; splitting it by variant would only scatter them.

use std::collections::HashMap;

use natter_protocol::{
    Change, ChannelInfo, ChatMessage, ClientMsg, ErrorCode, GuestCredentials, Mention, MessageKind,
    ReadState, ResumePosition, RoomId, RoomInfo, RoomKind, Seq, ServerMsg, UserId, UserSummary,
};

use super::{form, CachedVisit, ChatState, Effect, Pending, Popup};
use crate::logic;

const GENERAL: RoomId = RoomId(3);
const RUST: RoomId = RoomId(5);
const DIRECT: RoomId = RoomId(9);

fn user(id: &str, name: &str) -> UserSummary {
    UserSummary {
        id: UserId(id.into()),
        name: name.into(),
    }
}

/// Whose browser this is, in every test.
fn ann() -> UserSummary {
    user("ann-id", "Ann")
}

fn bob() -> UserSummary {
    user("bob-id", "Bob")
}

/// A room read up to `latest_seq` on some device: nothing unread.
fn read_all(latest_seq: Seq) -> ReadState {
    ReadState {
        seq: latest_seq,
        unread: 0,
        mentions: 0,
        through: latest_seq,
    }
}

fn channel(id: RoomId, name: &str, latest_seq: Seq) -> RoomInfo {
    RoomInfo {
        id,
        kind: RoomKind::Channel { name: name.into() },
        delete_when_empty: false,
        latest_seq,
        read: read_all(latest_seq),
    }
}

fn direct_with_bob(latest_seq: Seq) -> RoomInfo {
    RoomInfo {
        id: DIRECT,
        kind: RoomKind::Direct {
            members: [ann(), bob()],
        },
        delete_when_empty: false,
        latest_seq,
        read: read_all(latest_seq),
    }
}

fn message(room: RoomId, seq: Seq, sender: UserSummary) -> ChatMessage {
    ChatMessage::new(
        room,
        seq,
        sender,
        1_000 + seq as i64,
        MessageKind::Text,
        format!("m{seq}"),
    )
}

fn messages(room: RoomId, seqs: std::ops::RangeInclusive<Seq>) -> Vec<ChatMessage> {
    seqs.map(|seq| message(room, seq, bob())).collect()
}

fn seqs(state: &ChatState, room: RoomId) -> Vec<Seq> {
    state
        .history
        .get(&room)
        .map(|h| h.messages.iter().map(|m| m.seq).collect())
        .unwrap_or_default()
}

/// Ann, online after `ready` with these rooms (effects of getting there dropped).
fn ready_with(rooms: Vec<RoomInfo>) -> ChatState {
    let mut state = ChatState::default();
    state.apply(ServerMsg::Ready {
        me: ann(),
        credentials: None,
        rooms,
        blocked: vec![],
    });
    state
}

/// A catch-up `history` (as after `ready` or `joined`): the room is held through its
/// last message.
fn history_of(state: &mut ChatState, room: RoomId, held: Vec<ChatMessage>, more_before: bool) {
    let through = held.last().map_or(0, |m| m.seq);
    state.apply(ServerMsg::History {
        room,
        messages: held,
        more_before,
        through: Some(through),
        changed: vec![],
    });
}

fn save_history(room: RoomId) -> Effect {
    Effect::SaveHistory {
        user: ann().id,
        room,
    }
}

// ---- ServerMsg::Ready ----

#[test]
fn ready_for_a_new_guest_keeps_its_credentials_and_joins_general() {
    let credentials = GuestCredentials {
        user_id: ann().id,
        secret: "s3cret".into(),
    };
    let mut state = ChatState::default();
    let effects = state.apply(ServerMsg::Ready {
        me: ann(),
        credentials: Some(credentials.clone()),
        rooms: vec![],
        blocked: vec![],
    });
    assert_eq!(*state.me, Some(ann()));
    assert_eq!(*state.current, None);
    assert_eq!(
        effects,
        [
            Effect::SaveCredentials(credentials),
            Effect::Send(ClientMsg::JoinChannel {
                name: "general".into()
            }),
            Effect::SessionReady,
            Effect::SaveProfile,
            Effect::ResendPending,
        ]
    );
}

#[test]
fn ready_shows_the_first_room_starts_new_rooms_read_and_waits_for_the_snapshot() {
    let mut state = ChatState::default();
    state.apply(ServerMsg::Presence {
        online: vec![bob()],
        offline: vec![],
    });
    state.apply(ServerMsg::ChannelAdded {
        channel: ChannelInfo {
            id: RUST,
            name: "rust".into(),
        },
    });
    let effects = state.apply(ServerMsg::Ready {
        me: ann(),
        credentials: None,
        rooms: vec![direct_with_bob(2), channel(GENERAL, "general", 7)],
        blocked: vec![],
    });
    assert_eq!(*state.current, Some(GENERAL), "the first room not a popup");
    assert_eq!(*state.read, HashMap::from([(GENERAL, 7), (DIRECT, 2)]));
    assert_eq!(state.unread(GENERAL), 0, "no flood of old unread");
    assert!(
        state.people.iter().all(|p| !p.online),
        "online again by presence"
    );
    assert!(state.channels.is_empty(), "listed again by the snapshot");
    assert_eq!(
        effects,
        [
            Effect::SessionReady,
            Effect::SaveProfile,
            Effect::ResendPending
        ],
        "a member of general asks to join nothing"
    );
}

#[test]
fn ready_keeps_what_is_still_mine_and_drops_rooms_left_elsewhere() {
    let mut state = ChatState::default();
    state.restore(CachedVisit {
        muted: Vec::new(),
        me: ann(),
        rooms: vec![
            channel(GENERAL, "general", 2),
            channel(RUST, "rust", 1),
            direct_with_bob(0),
        ],
        read: HashMap::from([(GENERAL, 2), (RUST, 1)]),
        current: Some(RUST),
        popups: vec![
            Popup {
                room: DIRECT,
                minimized: false,
            },
            Popup {
                room: RoomId(10),
                minimized: true,
            },
        ],
        history: HashMap::from([
            (GENERAL, messages(GENERAL, 1..=2)),
            (RUST, messages(RUST, 1..=1)),
        ]),
    });
    state.apply(ServerMsg::Ready {
        me: ann(),
        credentials: None,
        // The server has no read position for #general (this browser read it alone).
        rooms: vec![
            RoomInfo {
                read: ReadState::default(),
                ..channel(GENERAL, "general", 5)
            },
            direct_with_bob(0),
        ],
        blocked: vec![],
    });
    assert_eq!(seqs(&state, GENERAL), [1, 2]);
    assert!(!state.history.contains_key(&RUST), "left elsewhere");
    assert_eq!(
        *state.popups,
        [Popup {
            room: DIRECT,
            minimized: false
        }]
    );
    assert_eq!(*state.current, Some(GENERAL), "#rust is gone");
    assert_eq!(
        state.read.get(&GENERAL),
        Some(&2),
        "what was read stays read"
    );
    // Unread counts the messages held: the catch-up that follows `ready` brings 3–5.
    state.view(RUST);
    history_of(&mut state, GENERAL, messages(GENERAL, 3..=5), false);
    assert_eq!(state.unread(GENERAL), 3);
    state.view(GENERAL);

    // Still a member of the room on screen: it stays on screen.
    state.apply(ServerMsg::Ready {
        me: ann(),
        credentials: None,
        rooms: vec![channel(RUST, "rust", 1), channel(GENERAL, "general", 5)],
        blocked: vec![],
    });
    assert_eq!(*state.current, Some(GENERAL));
}

#[test]
fn ready_as_someone_else_drops_what_the_cache_showed() {
    let mut state = ChatState::default();
    state.restore(CachedVisit {
        muted: Vec::new(),
        me: ann(),
        rooms: vec![channel(GENERAL, "general", 2), direct_with_bob(1)],
        read: HashMap::from([(GENERAL, 1)]),
        current: Some(GENERAL),
        popups: vec![Popup {
            room: DIRECT,
            minimized: false,
        }],
        history: HashMap::from([(GENERAL, messages(GENERAL, 1..=2))]),
    });
    state.apply(ServerMsg::Ready {
        me: bob(),
        credentials: None,
        rooms: vec![channel(GENERAL, "general", 2), direct_with_bob(1)],
        blocked: vec![],
    });
    assert_eq!(*state.me, Some(bob()));
    assert!(state.history.is_empty());
    assert!(state.popups.is_empty());
    assert_eq!(*state.read, HashMap::from([(GENERAL, 2), (DIRECT, 1)]));
    assert_eq!(*state.current, Some(GENERAL), "chosen afresh");
}

// ---- ServerMsg::Channels ----

#[test]
fn channels_frames_add_up_without_duplicates() {
    let mut state = ready_with(vec![]);
    let rust = ChannelInfo {
        id: RUST,
        name: "rust".into(),
    };
    let general = ChannelInfo {
        id: GENERAL,
        name: "general".into(),
    };
    let effects = state.apply(ServerMsg::Channels {
        channels: vec![general.clone()],
    });
    state.apply(ServerMsg::Channels {
        channels: vec![rust.clone(), general.clone()],
    });
    assert_eq!(*state.channels, [general, rust]);
    assert!(effects.is_empty());
}

// ---- ServerMsg::Presence ----

#[test]
fn presence_brings_people_online_renames_them_and_takes_them_offline() {
    let mut state = ready_with(vec![]);
    let effects = state.apply(ServerMsg::Presence {
        online: vec![bob()],
        offline: vec![],
    });
    assert!(effects.is_empty(), "others' presence is not saved");
    assert_eq!(state.people.len(), 1);
    assert!(state.people[0].online);

    state.apply(ServerMsg::Presence {
        online: vec![],
        offline: vec![bob().id, UserId("never-seen".into())],
    });
    assert_eq!(state.people.len(), 1, "unknown ids are not added");
    assert!(!state.people[0].online);

    state.apply(ServerMsg::Presence {
        online: vec![user("bob-id", "Robert")],
        offline: vec![],
    });
    assert_eq!(state.people.len(), 1, "one entry per id");
    assert_eq!(state.people[0].user.name, "Robert");
    assert!(state.people[0].online);
}

#[test]
fn a_rename_retitles_our_direct_room_at_once() {
    let mut state = ready_with(vec![direct_with_bob(0)]);
    assert_eq!(state.room_title(DIRECT), "Bob");
    let effects = state.apply(ServerMsg::Presence {
        online: vec![user("bob-id", "Robert")],
        offline: vec![],
    });
    assert_eq!(state.room_title(DIRECT), "Robert");
    assert_eq!(effects, [Effect::SaveProfile], "kept for the next visit");
}

#[test]
fn presence_of_myself_renames_me_and_clears_the_rename_error() {
    let mut state = ready_with(vec![]);
    state.apply(ServerMsg::error(
        ErrorCode::NameTaken,
        "Someone is already called that.",
        Some(form::RENAME.into()),
    ));
    assert!(state.errors.contains_key(form::RENAME));
    let effects = state.apply(ServerMsg::Presence {
        online: vec![user("ann-id", "Annie"), bob()],
        offline: vec![],
    });
    assert_eq!(*state.me, Some(user("ann-id", "Annie")));
    assert!(!state.errors.contains_key(form::RENAME));
    assert_eq!(
        effects,
        [Effect::SetHelloName("Annie".into()), Effect::SaveProfile],
        "reconnects say hello under the new name"
    );
    assert_eq!(state.people.len(), 2, "I am in the list too");
}

// ---- ServerMsg::ChannelDirectory ----

#[test]
fn the_channel_browser_lists_busiest_first_marks_mine_and_filters() {
    // I am in #general only; #rust and #random exist.
    let mut state = ready_with(vec![channel(GENERAL, "general", 0)]);
    let info = |id, name: &str| ChannelInfo {
        id,
        name: name.into(),
    };
    const RANDOM: RoomId = RoomId(7);
    state.apply(ServerMsg::Channels {
        channels: vec![
            info(GENERAL, "general"),
            info(RUST, "rust"),
            info(RANDOM, "Random"),
        ],
    });
    // Not counted yet: alphabetical, counts unknown.
    let names = |state: &ChatState, filter: &str| {
        state
            .channel_directory(filter)
            .into_iter()
            .map(|e| (e.channel.name, e.members, e.joined))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&state, ""),
        [
            ("general".to_string(), None, true),
            ("Random".to_string(), None, false),
            ("rust".to_string(), None, false)
        ]
    );
    // The answer comes in frames; each adds its counts.
    let listing = |id, name: &str, members| natter_protocol::ChannelListing {
        id,
        name: name.into(),
        members,
    };
    let effects = state.apply(ServerMsg::ChannelDirectory {
        channels: vec![listing(RUST, "rust", 40)],
        complete: false,
    });
    assert!(effects.is_empty());
    state.apply(ServerMsg::ChannelDirectory {
        channels: vec![
            listing(GENERAL, "general", 12),
            listing(RANDOM, "Random", 12),
        ],
        complete: true,
    });
    assert_eq!(
        names(&state, ""),
        [
            ("rust".to_string(), Some(40), false),
            ("general".to_string(), Some(12), true),
            ("Random".to_string(), Some(12), false)
        ]
    );
    // A filter matches any part of the name, any case, with or without '#'.
    assert_eq!(names(&state, " #R")[0].0, "rust");
    assert_eq!(names(&state, "AND").len(), 1);
    assert!(names(&state, "zzz").is_empty());
}

// ---- ServerMsg::ChannelAdded ----

#[test]
fn a_channel_added_is_listed_once() {
    let mut state = ready_with(vec![]);
    let rust = ChannelInfo {
        id: RUST,
        name: "rust".into(),
    };
    for _ in 0..2 {
        let effects = state.apply(ServerMsg::ChannelAdded {
            channel: rust.clone(),
        });
        assert!(effects.is_empty());
    }
    assert_eq!(*state.channels, [rust]);
}

// ---- ServerMsg::ChannelRemoved ----

#[test]
fn a_channel_removed_leaves_the_list() {
    let mut state = ready_with(vec![]);
    state.apply(ServerMsg::Channels {
        channels: vec![
            ChannelInfo {
                id: GENERAL,
                name: "general".into(),
            },
            ChannelInfo {
                id: RUST,
                name: "rust".into(),
            },
        ],
    });
    let effects = state.apply(ServerMsg::ChannelRemoved { room: RUST });
    assert_eq!(
        state.channels.iter().map(|c| c.id).collect::<Vec<_>>(),
        [GENERAL]
    );
    assert!(effects.is_empty());
}

// ---- ServerMsg::Joined ----

#[test]
fn joining_a_channel_myself_shows_it_and_clears_the_forms_errors() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 0)]);
    state.toggle_drawer();
    state.set_error(form::CHANNEL, Some("taken".into()));
    state.set_error(form::CODE, Some("no such room".into()));
    let effects = state.apply(ServerMsg::Joined {
        room: channel(RUST, "rust", 4),
        by: ann().id,
    });
    assert_eq!(state.room_ids(false), [GENERAL, RUST]);
    assert_eq!(*state.current, Some(RUST));
    assert!(!*state.drawer_open, "viewing a room closes the drawer");
    assert!(state.errors.is_empty());
    assert_eq!(state.read.get(&RUST), Some(&4), "joined read");
    assert_eq!(effects, [Effect::SaveProfile]);
}

#[test]
fn a_direct_room_opened_by_the_other_person_pops_up_and_stays_out_of_the_main_pane() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 0)]);
    let effects = state.apply(ServerMsg::Joined {
        room: direct_with_bob(3),
        by: bob().id,
    });
    assert_eq!(
        *state.popups,
        [Popup {
            room: DIRECT,
            minimized: false
        }]
    );
    assert_eq!(*state.current, Some(GENERAL));
    assert_eq!(state.room_ids(true), [DIRECT]);
    assert_eq!(state.room_title(DIRECT), "Bob");
    assert_eq!(effects, [Effect::SaveProfile]);
}

#[test]
fn joined_again_replaces_the_rooms_info_instead_of_adding_it() {
    let mut state = ready_with(vec![channel(RUST, "rust", 2)]);
    state.apply(ServerMsg::Joined {
        room: channel(RUST, "rust", 9),
        by: ann().id,
    });
    assert_eq!(state.rooms.len(), 1);
    assert_eq!(state.rooms[0].latest_seq, 9);
    assert_eq!(
        state.unread(RUST),
        0,
        "on screen, so read up to the new latest"
    );
}

// ---- ServerMsg::Left ----

#[test]
fn leaving_the_room_on_screen_moves_to_the_next_and_forgets_its_cache() {
    let mut state = ready_with(vec![direct_with_bob(0), channel(RUST, "rust", 0)]);
    state.apply(ServerMsg::Joined {
        room: channel(GENERAL, "general", 0),
        by: ann().id,
    });
    history_of(&mut state, GENERAL, messages(GENERAL, 1..=3), false);
    assert_eq!(*state.current, Some(GENERAL));
    let effects = state.apply(ServerMsg::Left { room: GENERAL });
    assert_eq!(state.room_ids(false), [RUST]);
    assert!(!state.history.contains_key(&GENERAL));
    assert_eq!(
        *state.current,
        Some(RUST),
        "the next room that is not a popup"
    );
    assert_eq!(
        effects,
        [
            Effect::ForgetRoom {
                user: ann().id,
                room: GENERAL
            },
            Effect::SaveProfile
        ]
    );
}

#[test]
fn leaving_a_room_not_on_screen_keeps_the_one_on_screen() {
    let mut state = ready_with(vec![
        channel(GENERAL, "general", 0),
        channel(RUST, "rust", 0),
    ]);
    state.apply(ServerMsg::Left { room: RUST });
    assert_eq!(*state.current, Some(GENERAL));
    state.apply(ServerMsg::Left { room: GENERAL });
    assert_eq!(*state.current, None, "nothing left to show");
}

// ---- ServerMsg::History ----

#[test]
fn history_fills_a_room_says_whether_older_exist_and_is_read_on_screen() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 100)]);
    let effects = state.apply(ServerMsg::History {
        room: GENERAL,
        messages: messages(GENERAL, 51..=150),
        more_before: true,
        through: None,
        changed: vec![],
    });
    assert_eq!(seqs(&state, GENERAL), (51..=150).collect::<Vec<_>>());
    assert!(state.history[&GENERAL].more_before);
    assert_eq!(state.read.get(&GENERAL), Some(&150), "on screen, so read");
    assert_eq!(
        effects,
        [
            Effect::SaveProfile,
            Effect::ReportRead {
                room: GENERAL,
                seq: 150
            },
            save_history(GENERAL)
        ]
    );
}

#[test]
fn history_of_a_room_not_on_screen_is_kept_and_stays_unread() {
    let mut state = ready_with(vec![
        channel(GENERAL, "general", 0),
        channel(RUST, "rust", 0),
    ]);
    let effects = state.apply(ServerMsg::History {
        room: RUST,
        messages: messages(RUST, 1..=4),
        more_before: false,
        through: None,
        changed: vec![],
    });
    assert_eq!(state.unread(RUST), 4);
    assert_eq!(effects, [save_history(RUST)]);
}

#[test]
fn an_older_page_is_merged_in_front_and_ends_the_wait() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 200)]);
    history_of(&mut state, GENERAL, messages(GENERAL, 101..=200), true);
    assert_eq!(
        state.older_page(GENERAL),
        Some(ClientMsg::History {
            room: GENERAL,
            before: 101,
            limit: 100
        })
    );
    state.older_page_requested(GENERAL);
    assert!(state.history[&GENERAL].loading_older);
    assert_eq!(state.older_page(GENERAL), None, "one page at a time");

    history_of(&mut state, GENERAL, messages(GENERAL, 1..=100), false);
    assert_eq!(seqs(&state, GENERAL), (1..=200).collect::<Vec<_>>());
    assert!(
        !state.history[&GENERAL].more_before,
        "the beginning of the room"
    );
    assert!(!state.history[&GENERAL].loading_older);
    assert_eq!(state.older_page(GENERAL), None);
}

#[test]
fn a_catch_up_batch_after_what_is_held_does_not_decide_more_before() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 20)]);
    history_of(&mut state, GENERAL, messages(GENERAL, 5..=10), true);
    // Seqs 11 and 12 were changes: the catch-up from 10 left nothing out.
    history_of(&mut state, GENERAL, messages(GENERAL, 13..=20), false);
    assert_eq!(seqs(&state, GENERAL).len(), 14);
    assert!(
        state.history[&GENERAL].more_before,
        "what lies before 5 is unchanged"
    );
    assert_eq!(state.history[&GENERAL].through, 20);
}

#[test]
fn a_catch_up_batch_that_cannot_reach_the_cache_replaces_it() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 260)]);
    history_of(&mut state, GENERAL, messages(GENERAL, 1..=10), false);
    history_of(&mut state, GENERAL, messages(GENERAL, 161..=260), true);
    assert_eq!(seqs(&state, GENERAL), (161..=260).collect::<Vec<_>>());
    assert!(state.history[&GENERAL].more_before, "older ones page back");
}

#[test]
fn an_empty_history_batch_says_more_before_only_when_something_is_held() {
    let mut state = ready_with(vec![
        channel(GENERAL, "general", 0),
        channel(RUST, "rust", 10),
    ]);
    history_of(&mut state, GENERAL, vec![], true);
    assert!(!state.history[&GENERAL].more_before);

    history_of(&mut state, RUST, messages(RUST, 5..=10), true);
    state.older_page_requested(RUST);
    // An (empty) page of older messages: not a catch-up, so nothing held is dropped.
    state.apply(ServerMsg::History {
        room: RUST,
        messages: vec![],
        more_before: true,
        through: None,
        changed: vec![],
    });
    assert!(state.history[&RUST].more_before);
    assert!(!state.history[&RUST].loading_older, "the wait is over");
    assert_eq!(seqs(&state, RUST).len(), 6);

    // A catch-up that says too much changed to list, with nothing new: the held
    // copies are stale, so they go (the room is paged in afresh).
    history_of(&mut state, RUST, vec![], true);
    assert!(seqs(&state, RUST).is_empty());
}

// ---- ServerMsg::Message ----

#[test]
fn a_message_in_the_room_on_screen_is_read_and_kept() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 0)]);
    let effects = state.apply(ServerMsg::Message {
        message: message(GENERAL, 1, bob()),
    });
    assert_eq!(seqs(&state, GENERAL), [1]);
    assert_eq!(state.rooms[0].latest_seq, 1);
    assert_eq!(state.unread(GENERAL), 0);
    assert_eq!(
        effects,
        [
            Effect::SaveProfile,
            Effect::ReportRead {
                room: GENERAL,
                seq: 1
            },
            save_history(GENERAL)
        ]
    );
}

#[test]
fn a_message_elsewhere_counts_as_unread_and_a_repeat_is_held_once() {
    let mut state = ready_with(vec![
        channel(GENERAL, "general", 0),
        channel(RUST, "rust", 0),
    ]);
    for _ in 0..2 {
        let effects = state.apply(ServerMsg::Message {
            message: message(RUST, 1, bob()),
        });
        assert_eq!(effects, [save_history(RUST)]);
    }
    assert_eq!(seqs(&state, RUST), [1]);
    assert_eq!(state.unread(RUST), 1);
}

#[test]
fn a_message_after_a_gap_asks_for_exactly_what_is_missing() {
    let mut state = ready_with(vec![
        channel(RUST, "rust", 10),
        channel(GENERAL, "general", 0),
    ]);
    state.view(GENERAL);
    history_of(&mut state, RUST, messages(RUST, 1..=10), false);
    let effects = state.apply(ServerMsg::Message {
        message: message(RUST, 15, bob()),
    });
    assert_eq!(
        effects,
        [Effect::Send(ClientMsg::CatchUp {
            room: RUST,
            after: 10
        })]
    );
    // Asked once: later events wait for the answer (nothing is held past the hole, so
    // a reload cannot resume beyond it); the answer moves `through` on.
    let effects = state.apply(ServerMsg::Message {
        message: message(RUST, 16, bob()),
    });
    assert!(effects.is_empty());
    assert_eq!(seqs(&state, RUST), (1..=10).collect::<Vec<_>>());
    assert_eq!(state.history[&RUST].through, 10);
    history_of(&mut state, RUST, messages(RUST, 11..=16), false);
    assert_eq!(state.history[&RUST].through, 16);
    assert!(!state.history[&RUST].catching_up);
    // A change right after is the next event: no gap.
    let effects = state.apply(ServerMsg::Changed {
        room: RUST,
        seq: 17,
        ts: 5,
        by: bob(),
        target: 16,
        change: Change::React {
            emoji: "👍".into()
        },
    });
    assert_eq!(effects, [save_history(RUST)]);
    assert_eq!(state.history[&RUST].through, 17);
}

#[test]
fn a_message_in_a_closed_direct_room_brings_its_popup_back() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 0), direct_with_bob(0)]);
    assert!(state.popups.is_empty());
    let effects = state.apply(ServerMsg::Message {
        message: message(DIRECT, 1, bob()),
    });
    assert_eq!(
        *state.popups,
        [Popup {
            room: DIRECT,
            minimized: false
        }]
    );
    assert_eq!(state.unread(DIRECT), 0, "an open popup is on screen");
    assert_eq!(
        effects,
        [
            Effect::Notify {
                room: DIRECT,
                title: "Bob".into(),
                body: "m1".into()
            },
            Effect::SaveProfile,
            Effect::ReportRead {
                room: DIRECT,
                seq: 1
            },
            save_history(DIRECT)
        ]
    );
}

#[test]
fn a_message_from_someone_blocked_is_not_unread_and_opens_no_popup() {
    let mut state = ChatState::default();
    state.apply(ServerMsg::Ready {
        me: ann(),
        credentials: None,
        rooms: vec![
            channel(GENERAL, "general", 7),
            channel(RUST, "rust", 2),
            direct_with_bob(0),
        ],
        blocked: vec![bob()],
    });
    state.view(RUST);
    state.apply(ServerMsg::Message {
        message: message(GENERAL, 8, bob()),
    });
    assert_eq!(state.unread(GENERAL), 0, "nothing to read: it is not shown");
    state.apply(ServerMsg::Message {
        message: message(DIRECT, 1, bob()),
    });
    assert!(state.popups.is_empty(), "no popup for someone blocked");
    // Someone else's message still counts, and then Bob's count as they come.
    state.apply(ServerMsg::Message {
        message: message(GENERAL, 9, user("cy-id", "Cy")),
    });
    state.apply(ServerMsg::Message {
        message: message(GENERAL, 10, bob()),
    });
    assert_eq!(
        state.unread(GENERAL),
        1,
        "Cy's message counts, Bob's never does"
    );
}

#[test]
fn join_and_leave_notices_are_not_unread() {
    let mut state = ready_with(vec![
        channel(GENERAL, "general", 7),
        channel(RUST, "rust", 2),
    ]);
    state.view(RUST);
    for (seq, kind) in [(8, MessageKind::Join), (9, MessageKind::Leave)] {
        state.apply(ServerMsg::Message {
            message: ChatMessage {
                kind,
                text: String::new(),
                ..message(GENERAL, seq, bob())
            },
        });
    }
    assert_eq!(state.unread(GENERAL), 0);
    state.apply(ServerMsg::Message {
        message: message(GENERAL, 10, bob()),
    });
    assert_eq!(state.unread(GENERAL), 1, "a text is");
}

// ---- ServerMsg::Ack ----

#[test]
fn an_ack_turns_the_pending_send_into_my_message() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 7)]);
    let effects = state.post(Pending {
        client_id: "c1".into(),
        room: GENERAL,
        text: "hi".into(),
        attachments: Vec::new(),
        reply_to: None,
    });
    assert_eq!(
        effects,
        [Effect::SendTagged {
            request: ClientMsg::Send {
                reply_to: None,
                room: GENERAL,
                client_id: "c1".into(),
                text: "hi".into(),
                attachments: Vec::new(),
            },
            client_id: "c1".into(),
        }]
    );
    assert_eq!(state.pending.len(), 1);

    let effects = state.apply(ServerMsg::Ack {
        client_id: "c1".into(),
        room: GENERAL,
        seq: 8,
        ts: 99,
        mentions: vec![],
    });
    assert!(state.pending.is_empty());
    assert_eq!(
        state.history[&GENERAL].messages,
        [ChatMessage::new(
            GENERAL,
            8,
            ann(),
            99,
            MessageKind::Text,
            "hi".into()
        )]
    );
    assert_eq!(state.unread(GENERAL), 0);
    assert_eq!(
        effects,
        [
            Effect::SaveProfile,
            Effect::ReportRead {
                room: GENERAL,
                seq: 8
            },
            save_history(GENERAL)
        ]
    );
}

#[test]
fn an_ack_for_a_send_not_pending_changes_nothing() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 7)]);
    state.post(Pending {
        client_id: "c1".into(),
        room: GENERAL,
        text: "hi".into(),
        attachments: Vec::new(),
        reply_to: None,
    });
    let effects = state.apply(ServerMsg::Ack {
        client_id: "from-another-tab".into(),
        room: GENERAL,
        seq: 8,
        ts: 99,
        mentions: vec![],
    });
    assert!(effects.is_empty());
    assert_eq!(state.pending.len(), 1);
    assert!(!state.history.contains_key(&GENERAL));
}

// ---- ServerMsg::Blocked ----

#[test]
fn the_block_list_comes_with_ready_and_every_change_replaces_it() {
    let mut state = ChatState::default();
    state.apply(ServerMsg::Ready {
        me: ann(),
        credentials: None,
        rooms: vec![channel(GENERAL, "general", 0)],
        blocked: vec![bob()],
    });
    assert!(state.blocks(&bob().id));
    let effects = state.apply(ServerMsg::Blocked { users: vec![] });
    assert!(!state.blocks(&bob().id));
    assert_eq!(effects, []);
    // A direct room opened at the very moment of a block does not pop up.
    state.apply(ServerMsg::Blocked { users: vec![bob()] });
    state.apply(ServerMsg::Joined {
        room: direct_with_bob(0),
        by: bob().id,
    });
    assert!(state.popups.is_empty());
}

// ---- ServerMsg::Error ----

#[test]
fn an_error_is_shown_next_to_the_form_its_ref_names() {
    let cases = [
        (Some(form::RENAME), ErrorCode::NameTaken, form::RENAME),
        (Some(form::CHANNEL), ErrorCode::ChannelExists, form::CHANNEL),
        (Some(form::CODE), ErrorCode::NoSuchRoom, form::CODE),
        (
            Some(form::HELLO),
            ErrorCode::UnsupportedVersion,
            form::HELLO,
        ),
        (Some("not-a-form"), ErrorCode::Internal, form::GENERAL),
        (None, ErrorCode::NotMember, form::GENERAL),
    ];
    for (request_ref, code, shown_at) in cases {
        let mut state = ready_with(vec![]);
        let effects = state.apply(ServerMsg::error(code, "no", request_ref.map(String::from)));
        assert_eq!(
            *state.errors,
            HashMap::from([(shown_at, "no".to_string())]),
            "{request_ref:?}"
        );
        assert!(effects.is_empty());
        assert_eq!(*state.me, Some(ann()), "still me");
    }
}

#[test]
fn a_name_refused_at_hello_goes_back_to_the_name_prompt() {
    for code in [
        ErrorCode::NameTaken,
        ErrorCode::NameReserved,
        ErrorCode::InvalidName,
    ] {
        let mut state = ready_with(vec![]);
        state.apply(ServerMsg::error(
            code,
            "pick another",
            Some(form::HELLO.into()),
        ));
        assert_eq!(*state.me, None);
        assert_eq!(
            state.errors.get(form::HELLO).map(String::as_str),
            Some("pick another")
        );
    }
}

#[test]
fn unknown_credentials_forget_the_identity_and_say_hello_again() {
    let mut state = ready_with(vec![]);
    let effects = state.apply(ServerMsg::error(
        ErrorCode::BadCredentials,
        "unknown",
        Some(form::HELLO.into()),
    ));
    assert_eq!(
        effects,
        [
            Effect::ForgetUser(ann().id),
            Effect::ForgetCredentials,
            Effect::SayHello
        ]
    );
    assert!(state.errors.is_empty());
}

fn pending(n: usize) -> Pending {
    Pending {
        client_id: format!("c{n}"),
        room: GENERAL,
        text: format!("message {n}"),
        attachments: Vec::new(),
        reply_to: None,
    }
}

fn sent(n: usize) -> Effect {
    Effect::SendTagged {
        request: ClientMsg::Send {
            reply_to: None,
            room: GENERAL,
            client_id: format!("c{n}"),
            text: format!("message {n}"),
            attachments: Vec::new(),
        },
        client_id: format!("c{n}"),
    }
}

fn ack(state: &mut ChatState, n: usize, seq: Seq) {
    state.apply(ServerMsg::Ack {
        client_id: format!("c{n}"),
        room: GENERAL,
        seq,
        ts: 1,
        mentions: vec![],
    });
}

#[test]
fn a_rate_limit_paces_pending_sends_one_at_a_time_and_says_so() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 7)]);
    // Forty quick messages go out at once; the server refuses some of them.
    for n in 0..40 {
        assert_eq!(state.post(pending(n)), [sent(n)]);
    }
    let refusal = |ms| ServerMsg::Error {
        code: ErrorCode::RateLimited,
        message: "slow down".into(),
        request_ref: None,
        retry_after_ms: ms,
    };
    assert_eq!(
        state.apply(refusal(Some(2500))),
        [Effect::PaceAfter { ms: 2500 }]
    );
    assert_eq!(
        state.errors.get(form::GENERAL).map(String::as_str),
        Some("slow down")
    );
    // Every further refusal is the same burst: one pacer, not a resend each.
    for _ in 0..20 {
        assert_eq!(state.apply(refusal(Some(2500))), []);
    }
    // Meanwhile a new message waits its turn.
    assert_eq!(state.post(pending(40)), []);
    // The pacer sends the oldest pending message, one per step.
    for n in 0..5 {
        assert_eq!(
            state.pace(),
            [sent(n), Effect::PaceAfter { ms: logic::PACE_MS }]
        );
        ack(&mut state, n, 8 + n as Seq);
    }
    for n in 5..=40 {
        ack(&mut state, n, 8 + n as Seq);
    }
    // Nothing left: the pacer stops and sends go out at once again.
    assert_eq!(state.pace(), []);
    assert!(!state.throttled);
    assert_eq!(state.post(pending(41)), [sent(41)]);
    // Without a retry hint the server is given a second.
    assert_eq!(state.apply(refusal(None)), [Effect::PaceAfter { ms: 1000 }]);
}

#[test]
fn many_messages_waiting_for_a_reconnect_are_paced_not_sent_at_once() {
    let mut state = ChatState::default();
    for n in 0..logic::RESEND_AT_ONCE + 1 {
        state.post(pending(n));
    }
    let effects = state.apply(ServerMsg::Ready {
        me: ann(),
        credentials: None,
        rooms: vec![channel(GENERAL, "general", 7)],
        blocked: vec![],
    });
    assert!(
        effects.contains(&Effect::PaceAfter { ms: 0 }),
        "{effects:?}"
    );
    assert!(!effects.contains(&Effect::ResendPending));
    assert_eq!(
        state.pace(),
        [sent(0), Effect::PaceAfter { ms: logic::PACE_MS }]
    );
}

#[test]
fn live_messages_do_not_grow_a_rooms_memory_for_ever() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 0)]);
    let total = logic::HELD_PER_ROOM as Seq + 50;
    for seq in 1..=total {
        state.apply(ServerMsg::Message {
            message: message(GENERAL, seq, bob()),
        });
    }
    let held = &state.history[&GENERAL];
    assert_eq!(held.messages.len(), logic::HELD_PER_ROOM);
    assert_eq!(held.messages.last().map(|m| m.seq), Some(total));
    assert_eq!(held.messages.first().map(|m| m.seq), Some(51));
    assert!(held.more_before, "the dropped ones can be paged back");
}

#[test]
fn people_who_left_are_remembered_up_to_a_bound() {
    let mut state = ready_with(vec![]);
    let user = |n: usize| UserSummary {
        id: UserId(format!("p{n}")),
        name: format!("P{n}"),
    };
    let crowd = logic::OFFLINE_PEOPLE * 3;
    state.apply(ServerMsg::Presence {
        online: (0..crowd).map(user).collect(),
        offline: vec![],
    });
    assert_eq!(state.people.len(), crowd);
    state.apply(ServerMsg::Presence {
        online: vec![],
        offline: (0..crowd - 1).map(|n| user(n).id).collect(),
    });
    assert_eq!(
        state.people.iter().filter(|p| !p.online).count(),
        logic::OFFLINE_PEOPLE
    );
    // The one still online stays, and the most recent leavers are the ones kept.
    assert!(state
        .people
        .iter()
        .any(|p| p.online && p.user.id == user(crowd - 1).id));
    assert!(state.people.iter().any(|p| p.user.id == user(crowd - 2).id));
    assert!(!state.people.iter().any(|p| p.user.id == user(0).id));
}

// ---- What the person does ----

#[test]
fn choosing_a_person_or_a_direct_room_closes_the_drawer_and_unread_adds_up() {
    let mut state = ready_with(vec![
        channel(GENERAL, "general", 0),
        channel(RUST, "rust", 0),
        direct_with_bob(0),
    ]);
    for (room, seq) in [(RUST, 1), (RUST, 2), (DIRECT, 1)] {
        state.apply(ServerMsg::Message {
            message: message(room, seq, bob()),
        });
    }
    state.close_popup(DIRECT);
    assert_eq!(state.total_unread(), 2, "the open popup read its message");
    state.toggle_drawer();
    state.show_popup(DIRECT);
    assert!(!*state.drawer_open, "a direct room from the drawer");
    state.toggle_drawer();
    let effects = state.open_direct(&user("cy-id", "Cy").id);
    assert!(!*state.drawer_open, "a new person from the drawer");
    assert_eq!(
        effects,
        [Effect::Send(ClientMsg::OpenDirect {
            user: user("cy-id", "Cy").id
        })]
    );
}

#[test]
fn viewing_a_channel_marks_it_read_and_a_direct_room_opens_its_popup() {
    let mut state = ready_with(vec![
        channel(GENERAL, "general", 0),
        channel(RUST, "rust", 0),
        direct_with_bob(0),
    ]);
    state.apply(ServerMsg::Message {
        message: message(RUST, 1, bob()),
    });
    state.toggle_drawer();
    let effects = state.view(RUST);
    assert_eq!(*state.current, Some(RUST));
    assert!(!*state.drawer_open);
    assert_eq!(state.unread(RUST), 0);
    assert_eq!(
        effects,
        [
            Effect::SaveProfile,
            Effect::ReportRead { room: RUST, seq: 1 }
        ]
    );

    state.view(DIRECT);
    assert_eq!(
        *state.current,
        Some(RUST),
        "a direct room is never the main pane"
    );
    assert_eq!(state.popups.len(), 1);
}

#[test]
fn a_folded_popup_counts_unread_and_unfolding_reads_it() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 0), direct_with_bob(0)]);
    state.show_popup(DIRECT);
    state.toggle_popup(DIRECT);
    assert!(state.popups[0].minimized);
    state.apply(ServerMsg::Message {
        message: message(DIRECT, 1, bob()),
    });
    assert_eq!(state.unread(DIRECT), 1);
    let effects = state.toggle_popup(DIRECT);
    assert_eq!(state.unread(DIRECT), 0);
    assert_eq!(
        effects,
        [
            Effect::SaveProfile,
            Effect::ReportRead {
                room: DIRECT,
                seq: 1
            }
        ]
    );
    state.close_popup(DIRECT);
    assert!(state.popups.is_empty());
}

#[test]
fn joining_a_listed_channel_shows_it_if_mine_and_asks_otherwise() {
    let mut state = ready_with(vec![
        channel(GENERAL, "general", 0),
        channel(RUST, "rust", 0),
    ]);
    let rust = ChannelInfo {
        id: RUST,
        name: "rust".into(),
    };
    assert_eq!(state.join_channel(&rust), [Effect::SaveProfile]);
    assert_eq!(*state.current, Some(RUST));
    let other = ChannelInfo {
        id: RoomId(77),
        name: "other".into(),
    };
    assert_eq!(
        state.join_channel(&other),
        [Effect::Send(ClientMsg::JoinChannel {
            name: "other".into()
        })]
    );
}

#[test]
fn opening_a_direct_room_reuses_the_one_that_exists() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 0)]);
    assert_eq!(
        state.open_direct(&bob().id),
        [Effect::Send(ClientMsg::OpenDirect { user: bob().id })]
    );
    state.apply(ServerMsg::Joined {
        room: direct_with_bob(0),
        by: ann().id,
    });
    state.close_popup(DIRECT);
    assert_eq!(state.open_direct(&bob().id), [Effect::SaveProfile]);
    assert_eq!(state.popups.len(), 1);
}

#[test]
fn resume_positions_are_only_for_the_person_the_cache_is_for() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 0)]);
    history_of(&mut state, GENERAL, messages(GENERAL, 1..=5), false);
    state.apply(ServerMsg::Message {
        message: message(GENERAL, 9, bob()),
    });
    assert_eq!(
        state.resume_positions(Some(&ann().id)),
        [ResumePosition {
            room: GENERAL,
            seq: 5
        }],
        "from the end of the gap-free run"
    );
    assert!(state.resume_positions(Some(&bob().id)).is_empty());
    assert!(state.resume_positions(None).is_empty());
}

#[test]
fn a_restored_visit_pages_back_unless_it_holds_the_first_message() {
    let mut state = ChatState::default();
    state.restore(CachedVisit {
        muted: Vec::new(),
        me: ann(),
        rooms: vec![channel(GENERAL, "general", 9), channel(RUST, "rust", 3)],
        read: HashMap::from([(GENERAL, 9)]),
        current: Some(GENERAL),
        popups: vec![],
        history: HashMap::from([
            (GENERAL, messages(GENERAL, 4..=9)),
            (RUST, messages(RUST, 1..=3)),
        ]),
    });
    assert_eq!(*state.me, Some(ann()));
    assert!(state.history[&GENERAL].more_before);
    assert!(!state.history[&RUST].more_before);
    assert_eq!(state.unread(RUST), 3);
}

#[test]
fn forgetting_the_person_keeps_only_the_channel_list() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 0)]);
    state.apply(ServerMsg::Channels {
        channels: vec![ChannelInfo {
            id: GENERAL,
            name: "general".into(),
        }],
    });
    state.post(Pending {
        client_id: "c1".into(),
        room: GENERAL,
        text: "hi".into(),
        attachments: Vec::new(),
        reply_to: None,
    });
    state.forget();
    assert_eq!(*state.me, None);
    assert!(state.rooms.is_empty() && state.pending.is_empty() && state.read.is_empty());
    assert_eq!(*state.current, None);
    assert_eq!(state.channels.len(), 1);
}

#[test]
fn an_event_changes_the_versions_of_the_parts_it_touches_only() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 0)]);
    let people = state.people.version();
    let channels = state.channels.version();
    let history = state.history.version();
    state.apply(ServerMsg::Message {
        message: message(GENERAL, 1, bob()),
    });
    assert_eq!(state.people.version(), people);
    assert_eq!(state.channels.version(), channels);
    assert_ne!(state.history.version(), history);

    let history = state.history.version();
    state.apply(ServerMsg::Presence {
        online: vec![bob()],
        offline: vec![],
    });
    assert_ne!(state.people.version(), people);
    assert_eq!(state.history.version(), history);
}

// ---- ServerMsg::Changed, and changes I make ----

fn changed(room: RoomId, seq: Seq, by: UserSummary, target: Seq, change: Change) -> ServerMsg {
    ServerMsg::Changed {
        room,
        seq,
        ts: 7_000,
        by,
        target,
        change,
    }
}

#[test]
fn changes_apply_once_above_a_messages_rev_and_update_the_quotes_of_replies() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 3)]);
    let mut reply = message(GENERAL, 3, ann());
    reply.reply_to = Some(natter_protocol::ReplyPreview {
        seq: 2,
        sender: bob(),
        text: "m2".into(),
        deleted: false,
    });
    history_of(
        &mut state,
        GENERAL,
        vec![
            message(GENERAL, 1, bob()),
            message(GENERAL, 2, bob()),
            reply,
        ],
        false,
    );
    state.apply(changed(
        GENERAL,
        4,
        bob(),
        2,
        Change::Edit {
            text: "fixed".into(),
            mentions: vec![],
        },
    ));
    state.apply(changed(
        GENERAL,
        5,
        ann(),
        1,
        Change::React {
            emoji: "👍".into()
        },
    ));
    let held = &state.history[&GENERAL];
    assert_eq!(held.messages[1].text, "fixed");
    assert_eq!(held.messages[1].edited_at, Some(7_000));
    assert_eq!(
        held.messages[2].reply_to.as_ref().map(|r| r.text.as_str()),
        Some("fixed")
    );
    assert_eq!(held.messages[0].reactions[0].count, 1);
    assert!(held.messages[0].reactions[0].me, "my own reaction is mine");
    assert_eq!(held.through, 5);

    // A page read after the reaction already includes it: the same change again (as a
    // live frame that waited for the page) does not count twice.
    let mut page_copy = state.history[&GENERAL].messages[0].clone();
    page_copy.rev = 6;
    page_copy.reactions[0].count = 2;
    state.apply(ServerMsg::History {
        room: GENERAL,
        messages: vec![page_copy],
        more_before: false,
        through: None,
        changed: vec![],
    });
    state.apply(changed(
        GENERAL,
        6,
        bob(),
        1,
        Change::React {
            emoji: "👍".into()
        },
    ));
    assert_eq!(state.history[&GENERAL].messages[0].reactions[0].count, 2);

    state.apply(changed(GENERAL, 7, bob(), 2, Change::Delete));
    let held = &state.history[&GENERAL];
    assert!(held.messages[1].deleted && held.messages[1].text.is_empty());
    let quote = held.messages[2]
        .reply_to
        .as_ref()
        .expect("the reply keeps its quote");
    assert!(quote.deleted && quote.text.is_empty());
}

#[test]
fn a_resume_replaces_the_held_messages_that_changed_meanwhile() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 3)]);
    history_of(&mut state, GENERAL, messages(GENERAL, 1..=3), false);
    let mut edited = message(GENERAL, 2, bob());
    edited.text = "edited while away".into();
    edited.rev = 9;
    let mut not_held = message(GENERAL, 0, bob());
    not_held.rev = 9;
    state.apply(ServerMsg::History {
        room: GENERAL,
        messages: messages(GENERAL, 10..=10),
        more_before: false,
        through: Some(10),
        changed: vec![edited, not_held],
    });
    assert_eq!(seqs(&state, GENERAL), [1, 2, 3, 10]);
    assert_eq!(
        state.history[&GENERAL].messages[1].text,
        "edited while away"
    );
    assert_eq!(state.resume_positions(Some(&ann().id))[0].seq, 10);
}

#[test]
fn a_change_stays_pending_until_acked_and_is_dropped_when_refused_for_good() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 3)]);
    let edit = ClientMsg::Edit {
        room: GENERAL,
        client_id: "e1".into(),
        seq: 2,
        text: "x".into(),
    };
    assert_eq!(
        state.change("e1".into(), edit.clone()),
        [Effect::SendTagged {
            request: edit.clone(),
            client_id: "e1".into()
        }]
    );
    state.change("e2".into(), edit);
    assert_eq!(state.pending_changes.len(), 2);
    state.apply(ServerMsg::Ack {
        client_id: "e1".into(),
        room: GENERAL,
        seq: 4,
        ts: 1,
        mentions: vec![],
    });
    assert_eq!(state.pending_changes.len(), 1);
    assert!(
        !state.history.contains_key(&GENERAL),
        "the ack of a change adds no message"
    );
    // Slowed down: kept for a resend. Refused (not mine): dropped, and said.
    state.apply(ServerMsg::Error {
        code: ErrorCode::RateLimited,
        message: "slow".into(),
        request_ref: Some("e2".into()),
        retry_after_ms: Some(10),
    });
    assert_eq!(state.pending_changes.len(), 1);
    state.apply(ServerMsg::error(
        ErrorCode::NotAuthor,
        "not yours",
        Some("e2".into()),
    ));
    assert!(state.pending_changes.is_empty());
    assert_eq!(
        state.errors.get(form::GENERAL).map(String::as_str),
        Some("not yours")
    );
}

#[test]
fn a_send_refused_for_good_is_no_longer_pending() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 3)]);
    state.post(pending(1));
    state.apply(ServerMsg::error(
        ErrorCode::NoSuchFile,
        "upload it again",
        Some("c1".into()),
    ));
    assert!(
        state.pending.is_empty(),
        "it would be refused again on every reconnect"
    );
}

#[test]
fn unread_counts_messages_not_seqs() {
    let mut state = ready_with(vec![
        channel(GENERAL, "general", 0),
        channel(RUST, "rust", 0),
    ]);
    state.apply(ServerMsg::Message {
        message: message(RUST, 1, bob()),
    });
    state.apply(changed(
        RUST,
        2,
        bob(),
        1,
        Change::React {
            emoji: "🎉".into()
        },
    ));
    state.apply(ServerMsg::Message {
        message: message(RUST, 3, bob()),
    });
    assert_eq!(
        state.unread(RUST),
        2,
        "the reaction is not a message to read"
    );
    state.apply(changed(RUST, 4, bob(), 3, Change::Delete));
    assert_eq!(
        state.unread(RUST),
        1,
        "a deleted message is nothing to read"
    );
}

/// A message by Bob in `room` that mentions Ann.
fn mentioning_ann(room: RoomId, seq: Seq) -> ChatMessage {
    let mut message = message(room, seq, bob());
    message.text = "@Ann look".into();
    message.mentions = vec![Mention {
        user: Some(ann().id),
        name: "Ann".into(),
    }];
    message
}

#[test]
fn read_states_count_from_the_server_then_what_arrives_and_only_move_forward() {
    // #rust: read up to 10 elsewhere, 4 unread after it (2 mentions) up to 14.
    let mut state = ready_with(vec![
        channel(GENERAL, "general", 1),
        RoomInfo {
            read: ReadState {
                seq: 10,
                unread: 4,
                mentions: 2,
                through: 14,
            },
            ..channel(RUST, "rust", 14)
        },
    ]);
    assert_eq!((state.unread(RUST), state.mentions(RUST)), (4, 2));
    state.apply(ServerMsg::Message {
        message: mentioning_ann(RUST, 15),
    });
    assert_eq!((state.unread(RUST), state.mentions(RUST)), (5, 3));
    assert_eq!(state.total_unread(), 5);
    // Read on another device up to 14: what came after it still counts.
    let moved = ReadState {
        seq: 14,
        unread: 0,
        mentions: 0,
        through: 14,
    };
    state.apply(ServerMsg::Read {
        room: RUST,
        state: moved,
    });
    assert_eq!((state.unread(RUST), state.mentions(RUST)), (1, 1));
    // An older position changes nothing.
    state.apply(ServerMsg::Read {
        room: RUST,
        state: ReadState { seq: 12, ..moved },
    });
    assert_eq!(state.read.get(&RUST), Some(&14));
    assert_eq!(state.unread(RUST), 1);
    // Muted: the plain count leaves the total, the mention stays.
    state.toggle_mute(RUST);
    state.apply(ServerMsg::Message {
        message: message(RUST, 16, bob()),
    });
    assert_eq!(state.total_unread(), 1);
    // Opened: a "new messages" line after what was read, the room read, the server told.
    let effects = state.view(RUST);
    assert_eq!(state.new_since(RUST), Some(14));
    assert_eq!((state.unread(RUST), state.mentions(RUST)), (0, 0));
    assert!(effects.contains(&Effect::ReportRead {
        room: RUST,
        seq: 16
    }));
}

#[test]
fn a_mention_or_direct_message_asks_for_a_notification_unless_muted_and_a_hidden_page_reads_nothing(
) {
    let mut state = ready_with(vec![channel(GENERAL, "general", 0), direct_with_bob(0)]);
    state.apply(ServerMsg::History {
        room: GENERAL,
        messages: vec![],
        more_before: false,
        through: Some(0),
        changed: vec![],
    });
    state.set_page_hidden(true);
    let effects = state.apply(ServerMsg::Message {
        message: mentioning_ann(GENERAL, 1),
    });
    assert!(effects.contains(&Effect::Notify {
        room: GENERAL,
        title: "Bob in #general".into(),
        body: "@Ann look".into(),
    }));
    assert_eq!(state.unread(GENERAL), 1, "the page is hidden: not read");
    let plain = state.apply(ServerMsg::Message {
        message: message(GENERAL, 2, bob()),
    });
    assert!(!plain.iter().any(|e| matches!(e, Effect::Notify { .. })));
    state.toggle_mute(DIRECT);
    let muted = state.apply(ServerMsg::Message {
        message: message(DIRECT, 1, bob()),
    });
    assert!(!muted.iter().any(|e| matches!(e, Effect::Notify { .. })));
    // Shown again: the room on screen is read, with a line where it was left.
    let effects = state.set_page_hidden(false);
    assert!(effects.contains(&Effect::ReportRead {
        room: GENERAL,
        seq: 2
    }));
    assert_eq!(state.new_since(GENERAL), Some(0));
    assert_eq!(state.unread(GENERAL), 0);
}

#[test]
fn typing_shows_who_until_they_send_stop_or_their_signal_expires() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 0)]);
    let typing = |user: UserSummary, typing: bool| ServerMsg::Typing {
        room: GENERAL,
        user,
        typing,
    };
    let effects = state.apply(typing(bob(), true));
    let [Effect::ExpireTyping {
        generation: first, ..
    }] = effects.as_slice()
    else {
        panic!("expected an expiry timer, got {effects:?}");
    };
    assert_eq!(
        state.typing_line(GENERAL).as_deref(),
        Some("Bob is typing…")
    );
    // Bob types on: the first signal's timer no longer ends it.
    state.apply(typing(bob(), true));
    state.typing_expired(GENERAL, &bob().id, *first);
    assert!(state.typing_line(GENERAL).is_some());
    state.apply(typing(user("cy-id", "Cy"), true));
    assert_eq!(
        state.typing_line(GENERAL).as_deref(),
        Some("Bob and Cy are typing…")
    );
    state.apply(typing(user("di-id", "Di"), true));
    assert_eq!(
        state.typing_line(GENERAL).as_deref(),
        Some("Several people are typing…")
    );
    state.apply(typing(user("di-id", "Di"), false));
    state.apply(ServerMsg::Message {
        message: message(GENERAL, 1, bob()),
    });
    assert_eq!(state.typing_line(GENERAL).as_deref(), Some("Cy is typing…"));
    // My own signal (from another tab) is not shown.
    state.apply(typing(ann(), true));
    assert_eq!(state.typing_line(GENERAL).as_deref(), Some("Cy is typing…"));
}

#[test]
fn mention_suggestions_offer_the_rooms_people_first_then_everyone_online_then_at_room() {
    let mut state = ready_with(vec![channel(GENERAL, "general", 0)]);
    state.apply(ServerMsg::Presence {
        online: vec![ann(), bob(), user("bea-id", "Bea"), user("abe-id", "Abe")],
        offline: vec![],
    });
    history_of(
        &mut state,
        GENERAL,
        vec![message(GENERAL, 1, user("abe-id", "Abe"))],
        false,
    );
    // Abe wrote here: first; Bob and Bea are online; Ann is me; "ab" is inside "Abe"
    // only at the start, so no one else.
    assert_eq!(
        state.mention_suggestions(GENERAL, ""),
        ["Abe", "Bob", "Bea", "room"]
    );
    assert_eq!(
        state.mention_suggestions(GENERAL, "b"),
        ["Bob", "Bea", "Abe"]
    );
    assert_eq!(state.mention_suggestions(GENERAL, "ro"), ["room"]);
    assert!(state.mention_suggestions(GENERAL, "zed").is_empty());
}
