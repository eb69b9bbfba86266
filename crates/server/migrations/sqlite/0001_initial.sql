-- natter's schema. Every room has a gap-free sequence of messages: `rooms.latest_seq`
-- is bumped and the message inserted in one transaction, so seq order is commit order.

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE rooms (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    kind              TEXT NOT NULL CHECK (kind IN ('channel', 'code', 'direct')),
    -- channels: the name as typed, and its case-folded key that must be unique
    name              TEXT,
    name_key          TEXT UNIQUE,
    -- code rooms: the 8-letter code
    code              TEXT UNIQUE,
    -- direct rooms: "<smaller user id>|<larger user id>", one room per pair
    direct_key        TEXT UNIQUE,
    delete_when_empty INTEGER NOT NULL DEFAULT 0,
    latest_seq        INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL
);

CREATE TABLE members (
    room_id   INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id),
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id);

CREATE TABLE messages (
    room_id     INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    sender_id   TEXT NOT NULL,
    -- the sender's name when it was sent, so history shows what people saw then
    sender_name TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('text', 'join', 'leave')),
    text        TEXT NOT NULL,
    client_id   TEXT,
    PRIMARY KEY (room_id, seq)
) WITHOUT ROWID;
-- a resent message (same sender, same client id) is stored once
CREATE UNIQUE INDEX messages_by_client_id ON messages (sender_id, client_id)
    WHERE client_id IS NOT NULL;

INSERT INTO rooms (kind, name, name_key, created_at) VALUES ('channel', 'general', 'general', 0);
