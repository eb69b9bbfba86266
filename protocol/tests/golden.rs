//! Golden JSON: pins the exact wire form of every message. If one of these fails, the
//! wire changed — bump `PROTOCOL_VERSION` or make the change compatible, and update
//! docs/protocol.md in the same commit.
//!
//! Why one long file: it is the wire's whole reference, one golden per frame; split,
//! a frame could slip through without one.

use natter_protocol::*;
use serde_json::{json, Value};

fn user(id: &str, name: &str) -> UserSummary {
    UserSummary {
        id: UserId(id.into()),
        name: name.into(),
    }
}

fn message() -> ChatMessage {
    ChatMessage::new(
        RoomId(1),
        42,
        user("u1", "Ann"),
        1_700_000_000_000,
        MessageKind::Text,
        "hi".into(),
    )
}

/// Asserts `frame` serializes to `expected` and parses back to itself.
fn client_golden(frame: ClientFrame, expected: Value) {
    let text = frame.to_json();
    assert_eq!(
        serde_json::from_str::<Value>(&text).expect("valid json"),
        expected
    );
    assert_eq!(decode_client_frame(&expected.to_string()), Ok(frame));
}

fn server_golden(msg: ServerMsg, expected: Value) {
    let text = msg.to_json();
    assert_eq!(
        serde_json::from_str::<Value>(&text).expect("valid json"),
        expected
    );
    assert_eq!(
        serde_json::from_value::<ServerMsg>(expected).expect("parses back"),
        msg
    );
}

