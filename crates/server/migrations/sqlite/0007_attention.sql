-- Attention (protocol version 3): mentions and read positions.

-- The mentions of a message as history shows them (JSON: [{"user": id?, "name": as
-- written}]), resolved by user id when it was stored or edited.
ALTER TABLE messages ADD COLUMN mentions TEXT;

-- Who each message mentions, one row per person (`@room` is expanded to the room's
-- members when it is stored), so a user's mention count in a room is one index range.
-- A deletion removes its rows; an edit replaces them.
CREATE TABLE mentions (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id, seq)
) WITHOUT ROWID;
-- a message's rows, for its edit or deletion
CREATE INDEX mentions_of_message ON mentions (room_id, seq);

-- Where each person stopped reading in each room: the newest seq read. It only moves
-- forward, written at most about once a second per person and room.
CREATE TABLE read_positions (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id)
) WITHOUT ROWID;

-- Everyone starts with what they could already see read: an upgrade is not news.
INSERT INTO read_positions (user_id, room_id, seq)
SELECT m.user_id, m.room_id, r.latest_seq FROM members m JOIN rooms r ON r.id = m.room_id;

-- `@Name` is looked up among users by name (as written, or in lower case) before
-- checking membership, so a big room is not scanned per message.
CREATE INDEX users_by_name ON users (name);
CREATE INDEX users_by_lower_name ON users (lower(name));
