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