#[test]
fn client_messages() {
    client_golden(
        ClientFrame {
            request_ref: Some("h1".into()),
            msg: ClientMsg::Hello {
                version: 1,
                name: "Ann".into(),
                credentials: Some(GuestCredentials {
                    user_id: UserId("u1".into()),
                    secret: "s3cr3t".into(),
                }),
                resume: vec![ResumePosition {
                    room: RoomId(1),
                    seq: 41,
                }],
            },
        },
        json!({"type":"hello","ref":"h1","version":1,"name":"Ann",
               "credentials":{"user_id":"u1","secret":"s3cr3t"},
               "resume":[{"room":1,"seq":41}]}),
    );
    client_golden(
        ClientMsg::Hello {
            version: 1,
            name: "Bo".into(),
            credentials: None,
            resume: vec![],
        }
        .into(),
        json!({"type":"hello","version":1,"name":"Bo"}),
    );
    client_golden(
        ClientMsg::Rename { name: "Ann".into() }.into(),
        json!({"type":"rename","name":"Ann"}),
    );
    client_golden(
        ClientMsg::CreateChannel {
            name: "rust".into(),
            delete_when_empty: true,
        }
        .into(),
        json!({"type":"create_channel","name":"rust","delete_when_empty":true}),
    );
    client_golden(
        ClientMsg::JoinChannel {
            name: "rust".into(),
        }
        .into(),
        json!({"type":"join_channel","name":"rust"}),
    );
    client_golden(
        ClientMsg::CreateCodeRoom {
            delete_when_empty: false,
        }
        .into(),
        json!({"type":"create_code_room","delete_when_empty":false}),
    );
    client_golden(
        ClientMsg::JoinByCode {
            code: "ABCDEFGH".into(),
        }
        .into(),
        json!({"type":"join_by_code","code":"ABCDEFGH"}),
    );
    client_golden(
        ClientMsg::Leave { room: RoomId(3) }.into(),
        json!({"type":"leave","room":3}),
    );
    client_golden(
        ClientMsg::OpenDirect {
            user: UserId("u2".into()),
        }
        .into(),
        json!({"type":"open_direct","user":"u2"}),
    );
    client_golden(
        ClientMsg::Send {
            reply_to: None,
            room: RoomId(1),
            client_id: "c-7".into(),
            text: "hi".into(),
            attachments: vec![],
        }
        .into(),
        json!({"type":"send","room":1,"client_id":"c-7","text":"hi"}),
    );
    client_golden(
        ClientMsg::History {
            room: RoomId(1),
            before: 101,
            limit: 100,
        }
        .into(),
        json!({"type":"history","room":1,"before":101,"limit":100}),
    );
    client_golden(
        ClientMsg::Block {
            user: UserId("u2".into()),
        }
        .into(),
        json!({"type":"block","user":"u2"}),
    );
    client_golden(
        ClientMsg::Unblock {
            user: UserId("u2".into()),
        }
        .into(),
        json!({"type":"unblock","user":"u2"}),
    );
    client_golden(
        ClientMsg::Send {
            reply_to: None,
            room: RoomId(1),
            client_id: "c-8".into(),
            text: String::new(),
            attachments: vec![FileId("k4xq2m7d9s0a1b2c3d4e5f6g7h".into())],
        }
        .into(),
        json!({"type":"send","room":1,"client_id":"c-8","text":"","attachments":["k4xq2m7d9s0a1b2c3d4e5f6g7h"]}),
    );
    client_golden(
        ClientMsg::Send {
            room: RoomId(1),
            client_id: "c-9".into(),
            text: "agreed".into(),
            attachments: vec![],
            reply_to: Some(41),
        }
        .into(),
        json!({"type":"send","room":1,"client_id":"c-9","text":"agreed","reply_to":41}),
    );
    client_golden(
        ClientMsg::Edit {
            room: RoomId(1),
            client_id: "e-1".into(),
            seq: 42,
            text: "hello".into(),
        }
        .into(),
        json!({"type":"edit","room":1,"client_id":"e-1","seq":42,"text":"hello"}),
    );
    client_golden(
        ClientMsg::Delete {
            room: RoomId(1),
            client_id: "d-1".into(),
            seq: 42,
        }
        .into(),
        json!({"type":"delete","room":1,"client_id":"d-1","seq":42}),
    );
    client_golden(
        ClientMsg::React {
            room: RoomId(1),
            client_id: "r-1".into(),
            seq: 42,
            emoji: "👍".into(),
        }
        .into(),
        json!({"type":"react","room":1,"client_id":"r-1","seq":42,"emoji":"👍"}),
    );
    client_golden(
        ClientMsg::Unreact {
            room: RoomId(1),
            client_id: "r-2".into(),
            seq: 42,
            emoji: "👍".into(),
        }
        .into(),
        json!({"type":"unreact","room":1,"client_id":"r-2","seq":42,"emoji":"👍"}),
    );
    client_golden(
        ClientMsg::CatchUp {
            room: RoomId(1),
            after: 40,
        }
        .into(),
        json!({"type":"catch_up","room":1,"after":40}),
    );
    client_golden(
        ClientMsg::BrowseChannels.into(),
        json!({"type":"browse_channels"}),
    );
    client_golden(ClientMsg::Goodbye.into(), json!({"type":"goodbye"}));
    client_golden(
        ClientMsg::MarkRead {
            room: RoomId(1),
            seq: 42,
        }
        .into(),
        json!({"type":"mark_read","room":1,"seq":42}),
    );
    client_golden(
        ClientMsg::Typing {
            room: RoomId(1),
            typing: true,
        }
        .into(),
        json!({"type":"typing","room":1,"typing":true}),
    );
}

