//! Accounts, sessions, emailed tokens and the outgoing mail queue: the durable half of
//! [`crate::accounts::auth`] and [`crate::accounts::mail`].
//!
//! [`AccountStore`] is a supertrait of [`super::Store`], so every database natter runs
//! on keeps accounts too. SQLite and PostgreSQL share one implementation
//! ([`sql_account_store!`]): the statements are portable SQL with `$n` parameters,
//! numbered in the order they appear. Secrets never reach the database: sessions and
//! tokens are stored as SHA-256 hashes, passwords as argon2id PHC strings.
//!
//! Why one long file: the trait, the row decoders and the one portable-SQL
//! implementation (`sql_account_store!`) of accounts, sessions, tokens and the mail
//! queue must change together whenever a table does.

use async_trait::async_trait;
use natter_protocol::UserId;

use super::{StoreResult, UserRecord};

/// What `users.secret_hash` holds for an account's user: not a SHA-256 hex digest, so
/// no guest secret can ever match it (an account signs in with its password).
pub const ACCOUNT_SECRET_HASH: &str = "!account";

/// A new account: its user row and its sign-in details, created together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// The user row (id, display name; `secret_hash` is [`ACCOUNT_SECRET_HASH`]).
    pub user: UserRecord,
    /// The address as typed.
    pub email: String,
    /// The argon2id PHC string of the password.
    pub password_hash: String,
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// Its user.
    pub user_id: UserId,
    /// Its current display name (the one reserved for it).
    pub name: String,
    /// The address as typed at sign-up.
    pub email: String,
    /// The argon2id PHC string of the password.
    pub password_hash: String,
    /// Whether the address was confirmed through an emailed link.
    pub verified: bool,
}

/// A signed-in browser. The cookie holds the random id; the database only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 (hex) of the session id.
    pub id_hash: String,
    /// Whose session.
    pub user_id: UserId,
    /// When it was made (for the absolute expiry), ms since the epoch.
    pub created_at: i64,
    /// When it was last used (for the idle expiry).
    pub last_seen_at: i64,
}

/// What an emailed token is good for; a token of one purpose never works for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Confirms the address given at sign-up.
    Verify,
    /// Sets a new password.
    Reset,
}

impl TokenPurpose {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::Verify => "verify",
            TokenPurpose::Reset => "reset",
        }
    }
}

/// An email to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail {
    /// The recipient's address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// A queued email, as the mail worker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRecord {
    /// Queue position (ascending = oldest first).
    pub id: i64,
    /// The email.
    pub mail: NewMail,
    /// Delivery attempts so far, including the one this claim is for.
    pub attempts: i64,
}

