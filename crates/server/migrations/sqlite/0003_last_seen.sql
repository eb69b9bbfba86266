-- When each user last said hello (written at most once a day), so identities nobody
-- uses any more can expire: a guest gone for `--guest-expiry-days` is deleted.
ALTER TABLE users ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;
UPDATE users SET last_seen_at = created_at;
CREATE INDEX users_by_last_seen ON users (last_seen_at);
