-- Files people upload. The bytes (a "blob") are kept once per SHA-256 in the file
-- storage (`--files-dir`); a row here is one upload of them under a name. `id` is 128
-- random bits: the capability in the file's URL. A file is unsent (room_id NULL) until
-- a message carries it; unsent ones are deleted after a day. Not tied to the uploader's
-- row: a message outlives an expired guest, and so do its files.
CREATE TABLE files (
    id         TEXT PRIMARY KEY,
    uploader   TEXT NOT NULL,
    blob       TEXT NOT NULL,
    thumb      TEXT,
    name       TEXT NOT NULL,
    mime       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    width      INTEGER,
    height     INTEGER,
    created_at INTEGER NOT NULL,
    room_id    INTEGER REFERENCES rooms (id) ON DELETE CASCADE,
    seq        INTEGER
);
CREATE INDEX files_by_uploader ON files (uploader, created_at);
CREATE INDEX files_unsent ON files (created_at) WHERE room_id IS NULL;
CREATE INDEX files_by_blob ON files (blob);
CREATE INDEX files_by_thumb ON files (thumb);

-- Bytes each person uploaded, whatever became of the files (a room deleted with its
-- files takes their rows, not these): the daily upload quota is counted from here.
-- Rows older than a day are deleted by the hourly sweep.
CREATE TABLE upload_log (
    user_id TEXT NOT NULL,
    at      INTEGER NOT NULL,
    bytes   INTEGER NOT NULL
);
CREATE INDEX upload_log_by_user ON upload_log (user_id, at);

-- A message's files as it shows them (a JSON array of attachments), NULL when none:
-- history is read without a join.
ALTER TABLE messages ADD COLUMN attachments TEXT;
