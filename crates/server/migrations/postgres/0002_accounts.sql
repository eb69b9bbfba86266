-- Accounts: a user row (as for guests) plus sign-in details. The display name an
-- account uses is reserved by `name_key`, so no guest can take it while it is offline.
CREATE TABLE accounts (
    user_id       TEXT PRIMARY KEY REFERENCES users (id),
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    name_key      TEXT NOT NULL UNIQUE,
    verified_at   BIGINT,
    created_at    BIGINT NOT NULL
);

-- Signed-in browsers: only the SHA-256 of the cookie's random id is kept.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES accounts (user_id),
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Emailed single-use tokens (verification, password reset), hashed like sessions.
CREATE TABLE tokens (
    hash       TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES accounts (user_id),
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify', 'reset')),
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

-- Outgoing email, kept until the SMTP server accepted it (survives restarts).
CREATE TABLE mail_queue (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX mail_queue_due ON mail_queue (next_attempt_at);