#[test]
fn optional_client_fields_have_defaults() {
    let frame = decode_client_frame(r#"{"type":"history","room":1,"before":5}"#).expect("parses");
    assert_eq!(
        frame.msg,
        ClientMsg::History {
            room: RoomId(1),
            before: 5,
            limit: HISTORY_PAGE
        }
    );
    let frame = decode_client_frame(r#"{"type":"create_code_room"}"#).expect("parses");
    assert_eq!(
        frame.msg,
        ClientMsg::CreateCodeRoom {
            delete_when_empty: false
        }
    );
}

#[test]
fn decode_errors_keep_the_ref() {
    let err = decode_client_frame(r#"{"type":"fly","ref":"r9"}"#).expect_err("unknown type");
    assert_eq!(err.request_ref.as_deref(), Some("r9"));
    assert!(err.reason.contains("fly"), "{}", err.reason);
    let err = decode_client_frame("not json").expect_err("not json");
    assert_eq!(err.request_ref, None);
    let err = decode_client_frame(r#"{"type":"send","ref":"r1","room":"x"}"#).expect_err("bad");
    assert_eq!(err.request_ref.as_deref(), Some("r1"));
}

#[test]
fn server_messages() {
    let channel_room = RoomInfo {
        id: RoomId(1),
        kind: RoomKind::Channel {
            name: "general".into(),
        },
        delete_when_empty: false,
        latest_seq: 42,
        read: ReadState::default(),
    };
    server_golden(
        ServerMsg::Ready {
            me: user("u1", "Ann"),
            credentials: Some(GuestCredentials {
                user_id: UserId("u1".into()),
                secret: "s".into(),
            }),
            rooms: vec![channel_room.clone()],
            blocked: vec![],
        },
        json!({"type":"ready","me":{"id":"u1","name":"Ann"},
               "credentials":{"user_id":"u1","secret":"s"},
               "rooms":[{"id":1,"kind":"channel","name":"general","delete_when_empty":false,"latest_seq":42}]}),
    );
    server_golden(
        ServerMsg::Ready {
            me: user("u1", "Ann"),
            credentials: None,
            rooms: vec![],
            blocked: vec![user("u9", "Spam")],
        },
        json!({"type":"ready","me":{"id":"u1","name":"Ann"},"rooms":[],
               "blocked":[{"id":"u9","name":"Spam"}]}),
    );
    server_golden(
        ServerMsg::Blocked {
            users: vec![user("u9", "Spam")],
        },
        json!({"type":"blocked","users":[{"id":"u9","name":"Spam"}]}),
    );
    server_golden(
        ServerMsg::Blocked { users: vec![] },
        json!({"type":"blocked","users":[]}),
    );
    server_golden(
        ServerMsg::Ready {
            me: user("u1", "Ann"),
            credentials: None,
            rooms: vec![],
            blocked: vec![],
        },
        json!({"type":"ready","me":{"id":"u1","name":"Ann"},"rooms":[]}),
    );
    server_golden(
        ServerMsg::Channels {
            channels: vec![ChannelInfo {
                id: RoomId(1),
                name: "general".into(),
            }],
        },
        json!({"type":"channels","channels":[{"id":1,"name":"general"}]}),
    );
    server_golden(
        ServerMsg::ChannelDirectory {
            channels: vec![ChannelListing {
                id: RoomId(1),
                name: "general".into(),
                members: 12,
            }],
            complete: true,
        },
        json!({"type":"channel_directory","channels":[{"id":1,"name":"general","members":12}],"complete":true}),
    );
    server_golden(
        ServerMsg::Presence {
            online: vec![user("u2", "Bo")],
            offline: vec![UserId("u3".into())],
        },
        json!({"type":"presence","online":[{"id":"u2","name":"Bo"}],"offline":["u3"]}),
    );
    server_golden(
        ServerMsg::Presence {
            online: vec![],
            offline: vec![UserId("u3".into())],
        },
        json!({"type":"presence","offline":["u3"]}),
    );
    server_golden(
        ServerMsg::ChannelAdded {
            channel: ChannelInfo {
                id: RoomId(2),
                name: "rust".into(),
            },
        },
        json!({"type":"channel_added","channel":{"id":2,"name":"rust"}}),
    );
    server_golden(
        ServerMsg::ChannelRemoved { room: RoomId(2) },
        json!({"type":"channel_removed","room":2}),
    );
    server_golden(
        ServerMsg::Joined {
            room: RoomInfo {
                id: RoomId(5),
                kind: RoomKind::Direct {
                    members: [user("u1", "Ann"), user("u2", "Bo")],
                },
                delete_when_empty: false,
                latest_seq: 0,
                read: ReadState::default(),
            },
            by: UserId("u2".into()),
        },
        json!({"type":"joined","room":{"id":5,"kind":"direct",
               "members":[{"id":"u1","name":"Ann"},{"id":"u2","name":"Bo"}],
               "delete_when_empty":false,"latest_seq":0},"by":"u2"}),
    );
    server_golden(
        ServerMsg::Joined {
            room: RoomInfo {
                id: RoomId(6),
                kind: RoomKind::Code {
                    code: "QWERTYUI".into(),
                },
                delete_when_empty: true,
                latest_seq: 0,
                read: ReadState::default(),
            },
            by: UserId("u1".into()),
        },
        json!({"type":"joined","room":{"id":6,"kind":"code","code":"QWERTYUI",
               "delete_when_empty":true,"latest_seq":0},"by":"u1"}),
    );
    server_golden(
        ServerMsg::Left { room: RoomId(6) },
        json!({"type":"left","room":6}),
    );
    server_golden(
        ServerMsg::History {
            room: RoomId(1),
            messages: vec![message()],
            more_before: true,
            through: None,
            changed: vec![],
        },
        json!({"type":"history","room":1,"more_before":true,"messages":[
            {"room":1,"seq":42,"sender":{"id":"u1","name":"Ann"},"ts":1_700_000_000_000_i64,"kind":"text","text":"hi"}]}),
    );
    server_golden(
        ServerMsg::Message { message: message() },
        json!({"type":"message","message":
            {"room":1,"seq":42,"sender":{"id":"u1","name":"Ann"},"ts":1_700_000_000_000_i64,"kind":"text","text":"hi"}}),
    );
    // A message with files: a picture (with its upright size) and a download.
    let mut with_files = message();
    with_files.text = String::new();
    with_files.attachments = vec![
        Attachment {
            id: FileId("k4xq2m7d9s0a1b2c3d4e5f6g7h".into()),
            name: "beach.jpg".into(),
            mime: "image/jpeg".into(),
            size: 183_204,
            width: Some(1600),
            height: Some(1200),
        },
        Attachment {
            id: FileId("p0q1r2s3t4u5v6w7x8y9z0a1b2".into()),
            name: "notes.pdf".into(),
            mime: "application/pdf".into(),
            size: 52_113,
            width: None,
            height: None,
        },
    ];
    server_golden(
        ServerMsg::Message {
            message: with_files,
        },
        json!({"type":"message","message":
            {"room":1,"seq":42,"sender":{"id":"u1","name":"Ann"},"ts":1_700_000_000_000_i64,"kind":"text","text":"",
             "attachments":[
                {"id":"k4xq2m7d9s0a1b2c3d4e5f6g7h","name":"beach.jpg","mime":"image/jpeg","size":183_204,"width":1600,"height":1200},
                {"id":"p0q1r2s3t4u5v6w7x8y9z0a1b2","name":"notes.pdf","mime":"application/pdf","size":52_113}]}}),
    );
    let mut changed = message();
    changed.seq = 40;
    changed.text = "hello".into();
    changed.edited_at = Some(1_700_000_060_000);
    changed.reply_to = Some(ReplyPreview {
        seq: 39,
        sender: user("u2", "Bo"),
        text: "what now?".into(),
        deleted: false,
    });
    changed.reactions = vec![Reaction {
        emoji: "👍".into(),
        count: 12,
        users: vec![user("u2", "Bo")],
        me: true,
    }];
    changed.rev = 47;
    let mut tombstone = message();
    tombstone.seq = 41;
    tombstone.text = String::new();
    tombstone.deleted = true;
    tombstone.rev = 45;
    tombstone.reply_to = Some(ReplyPreview {
        seq: 38,
        sender: user("u2", "Bo"),
        text: String::new(),
        deleted: true,
    });
    server_golden(
        ServerMsg::History {
            room: RoomId(1),
            messages: vec![message()],
            more_before: false,
            through: Some(47),
            changed: vec![changed, tombstone],
        },
        json!({"type":"history","room":1,"more_before":false,"through":47,
            "messages":[{"room":1,"seq":42,"sender":{"id":"u1","name":"Ann"},"ts":1_700_000_000_000_i64,"kind":"text","text":"hi"}],
            "changed":[
                {"room":1,"seq":40,"sender":{"id":"u1","name":"Ann"},"ts":1_700_000_000_000_i64,"kind":"text","text":"hello",
                 "reply_to":{"seq":39,"sender":{"id":"u2","name":"Bo"},"text":"what now?"},
                 "edited_at":1_700_000_060_000_i64,
                 "reactions":[{"emoji":"👍","count":12,"users":[{"id":"u2","name":"Bo"}],"me":true}],
                 "rev":47},
                {"room":1,"seq":41,"sender":{"id":"u1","name":"Ann"},"ts":1_700_000_000_000_i64,"kind":"text","text":"",
                 "reply_to":{"seq":38,"sender":{"id":"u2","name":"Bo"},"text":"","deleted":true},
                 "deleted":true,"rev":45}]}),
    );
    for (change, fields) in [
        (
            Change::Edit {
                text: "hello".into(),
                mentions: vec![],
            },
            json!({"change":"edit","text":"hello"}),
        ),
        (Change::Delete, json!({"change":"delete"})),
        (
            Change::React {
                emoji: "🎉".into()
            },
            json!({"change":"react","emoji":"🎉"}),
        ),
        (
            Change::Unreact {
                emoji: "🎉".into()
            },
            json!({"change":"unreact","emoji":"🎉"}),
        ),
    ] {
        let mut expected = json!({"type":"changed","room":1,"seq":48,"ts":1_700_000_090_000_i64,
            "by":{"id":"u2","name":"Bo"},"target":42});
        for (key, value) in fields.as_object().expect("an object") {
            expected[key] = value.clone();
        }
        server_golden(
            ServerMsg::Changed {
                room: RoomId(1),
                seq: 48,
                ts: 1_700_000_090_000,
                by: user("u2", "Bo"),
                target: 42,
                change,
            },
            expected,
        );
    }
    server_golden(
        ServerMsg::Ack {
            client_id: "c-7".into(),
            room: RoomId(1),
            seq: 42,
            ts: 1_700_000_000_000,
            mentions: vec![],
        },
        json!({"type":"ack","client_id":"c-7","room":1,"seq":42,"ts":1_700_000_000_000_i64}),
    );
    server_golden(
        ServerMsg::Ack {
            client_id: "c-8".into(),
            room: RoomId(1),
            seq: 43,
            ts: 5,
            mentions: vec![Mention {
                user: None,
                name: "room".into(),
            }],
        },
        json!({"type":"ack","client_id":"c-8","room":1,"seq":43,"ts":5,"mentions":[{"name":"room"}]}),
    );
    let read = ReadState {
        seq: 40,
        unread: 2,
        mentions: 1,
        through: 42,
    };
    server_golden(
        ServerMsg::Ready {
            me: user("u1", "Ann"),
            credentials: None,
            rooms: vec![RoomInfo {
                read,
                ..channel_room.clone()
            }],
            blocked: vec![],
        },
        json!({"type":"ready","me":{"id":"u1","name":"Ann"},
               "rooms":[{"id":1,"kind":"channel","name":"general","delete_when_empty":false,"latest_seq":42,
                         "read":{"seq":40,"unread":2,"mentions":1,"through":42}}]}),
    );
    server_golden(
        ServerMsg::Read {
            room: RoomId(1),
            state: read,
        },
        json!({"type":"read","room":1,"state":{"seq":40,"unread":2,"mentions":1,"through":42}}),
    );
    server_golden(
        ServerMsg::Typing {
            room: RoomId(1),
            user: user("u2", "Bo"),
            typing: false,
        },
        json!({"type":"typing","room":1,"user":{"id":"u2","name":"Bo"},"typing":false}),
    );
    let mut mentioning = message();
    mentioning.text = "@Bo and @room".into();
    mentioning.mentions = vec![
        Mention {
            user: Some(UserId("u2".into())),
            name: "Bo".into(),
        },
        Mention {
            user: None,
            name: "room".into(),
        },
    ];
    server_golden(
        ServerMsg::Message {
            message: mentioning,
        },
        json!({"type":"message","message":{"room":1,"seq":42,"sender":{"id":"u1","name":"Ann"},
               "ts":1_700_000_000_000_i64,"kind":"text","text":"@Bo and @room",
               "mentions":[{"user":"u2","name":"Bo"},{"name":"room"}]}}),
    );
    server_golden(
        ServerMsg::Changed {
            room: RoomId(1),
            seq: 43,
            ts: 5,
            by: user("u1", "Ann"),
            target: 42,
            change: Change::Edit {
                text: "@Bo".into(),
                mentions: vec![Mention {
                    user: Some(UserId("u2".into())),
                    name: "Bo".into(),
                }],
            },
        },
        json!({"type":"changed","room":1,"seq":43,"ts":5,"by":{"id":"u1","name":"Ann"},"target":42,
               "change":"edit","text":"@Bo","mentions":[{"user":"u2","name":"Bo"}]}),
    );
    server_golden(
        ServerMsg::error(ErrorCode::NameTaken, "taken", Some("h1".into())),
        json!({"type":"error","code":"name_taken","message":"taken","ref":"h1"}),
    );
    server_golden(
        ServerMsg::error(ErrorCode::BadFrame, "bad", None),
        json!({"type":"error","code":"bad_frame","message":"bad"}),
    );
    server_golden(
        ServerMsg::Error {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            request_ref: Some("s1".into()),
            retry_after_ms: Some(250),
        },
        json!({"type":"error","code":"rate_limited","message":"slow down","ref":"s1","retry_after_ms":250}),
    );
}

/// Every error code's wire name (docs/protocol.md lists the same).
#[test]
fn error_codes() {
    for (code, wire) in [
        (ErrorCode::BadFrame, "bad_frame"),
        (ErrorCode::UnsupportedVersion, "unsupported_version"),
        (ErrorCode::HelloRequired, "hello_required"),
        (ErrorCode::AlreadyReady, "already_ready"),
        (ErrorCode::BadCredentials, "bad_credentials"),
        (ErrorCode::InvalidName, "invalid_name"),
        (ErrorCode::NameTaken, "name_taken"),
        (ErrorCode::NameReserved, "name_reserved"),
        (ErrorCode::InvalidChannelName, "invalid_channel_name"),
        (ErrorCode::ChannelExists, "channel_exists"),
        (ErrorCode::InvalidCode, "invalid_code"),
        (ErrorCode::NoSuchRoom, "no_such_room"),
        (ErrorCode::NoSuchUser, "no_such_user"),
        (ErrorCode::NotMember, "not_member"),
        (ErrorCode::CannotLeaveDirect, "cannot_leave_direct"),
        (ErrorCode::CannotDirectSelf, "cannot_direct_self"),
        (ErrorCode::CannotBlockSelf, "cannot_block_self"),
        (ErrorCode::TooManyBlocks, "too_many_blocks"),
        (ErrorCode::UserBlocked, "user_blocked"),
        (ErrorCode::InvalidText, "invalid_text"),
        (ErrorCode::NoSuchFile, "no_such_file"),
        (ErrorCode::TooManyFiles, "too_many_files"),
        (ErrorCode::NoSuchMessage, "no_such_message"),
        (ErrorCode::NotAuthor, "not_author"),
        (ErrorCode::EditWindowClosed, "edit_window_closed"),
        (ErrorCode::TooManyReactions, "too_many_reactions"),
        (ErrorCode::MentionRoomNotAllowed, "mention_room_not_allowed"),
        (ErrorCode::InvalidEmoji, "invalid_emoji"),
        (ErrorCode::InvalidClientId, "invalid_client_id"),
        (ErrorCode::RateLimited, "rate_limited"),
        (ErrorCode::TooManyRooms, "too_many_rooms"),
        (ErrorCode::TooManyChannels, "too_many_channels"),
        (ErrorCode::QuotaExceeded, "quota_exceeded"),
        (ErrorCode::Internal, "internal"),
    ] {
        server_golden(
            ServerMsg::error(code, "m", None),
            json!({"type":"error","code":wire,"message":"m"}),
        );
    }
}

/// A JSON body of the account API must serialize to exactly `expected` and back.
fn api_golden<T>(body: T, expected: Value)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    assert_eq!(serde_json::to_value(&body).expect("serializes"), expected);
    assert_eq!(
        serde_json::from_value::<T>(expected).expect("deserializes"),
        body
    );
}

#[test]
fn account_api_bodies() {
    use natter_protocol::account::*;
    api_golden(
        SignupRequest {
            email: "ann@example.org".into(),
            name: "Ann".into(),
            password: "correct horse".into(),
        },
        json!({"email":"ann@example.org","name":"Ann","password":"correct horse"}),
    );
    api_golden(
        LoginRequest {
            email: "ann@example.org".into(),
            password: "pw".into(),
        },
        json!({"email":"ann@example.org","password":"pw"}),
    );
    api_golden(VerifyRequest { token: "t".into() }, json!({"token":"t"}));
    api_golden(
        RecoverRequest {
            email: "ann@example.org".into(),
        },
        json!({"email":"ann@example.org"}),
    );
    api_golden(
        ResetRequest {
            token: "t".into(),
            password: "new password".into(),
        },
        json!({"token":"t","password":"new password"}),
    );
    api_golden(
        Account {
            user_id: UserId("u1".into()),
            name: "Ann".into(),
            email: "ann@example.org".into(),
        },
        json!({"user_id":"u1","name":"Ann","email":"ann@example.org"}),
    );
    api_golden(
        Accepted {
            message: "Check your email.".into(),
        },
        json!({"message":"Check your email."}),
    );
    api_golden(
        ApiError {
            code: ApiErrorCode::Invalid,
            message: "Use at least 8 characters.".into(),
            field: Some("password".into()),
            retry_after_ms: None,
        },
        json!({"code":"invalid","message":"Use at least 8 characters.","field":"password"}),
    );
    api_golden(
        ApiError {
            code: ApiErrorCode::RateLimited,
            message: "Too many attempts.".into(),
            field: None,
            retry_after_ms: Some(60_000),
        },
        json!({"code":"rate_limited","message":"Too many attempts.","retry_after_ms":60000}),
    );
    // The refusals the framework would otherwise answer in its own shapes.
    for (code, wire) in [
        (ApiErrorCode::NotFound, "not_found"),
        (ApiErrorCode::MethodNotAllowed, "method_not_allowed"),
        (ApiErrorCode::TooLarge, "too_large"),
        (ApiErrorCode::Timeout, "timeout"),
        (ApiErrorCode::UnknownHost, "unknown_host"),
        // …and the uploads' own.
        (ApiErrorCode::NotSignedIn, "not_signed_in"),
        (ApiErrorCode::TooManyPixels, "too_many_pixels"),
        (ApiErrorCode::BadImage, "bad_image"),
        (ApiErrorCode::QuotaExceeded, "quota_exceeded"),
        (ApiErrorCode::NoSuchFile, "no_such_file"),
    ] {
        api_golden(
            ApiError {
                code,
                message: "m".into(),
                field: None,
                retry_after_ms: None,
            },
            json!({"code":wire,"message":"m"}),
        );
    }
}
