-- Changes to messages (protocol version 2): edits, deletions and reactions are events
-- in their room's sequence. Each takes the room's next seq like a message (bumping
-- rooms.latest_seq in the same transaction) and is stored here, once per
-- (sender, client id); its effect is applied to the message in that transaction, so
-- a history page reads every message in its current state without replaying events.

-- The message's state now: the edit time, a deletion (text and files are removed, not
-- hidden), the message it answers, the seq of the newest change it includes, and its
-- reactions as history shows them (per emoji: the count and the first 10 who reacted,
-- as JSON), kept up to date by each reaction so a page is read without counting.
ALTER TABLE messages ADD COLUMN edited_at BIGINT;
ALTER TABLE messages ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE messages ADD COLUMN reply_to BIGINT;
ALTER TABLE messages ADD COLUMN reactions TEXT;
ALTER TABLE messages ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;
-- a resume asks for the messages changed after a seq
CREATE INDEX messages_by_rev ON messages (room_id, rev) WHERE rev > 0;

-- One row per change event. An edit's text is not kept here (the message holds its
-- current text; earlier texts are gone), so a deletion leaves no text behind.
CREATE TABLE changes (
    room_id     BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    target      BIGINT NOT NULL,
    sender_id   TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('edit', 'delete', 'react', 'unreact')),
    emoji       TEXT,
    ts          BIGINT NOT NULL,
    PRIMARY KEY (room_id, seq)
);
-- a resent change (same sender, same client id) is stored once
CREATE UNIQUE INDEX changes_by_client_id ON changes (sender_id, client_id);

-- Reactions as they stand: one row per person and emoji on a message. added_seq is
-- the change that added it, so reactors are listed in the order they reacted.
CREATE TABLE reactions (
    room_id   BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq       BIGINT NOT NULL,
    emoji     TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    user_name TEXT NOT NULL,
    added_seq BIGINT NOT NULL,
    PRIMARY KEY (room_id, seq, emoji, user_id)
);
-- a message's reactors of one emoji in the order they reacted (its summary's first 10)
CREATE INDEX reactions_in_order ON reactions (room_id, seq, emoji, added_seq);
-- which reactions on a page are the reader's own
CREATE INDEX reactions_by_user ON reactions (room_id, user_id, seq);
