-- Who blocks whom: a blocked person's direct room with the blocker is hidden from the
-- blocker, and clients hide their messages. Rows go with either user (an expired
-- guest takes its blocks along).
CREATE TABLE blocks (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, blocked_id)
);
CREATE INDEX blocks_by_blocked ON blocks (blocked_id);
