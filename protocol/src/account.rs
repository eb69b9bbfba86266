//! The account API: JSON bodies of natter's HTTP endpoints under `/api`.
//!
//! Accounts are plain HTTP, not WebSocket frames: signing in sets an HttpOnly session
//! cookie, which the browser then presents on the WebSocket upgrade by itself (no
//! token ever travels in a URL or in JavaScript). The request bodies are checked with
//! the rules in [`crate::validate`] on both sides; every refusal is an [`ApiError`].

use serde::{Deserialize, Serialize};

use crate::types::UserId;

/// `POST /api/signup`: make an account. Always answered `202` with an [`Accepted`]
/// when the input is valid, whether or not the email was registered before (the
/// owner of a registered address gets a "you already have an account" email instead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignupRequest {
    /// Where the verification link is sent; also what one signs in with.
    pub email: String,
    /// The display name the account keeps (reserved from guests).
    pub name: String,
    /// At least [`crate::validate::MIN_PASSWORD_CHARS`] characters.
    pub password: String,
}

/// `POST /api/login`: sign in. `200` with an [`Account`] and a fresh session cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    /// The account's email (any case).
    pub email: String,
    /// Its password.
    pub password: String,
}

/// `POST /api/verify`: confirm an email address with the token from the emailed link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRequest {
    /// The token from the link.
    pub token: String,
}

/// `POST /api/recover`: email a password-reset link. Always `202` with an [`Accepted`]
/// for a valid address, registered or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoverRequest {
    /// The account's email.
    pub email: String,
}

/// `POST /api/reset`: set a new password with the token from a recovery link. Ends
/// every session of the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetRequest {
    /// The token from the link.
    pub token: String,
    /// The new password.
    pub password: String,
}

/// The signed-in account: answer of `POST /api/login` and `GET /api/session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The user id the account's messages, rooms and history hang on.
    pub user_id: UserId,
    /// Its display name.
    pub name: String,
    /// Its email address.
    pub email: String,
}

/// A request was taken; what happens next is in the email (or nothing, where saying
/// so would reveal whether an address is registered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// What to tell the person.
    pub message: String,
}

/// Every refusal from `/api`: a code for the client, a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong, for code.
    pub code: ApiErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// The form field at fault, when one is (`email`, `name`, `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `rate_limited`: try again after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// Why an `/api` request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiErrorCode {
    /// The body is not the JSON this endpoint takes (`400`).
    BadRequest,
    /// A field breaks its rule; `field` names it (`400`).
    Invalid,
    /// The display name belongs to another account (`409`).
    NameReserved,
    /// The display name is in use by someone online right now (`409`).
    NameTaken,
    /// Email or password is wrong — deliberately not saying which (`401`).
    BadLogin,
    /// The password is right but the email is not verified yet; a fresh link was sent
    /// (`403`).
    NotVerified,
    /// The emailed link is unknown, expired or already used (`400`).
    BadToken,
    /// The request came from a page of another origin (`403`).
    ForeignOrigin,
    /// Too many attempts; `retry_after_ms` says when to try again (`429`).
    RateLimited,
    /// No such endpoint (`404`).
    NotFound,
    /// The endpoint exists but not with this method (`405`).
    MethodNotAllowed,
    /// The request body is larger than the endpoint reads (`413`).
    TooLarge,
    /// The request body did not arrive within the server's deadline (`408`).
    Timeout,
    /// The request's `Host` is not a name this server answers to — a page on another
    /// domain pointed at it (DNS rebinding), or a name its operator has not added
    /// (`421`, on every path, not only `/api`).
    UnknownHost,
    /// An upload came without a way to tell who sent it: no session cookie and no
    /// `Authorization: Guest …` header, or one that is not valid (`401`).
    NotSignedIn,
    /// A picture has more pixels than the server decodes (`--max-image-pixels`);
    /// refused from its header, before decoding (`422`).
    TooManyPixels,
    /// The bytes say this is a picture (JPEG, PNG, GIF, WebP) but it cannot be read
    /// as one (`422`).
    BadImage,
    /// An upload quota is used up — bytes per day or uploads per minute; the message
    /// says which and `retry_after_ms` when to try again (`429`).
    QuotaExceeded,
    /// No such file, or not one this person may fetch (`404`).
    NoSuchFile,
    /// The server failed; try again (`500`).
    Internal,
}