/// Durable account state. Every time is milliseconds since the epoch, passed in by the
/// caller so expiry rules live in one place ([`crate::accounts::auth`]) and tests can move time.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates the user and the account in one transaction. [`super::StoreError::Conflict`]
    /// when the email or the display name (case-insensitively) is another account's.
    async fn create_account(&self, account: &NewAccount, now: i64) -> StoreResult<()>;
    /// The account registered under an email key ([`natter_protocol::validate::email_key`]).
    async fn account_by_email(&self, email_key: &str) -> StoreResult<Option<AccountRecord>>;
    /// The account of a user, if the user has one.
    async fn account(&self, user: &UserId) -> StoreResult<Option<AccountRecord>>;
    /// Which account holds a display name ([`natter_protocol::validate::name_key`]).
    async fn name_owner(&self, name_key: &str) -> StoreResult<Option<UserId>>;
    /// Records a user's new display name. For an account's user the reservation moves
    /// to the new name in the same transaction, and [`super::StoreError::Conflict`]
    /// says another account holds it. (Whether a guest may use a name is the conversation's
    /// check, [`AccountStore::name_owner`].)
    async fn rename_user(&self, user: &UserId, name: &str) -> StoreResult<()>;
    /// Marks the account's email as confirmed.
    async fn mark_verified(&self, user: &UserId, now: i64) -> StoreResult<()>;
    /// Replaces the password hash and ends every session of the account; returns the
    /// ended sessions' id hashes so their connections can be closed.
    async fn set_password(&self, user: &UserId, password_hash: &str) -> StoreResult<Vec<String>>;

    /// Stores a new session.
    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()>;
    /// Looks a session up by the hash of its id.
    async fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>>;
    /// Records that a session was used now (extends its idle expiry).
    async fn touch_session(&self, id_hash: &str, now: i64) -> StoreResult<()>;
    /// Ends a session; false when there was none.
    async fn delete_session(&self, id_hash: &str) -> StoreResult<bool>;
    /// Deletes sessions last used before `idle_before` or made before
    /// `created_before`, and tokens expired before `now`. Returns how many rows went.
    async fn delete_expired(
        &self,
        idle_before: i64,
        created_before: i64,
        now: i64,
    ) -> StoreResult<u64>;

    /// Stores an emailed token's hash.
    async fn create_token(
        &self,
        token_hash: &str,
        user: &UserId,
        purpose: TokenPurpose,
        expires_at: i64,
    ) -> StoreResult<()>;
    /// Uses a token: atomically marks it used and returns its user, or `None` when it
    /// is unknown, of another purpose, expired or already used (one statement, so two
    /// clicks on one link cannot both succeed).
    async fn use_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now: i64,
    ) -> StoreResult<Option<UserId>>;

    /// Queues an email; the mail worker sends it from `now` on.
    async fn enqueue_mail(&self, mail: &NewMail, now: i64) -> StoreResult<()>;
    /// Up to `limit` queued emails due at `now`, oldest first.
    async fn due_mail(&self, now: i64, limit: u32) -> StoreResult<Vec<MailRecord>>;
    /// Claims a due email for one attempt: counts the attempt and hides it until
    /// `lease_until`, so another worker (another node) does not send it meanwhile.
    /// False when someone else claimed it first.
    async fn claim_mail(&self, id: i64, now: i64, lease_until: i64) -> StoreResult<bool>;
    /// The email was accepted by the SMTP server (or written out): forget it.
    async fn mail_sent(&self, id: i64) -> StoreResult<()>;
    /// Sending failed: try again at `retry_at`.
    async fn mail_failed(&self, id: i64, retry_at: i64, error: &str) -> StoreResult<()>;
    /// How many emails are queued (for the log line when SMTP is down).
    async fn queued_mail(&self) -> StoreResult<u64>;
}

/// The account columns [`account_from_row`] reads (joined with `users` for the name).
pub(crate) const ACCOUNT_SELECT: &str =
    "SELECT a.user_id, u.name, a.email, a.password_hash, a.verified_at \
     FROM accounts a JOIN users u ON u.id = a.user_id";

/// An [`AccountRecord`] from a row of [`ACCOUNT_SELECT`].
pub(crate) fn account_from_row<'r, R>(row: &'r R) -> StoreResult<AccountRecord>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(AccountRecord {
        user_id: UserId(row.try_get("user_id")?),
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        verified: row.try_get::<Option<i64>, _>("verified_at")?.is_some(),
    })
}

/// A [`SessionRecord`] from a `sessions` row.
pub(crate) fn session_from_row<'r, R>(row: &'r R) -> StoreResult<SessionRecord>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(SessionRecord {
        id_hash: row.try_get("id_hash")?,
        user_id: UserId(row.try_get("user_id")?),
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
    })
}

/// A [`MailRecord`] from a `mail_queue` row.
pub(crate) fn mail_from_row<'r, R>(row: &'r R) -> StoreResult<MailRecord>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(MailRecord {
        id: row.try_get("id")?,
        mail: NewMail {
            to: row.try_get("recipient")?,
            subject: row.try_get("subject")?,
            body: row.try_get("body")?,
        },
        attempts: row.try_get("attempts")?,
    })
}

