//! Accounts: passwords, sessions, emailed links and their limits.
//!
//! - Passwords are hashed with argon2id at OWASP's parameters by
//!   [`super::password::PasswordHasher`], off the async workers and a few at a time.
//! - A session id is 128 random bits, given to the browser once in an HttpOnly,
//!   SameSite=Lax cookie ([`SESSION_COOKIE`]) and stored only as its SHA-256. It ends
//!   when unused for `--session-idle-secs` or `--session-max-secs` after signing in;
//!   every sign-in makes a new one (and ends the one the browser had).
//! - Emailed links carry a 128-bit single-use token, stored hashed, that expires.
//! - Answers never tell whether an email is registered: sign-up and recovery answer
//!   the same for every valid address (and do the mail work after answering, so the
//!   time taken does not tell either); a sign-in with an unknown email still spends a
//!   password hash.
//!
//! The HTTP handlers are in [`crate::http::api`]; this module is what they call.
//!
//! Why one long file: every account flow shares the same limits, token and session
//! rules, and reading them side by side is how their promises (no enumeration, single-
//! use links, expiry) are checked; the tests of those rules sit at the end.

use std::sync::Arc;
use std::time::Duration;

use axum::http::header::COOKIE;
use axum::http::HeaderMap;
use natter_protocol::validate;
use natter_protocol::UserId;

use super::mail::Mailer;
use super::password::{HashFailed, PasswordHasher};
use crate::clock::{millis, now_ms};
use crate::hub::RoomHub;
use crate::limits::{Allowance, KeyedLimits};
use crate::secret::digest;
use crate::store::accounts::{
    AccountRecord, NewAccount, NewMail, SessionRecord, TokenPurpose, ACCOUNT_SECRET_HASH,
};
use crate::store::{Store, StoreError, StoreResult, UserRecord};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "natter_session";
/// A session is touched in the store at most this often (it only moves the idle
/// expiry, so minute precision is plenty and saves a write per request).
const TOUCH_EVERY_MS: i64 = 60_000;

/// Sign-ups from one IP.
pub const SIGNUP_PER_IP: Allowance = Allowance {
    burst: 10,
    every: Duration::from_secs(360),
};
/// Sign-in attempts from one IP (any account).
pub const LOGIN_PER_IP: Allowance = Allowance {
    burst: 30,
    every: Duration::from_secs(2),
};
/// Failed sign-ins for one account (from anywhere): guessing a password is slow.
pub const LOGIN_FAILURES_PER_ACCOUNT: Allowance = Allowance {
    burst: 5,
    every: Duration::from_secs(60),
};
/// Recovery requests from one IP.
pub const RECOVER_PER_IP: Allowance = Allowance {
    burst: 5,
    every: Duration::from_secs(720),
};
/// Emails with links (recovery, repeated confirmation, "you already have an account")
/// for one address.
pub const RECOVER_PER_ACCOUNT: Allowance = Allowance {
    burst: 3,
    every: Duration::from_secs(1200),
};
/// Uses of emailed links from one IP (the tokens are unguessable anyway).
pub const LINKS_PER_IP: Allowance = Allowance {
    burst: 20,
    every: Duration::from_secs(3),
};

/// Account settings (from [`crate::Config`]).
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Base of the links in emails, without a trailing slash.
    pub public_url: String,
    /// A session unused this long ends.
    pub session_idle: Duration,
    /// A session ends this long after signing in.
    pub session_max: Duration,
    /// How long a verification link works.
    pub verify_link: Duration,
    /// How long a reset link works.
    pub reset_link: Duration,
    /// A guest not seen this long is deleted (see `--guest-expiry-days`).
    pub guest_expiry: Duration,
    /// Password hashes computed at once.
    pub hash_concurrency: usize,
}

/// Why an account request failed, before it becomes an HTTP answer in [`crate::http::api`].
#[derive(Debug)]
pub enum AuthError {
    /// A field breaks its rule (field, reason).
    Invalid(&'static str, String),
    /// The display name is another account's.
    NameReserved,
    /// The display name is in use by someone online.
    NameTaken,
    /// Wrong email or password.
    BadLogin,
    /// Right password, unconfirmed email (a new link was sent).
    NotVerified,
    /// Unknown, expired or used link.
    BadToken,
    /// Too many attempts; wait this long.
    RateLimited(Duration),
    /// The store or the hasher failed.
    Internal,
}

impl From<HashFailed> for AuthError {
    fn from(_: HashFailed) -> Self {
        AuthError::Internal
    }
}

impl From<StoreError> for AuthError {
    fn from(err: StoreError) -> Self {
        tracing::error!(%err, "account store operation failed");
        AuthError::Internal
    }
}

/// What a sign-in hands back: the account and the new session's id for the cookie.
pub struct SignedIn {
    /// The account.
    pub account: AccountRecord,
    /// The session id (the cookie's value); only its hash is stored.
    pub session_id: String,
}

/// Accounts and sessions; cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<AuthInner>,
}

