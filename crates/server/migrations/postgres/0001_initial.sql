-- natter's schema on PostgreSQL, the same shape as the SQLite one. Every room has a
-- gap-free sequence of messages: `rooms.latest_seq` is bumped (under the row's lock)
-- and the messages inserted in one transaction, so seq order is commit order even
-- with several nodes writing to one room.

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE rooms (
    id                BIGSERIAL PRIMARY KEY,
    kind              TEXT NOT NULL CHECK (kind IN ('channel', 'code', 'direct')),
    -- channels: the name as typed, and its case-folded key that must be unique
    name              TEXT,
    name_key          TEXT UNIQUE,
    -- code rooms: the 8-letter code
    code              TEXT UNIQUE,
    -- direct rooms: "<smaller user id>|<larger user id>", one room per pair
    direct_key        TEXT UNIQUE,
    delete_when_empty BOOLEAN NOT NULL DEFAULT FALSE,
    latest_seq        BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL
);

CREATE TABLE members (
    room_id   BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id),
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id);

CREATE TABLE messages (
    room_id     BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    sender_id   TEXT NOT NULL,
    -- the sender's name when it was sent, so history shows what people saw then
    sender_name TEXT NOT NULL,
    ts          BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('text', 'join', 'leave')),
    text        TEXT NOT NULL,
    client_id   TEXT,
    PRIMARY KEY (room_id, seq)
);
-- a resent message (same sender, same client id) is stored once
CREATE UNIQUE INDEX messages_by_client_id ON messages (sender_id, client_id)
    WHERE client_id IS NOT NULL;

INSERT INTO rooms (kind, name, name_key, created_at) VALUES ('channel', 'general', 'general', 0);