/// Implements [`AccountStore`] for a sqlx-backed store with a `pool` field (reads) and
/// a `writer()` method (the pool writes go through). The statements are the same on
/// both databases.
macro_rules! sql_account_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::accounts::AccountStore for $store {
            async fn create_account(
                &self,
                account: &$crate::store::accounts::NewAccount,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                use natter_protocol::validate::{email_key, name_key};
                let mut tx = self.writer().begin().await?;
                sqlx::query(
                    "INSERT INTO users (id, secret_hash, name, created_at, last_seen_at) \
                     VALUES ($1, $2, $3, $4, $4)",
                )
                .bind(&account.user.id.0)
                .bind(&account.user.secret_hash)
                .bind(&account.user.name)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err($crate::store::conflict_or_database)?;
                sqlx::query(
                    "INSERT INTO accounts (user_id, email, email_key, password_hash, name_key, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&account.user.id.0)
                .bind(&account.email)
                .bind(email_key(&account.email))
                .bind(&account.password_hash)
                .bind(name_key(&account.user.name))
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err($crate::store::conflict_or_database)?;
                tx.commit().await?;
                Ok(())
            }

            async fn account_by_email(
                &self,
                email_key: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::accounts::AccountRecord>> {
                let sql = format!("{} WHERE a.email_key = $1", $crate::store::accounts::ACCOUNT_SELECT);
                let row = sqlx::query(&sql).bind(email_key).fetch_optional(&self.pool).await?;
                row.as_ref().map($crate::store::accounts::account_from_row).transpose()
            }

            async fn account(
                &self,
                user: &natter_protocol::UserId,
            ) -> $crate::store::StoreResult<Option<$crate::store::accounts::AccountRecord>> {
                let sql = format!("{} WHERE a.user_id = $1", $crate::store::accounts::ACCOUNT_SELECT);
                let row = sqlx::query(&sql).bind(&user.0).fetch_optional(&self.pool).await?;
                row.as_ref().map($crate::store::accounts::account_from_row).transpose()
            }

            async fn name_owner(
                &self,
                name_key: &str,
            ) -> $crate::store::StoreResult<Option<natter_protocol::UserId>> {
                let owner: Option<String> =
                    sqlx::query_scalar("SELECT user_id FROM accounts WHERE name_key = $1")
                        .bind(name_key)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(owner.map(natter_protocol::UserId))
            }

            async fn rename_user(
                &self,
                user: &natter_protocol::UserId,
                name: &str,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                sqlx::query("UPDATE accounts SET name_key = $1 WHERE user_id = $2")
                    .bind(natter_protocol::validate::name_key(name))
                    .bind(&user.0)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::store::conflict_or_database)?;
                sqlx::query("UPDATE users SET name = $1 WHERE id = $2")
                    .bind(name)
                    .bind(&user.0)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn mark_verified(
                &self,
                user: &natter_protocol::UserId,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE accounts SET verified_at = $1 WHERE user_id = $2 AND verified_at IS NULL",
                )
                .bind(now)
                .bind(&user.0)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn set_password(
                &self,
                user: &natter_protocol::UserId,
                password_hash: &str,
            ) -> $crate::store::StoreResult<Vec<String>> {
                let mut tx = self.writer().begin().await?;
                sqlx::query("UPDATE accounts SET password_hash = $1 WHERE user_id = $2")
                    .bind(password_hash)
                    .bind(&user.0)
                    .execute(&mut *tx)
                    .await?;
                let ended: Vec<String> =
                    sqlx::query_scalar("DELETE FROM sessions WHERE user_id = $1 RETURNING id_hash")
                        .bind(&user.0)
                        .fetch_all(&mut *tx)
                        .await?;
                tx.commit().await?;
                Ok(ended)
            }

            async fn create_session(
                &self,
                session: &$crate::store::accounts::SessionRecord,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&session.id_hash)
                .bind(&session.user_id.0)
                .bind(session.created_at)
                .bind(session.last_seen_at)
                .execute(self.writer())
                .await
                .map_err($crate::store::conflict_or_database)?;
                Ok(())
            }

            async fn session(
                &self,
                id_hash: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::accounts::SessionRecord>> {
                let row = sqlx::query(
                    "SELECT id_hash, user_id, created_at, last_seen_at FROM sessions WHERE id_hash = $1",
                )
                .bind(id_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map($crate::store::accounts::session_from_row).transpose()
            }

            async fn touch_session(&self, id_hash: &str, now: i64) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
                    .bind(now)
                    .bind(id_hash)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn delete_session(&self, id_hash: &str) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_expired(
                &self,
                idle_before: i64,
                created_before: i64,
                now: i64,
            ) -> $crate::store::StoreResult<u64> {
                let sessions =
                    sqlx::query("DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2")
                        .bind(idle_before)
                        .bind(created_before)
                        .execute(self.writer())
                        .await?;
                let tokens = sqlx::query("DELETE FROM tokens WHERE expires_at < $1")
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                Ok(sessions.rows_affected() + tokens.rows_affected())
            }

            async fn create_token(
                &self,
                token_hash: &str,
                user: &natter_protocol::UserId,
                purpose: $crate::store::accounts::TokenPurpose,
                expires_at: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO tokens (hash, user_id, purpose, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(token_hash)
                .bind(&user.0)
                .bind(purpose.as_str())
                .bind(expires_at)
                .execute(self.writer())
                .await
                .map_err($crate::store::conflict_or_database)?;
                Ok(())
            }

            async fn use_token(
                &self,
                token_hash: &str,
                purpose: $crate::store::accounts::TokenPurpose,
                now: i64,
            ) -> $crate::store::StoreResult<Option<natter_protocol::UserId>> {
                let user: Option<String> = sqlx::query_scalar(
                    "UPDATE tokens SET used_at = $1 \
                     WHERE hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 \
                     RETURNING user_id",
                )
                .bind(now)
                .bind(token_hash)
                .bind(purpose.as_str())
                .fetch_optional(self.writer())
                .await?;
                Ok(user.map(natter_protocol::UserId))
            }

            async fn enqueue_mail(
                &self,
                mail: &$crate::store::accounts::NewMail,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO mail_queue (recipient, subject, body, attempts, next_attempt_at, created_at) \
                     VALUES ($1, $2, $3, 0, $4, $4)",
                )
                .bind(&mail.to)
                .bind(&mail.subject)
                .bind(&mail.body)
                .bind(now)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn due_mail(
                &self,
                now: i64,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::store::accounts::MailRecord>> {
                let rows = sqlx::query(
                    "SELECT id, recipient, subject, body, attempts + 1 AS attempts FROM mail_queue \
                     WHERE next_attempt_at <= $1 ORDER BY id LIMIT $2",
                )
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map($crate::store::accounts::mail_from_row).collect()
            }

            async fn claim_mail(
                &self,
                id: i64,
                now: i64,
                lease_until: i64,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE mail_queue SET attempts = attempts + 1, next_attempt_at = $1 \
                     WHERE id = $2 AND next_attempt_at <= $3",
                )
                .bind(lease_until)
                .bind(id)
                .bind(now)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn mail_sent(&self, id: i64) -> $crate::store::StoreResult<()> {
                sqlx::query("DELETE FROM mail_queue WHERE id = $1")
                    .bind(id)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn mail_failed(
                &self,
                id: i64,
                retry_at: i64,
                error: &str,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE mail_queue SET next_attempt_at = $1, last_error = $2 WHERE id = $3")
                    .bind(retry_at)
                    .bind(error)
                    .bind(id)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn queued_mail(&self) -> $crate::store::StoreResult<u64> {
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mail_queue")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(count.max(0) as u64)
            }
        }
    };
}
pub(crate) use sql_account_store;