struct AuthInner {
    store: Arc<dyn Store>,
    /// To reserve names against who is online, and close ended sessions' sockets.
    hub: RoomHub,
    mailer: Mailer,
    hasher: PasswordHasher,
    limits: KeyedLimits,
    settings: AuthSettings,
}

impl Auth {
    /// Accounts on `store`, mailing through `mailer`.
    pub fn new(
        store: Arc<dyn Store>,
        hub: RoomHub,
        mailer: Mailer,
        settings: AuthSettings,
    ) -> Self {
        Auth {
            inner: Arc::new(AuthInner {
                store,
                hub,
                mailer,
                hasher: PasswordHasher::new(settings.hash_concurrency),
                limits: KeyedLimits::default(),
                settings,
            }),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &AuthSettings {
        &self.inner.settings
    }

    /// Takes a token of `allowance` for `key`, or refuses with how long to wait.
    pub fn limit(&self, allowance: Allowance, key: &str) -> Result<(), AuthError> {
        self.inner
            .limits
            .take(allowance, key)
            .map_err(AuthError::RateLimited)
    }

    /// Makes an account (unverified) and emails the verification link. For an email
    /// that already has an account, emails its owner instead — the caller answers the
    /// same either way. Name and field errors are reported (names are public anyway).
    pub async fn sign_up(&self, email: &str, name: &str, password: &str) -> Result<(), AuthError> {
        let email = validate::email(email).map_err(|m| AuthError::Invalid("email", m))?;
        let name = validate::display_name(name).map_err(|m| AuthError::Invalid("name", m))?;
        validate::password(password).map_err(|m| AuthError::Invalid("password", m))?;
        let store = &self.inner.store;
        if store
            .name_owner(&validate::name_key(&name))
            .await?
            .is_some()
        {
            return Err(AuthError::NameReserved);
        }
        if !self.inner.hub.name_free(&name) {
            return Err(AuthError::NameTaken);
        }
        let password_hash = self.inner.hasher.hash(password).await?;
        let account = NewAccount {
            user: UserRecord {
                id: UserId(hex::encode(rand::random::<[u8; 8]>())),
                secret_hash: ACCOUNT_SECRET_HASH.into(),
                name: name.clone(),
            },
            email: email.clone(),
            password_hash,
        };
        match store.create_account(&account, now_ms()).await {
            Ok(()) => {
                self.send_link(&account.user.id, &name, &email, TokenPurpose::Verify)
                    .await
            }
            Err(StoreError::Conflict) => {
                if store
                    .name_owner(&validate::name_key(&name))
                    .await?
                    .is_some()
                {
                    return Err(AuthError::NameReserved);
                }
                // The email is registered: tell its owner, and nobody else (a few
                // times at most, or sign-ups could flood the owner's inbox).
                let key = validate::email_key(&email);
                let existing = store.account_by_email(&key).await?;
                let allowed = self.limit(RECOVER_PER_ACCOUNT, &key).is_ok();
                if let Some(existing) = existing.filter(|_| allowed) {
                    self.send_link(
                        &existing.user_id,
                        &existing.name,
                        &existing.email,
                        TokenPurpose::Reset,
                    )
                    .await?;
                }
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Confirms an email with a verification token.
    pub async fn verify_email(&self, token: &str) -> Result<(), AuthError> {
        let store = &self.inner.store;
        let user = store
            .use_token(&digest(token), TokenPurpose::Verify, now_ms())
            .await?
            .ok_or(AuthError::BadToken)?;
        store.mark_verified(&user, now_ms()).await?;
        Ok(())
    }

    /// Signs in: checks the password (with the per-account failure limit), then makes
    /// a new session. `previous` is the session id the browser held, which ends.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        previous: Option<&str>,
    ) -> Result<SignedIn, AuthError> {
        // Validated before it keys a limiter: no address that breaks the rules can be
        // an account, and the limiter's memory holds only short, real-looking keys.
        let Ok(email) = validate::email(email) else {
            return Err(AuthError::BadLogin);
        };
        let key = validate::email_key(&email);
        self.limit(LOGIN_FAILURES_PER_ACCOUNT, &key)?;
        let store = &self.inner.store;
        let account = store.account_by_email(&key).await?;
        let stored = account.as_ref().map(|a| a.password_hash.as_str());
        if !self.inner.hasher.verify(password, stored).await? {
            return Err(AuthError::BadLogin);
        }
        let Some(account) = account else {
            return Err(AuthError::BadLogin);
        };
        self.inner.limits.refund(LOGIN_FAILURES_PER_ACCOUNT, &key);
        if !account.verified {
            // A fresh link, unless this address got several lately: whoever knows the
            // password must not be able to flood the inbox.
            if self.limit(RECOVER_PER_ACCOUNT, &key).is_ok() {
                self.send_link(
                    &account.user_id,
                    &account.name,
                    &account.email,
                    TokenPurpose::Verify,
                )
                .await?;
            }
            return Err(AuthError::NotVerified);
        }
        if let Some(previous) = previous {
            self.end_session(previous).await?;
        }
        let session_id = random_token();
        let now = now_ms();
        store
            .create_session(&SessionRecord {
                id_hash: digest(&session_id),
                user_id: account.user_id.clone(),
                created_at: now,
                last_seen_at: now,
            })
            .await?;
        Ok(SignedIn {
            account,
            session_id,
        })
    }

    /// The session a request's cookie names, if it is valid now (an expired one is
    /// deleted). Using it extends its idle expiry.
    pub async fn session(&self, headers: &HeaderMap) -> StoreResult<Option<SessionRecord>> {
        let Some(id) = session_cookie(headers) else {
            return Ok(None);
        };
        let id_hash = digest(id);
        let store = &self.inner.store;
        let Some(session) = store.session(&id_hash).await? else {
            return Ok(None);
        };
        let now = now_ms();
        let settings = &self.inner.settings;
        let idle_for = now - session.last_seen_at;
        let age = now - session.created_at;
        if idle_for > millis(settings.session_idle) || age > millis(settings.session_max) {
            store.delete_session(&id_hash).await?;
            return Ok(None);
        }
        if idle_for > TOUCH_EVERY_MS {
            store.touch_session(&id_hash, now).await?;
        }
        Ok(Some(session))
    }

    /// Records, in the background, that an open connection of this session is in use,
    /// so the session does not idle out under a person who is chatting.
    pub fn touch_later(&self, id_hash: &str) {
        let store = self.inner.store.clone();
        let id_hash = id_hash.to_string();
        tokio::spawn(async move {
            if let Err(err) = store.touch_session(&id_hash, now_ms()).await {
                tracing::warn!(%err, "could not renew a session");
            }
        });
    }

    /// The account behind a session.
    pub async fn account(&self, user: &UserId) -> StoreResult<Option<AccountRecord>> {
        self.inner.store.account(user).await
    }

    /// Ends the session with this id (the cookie's value) and closes its sockets.
    pub async fn end_session(&self, session_id: &str) -> StoreResult<()> {
        let id_hash = digest(session_id);
        self.inner.store.delete_session(&id_hash).await?;
        self.inner.hub.end_sessions(vec![id_hash]);
        Ok(())
    }

    /// Emails a reset link if the address has an account. Returns at once: the work
    /// happens afterwards, so the answer takes the same time for every address.
    pub fn recover(&self, email: &str) -> Result<(), AuthError> {
        let email = validate::email(email).map_err(|m| AuthError::Invalid("email", m))?;
        let key = validate::email_key(&email);
        self.limit(RECOVER_PER_ACCOUNT, &key)?;
        let auth = self.clone();
        tokio::spawn(async move {
            let found = match auth.inner.store.account_by_email(&key).await {
                Ok(found) => found,
                Err(err) => {
                    tracing::error!(%err, "recovery lookup failed");
                    return;
                }
            };
            if let Some(account) = found {
                let sent = auth
                    .send_link(
                        &account.user_id,
                        &account.name,
                        &account.email,
                        TokenPurpose::Reset,
                    )
                    .await;
                if sent.is_err() {
                    tracing::error!("could not queue a recovery email");
                }
            }
        });
        Ok(())
    }

    /// Sets a new password with a reset token; ends every session of the account (and
    /// closes their sockets). The emailed link proves the address, so it counts as
    /// verified from now on.
    pub async fn reset_password(&self, token: &str, password: &str) -> Result<(), AuthError> {
        validate::password(password).map_err(|m| AuthError::Invalid("password", m))?;
        let store = &self.inner.store;
        let user = store
            .use_token(&digest(token), TokenPurpose::Reset, now_ms())
            .await?
            .ok_or(AuthError::BadToken)?;
        let password_hash = self.inner.hasher.hash(password).await?;
        let ended = store.set_password(&user, &password_hash).await?;
        store.mark_verified(&user, now_ms()).await?;
        self.inner.hub.end_sessions(ended);
        Ok(())
    }

    /// Deletes expired sessions and tokens (run now and then).
    pub async fn delete_expired(&self) -> StoreResult<u64> {
        let now = now_ms();
        let settings = &self.inner.settings;
        let sessions = self
            .inner
            .store
            .delete_expired(
                now.saturating_sub(millis(settings.session_idle)),
                now.saturating_sub(millis(settings.session_max)),
                now,
            )
            .await?;
        // Guests gone for the expiry, and sign-ups whose verification link ran out
        // (their name and email must not stay reserved).
        let users = self
            .inner
            .store
            .delete_stale(
                now.saturating_sub(millis(settings.guest_expiry)),
                now.saturating_sub(millis(settings.verify_link)),
            )
            .await?;
        Ok(sessions + users)
    }

    /// Stores a fresh token and queues the email carrying its link.
    async fn send_link(
        &self,
        user: &UserId,
        name: &str,
        email: &str,
        purpose: TokenPurpose,
    ) -> Result<(), AuthError> {
        let settings = &self.inner.settings;
        let token = random_token();
        let lifetime = match purpose {
            TokenPurpose::Verify => settings.verify_link,
            TokenPurpose::Reset => settings.reset_link,
        };
        self.inner
            .store
            .create_token(
                &digest(&token),
                user,
                purpose,
                now_ms().saturating_add(millis(lifetime)),
            )
            .await?;
        let mail = link_email(&settings.public_url, name, email, purpose, &token, lifetime);
        self.inner.mailer.send(mail).await?;
        Ok(())
    }
}

/// The email carrying a link. Links put the token after `#`, so it never reaches a
/// server log or a `Referer` header.
fn link_email(
    public_url: &str,
    name: &str,
    email: &str,
    purpose: TokenPurpose,
    token: &str,
    lifetime: Duration,
) -> NewMail {
    let valid_for = describe(lifetime);
    let (subject, body) = match purpose {
        TokenPurpose::Verify => (
            "Confirm your email for natter",
            format!(
                "Hi {name},\n\nconfirm your email address to finish signing up:\n\n\
                 {public_url}/#verify={token}\n\n\
                 The link works once, for {valid_for}. If you did not sign up, ignore this email.\n"
            ),
        ),
        TokenPurpose::Reset => (
            "Reset your natter password",
            format!(
                "Hi {name},\n\nsomeone (hopefully you) asked to reset the password of the natter \
                 account with this address, or to sign up with it again. To choose a new \
                 password, open:\n\n{public_url}/#reset={token}\n\n\
                 The link works once, for {valid_for}. If it was not you, ignore this email: \
                 your password stays as it is.\n"
            ),
        ),
    };
    NewMail {
        to: email.to_string(),
        subject: subject.into(),
        body,
    }
}

/// "24 hours", "1 hour", "10 minutes", "30 seconds".
fn describe(lifetime: Duration) -> String {
    let secs = lifetime.as_secs();
    let (n, unit) = if secs >= 3600 && secs % 3600 == 0 {
        (secs / 3600, "hour")
    } else if secs >= 60 && secs % 60 == 0 {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// 128 random bits as 32 hex characters: session ids and emailed tokens.
fn random_token() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// The session id in a request's `Cookie` header(s).
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// The `Set-Cookie` value that hands the browser a session: HttpOnly (no script reads
/// it), SameSite=Lax (other sites' requests do not carry it), Secure over HTTPS.
pub fn session_set_cookie(session_id: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn session_clear_cookie(secure: bool) -> String {
    session_set_cookie("", Duration::ZERO, secure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; natter_session=abc; b=2"),
        );
        assert_eq!(session_cookie(&headers), Some("abc"));
        headers.insert(COOKIE, HeaderValue::from_static("natter_session="));
        assert_eq!(session_cookie(&headers), None);
        headers.insert(COOKIE, HeaderValue::from_static("other_natter_session=x"));
        assert_eq!(session_cookie(&headers), None);
    }

    #[test]
    fn cookie_attributes() {
        let cookie = session_set_cookie("id", Duration::from_secs(60), false);
        assert_eq!(
            cookie,
            "natter_session=id; Path=/; HttpOnly; SameSite=Lax; Max-Age=60"
        );
        assert!(session_set_cookie("id", Duration::from_secs(60), true).ends_with("; Secure"));
        assert!(session_clear_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn lifetimes_read_naturally() {
        assert_eq!(describe(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(describe(Duration::from_secs(3600)), "1 hour");
        assert_eq!(describe(Duration::from_secs(120)), "2 minutes");
        assert_eq!(describe(Duration::from_secs(1)), "1 second");
    }
}
