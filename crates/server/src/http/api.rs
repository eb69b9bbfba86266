//! The account endpoints under `/api` (JSON over HTTP; see docs/protocol.md):
//!
//! | endpoint | answer |
//! |---|---|
//! | `POST /api/signup` | `202` [`Accepted`], the same for new and registered emails |
//! | `POST /api/verify` | `200` [`Accepted`] / `400 bad_token` |
//! | `POST /api/login` | `200` [`Account`] + session cookie / `401 bad_login` / `403 not_verified` |
//! | `POST /api/logout` | `204`, cookie cleared, the session's sockets closed with 4001 |
//! | `GET /api/session` | `200` [`Account`] / `204` a guest (no valid session; not an error) |
//! | `POST /api/recover` | `202` [`Accepted`], the same for every valid email |
//! | `POST /api/reset` | `200` [`Accepted`] / `400 bad_token`; ends every session |
//!
//! Every refusal is an [`ApiError`] — including what the framework would otherwise
//! answer itself: an unknown path (`404 not_found`, `/api` and `/api/` too), a wrong
//! method (`405 method_not_allowed`), a body over 16 KiB (`413 too_large`) or one not
//! sent within `--body-timeout-ms` (`408 timeout`). Requests from a browser page of
//! another origin are refused (`403 foreign_origin`) before anything else — before the
//! body is read — like the WebSocket upgrade; limits per IP and per account answer
//! `429` with `Retry-After`.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{CONTENT_LENGTH, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use natter_protocol::account::{
    Accepted, Account, ApiError, ApiErrorCode, LoginRequest, RecoverRequest, ResetRequest,
    SignupRequest, VerifyRequest,
};
use serde::de::DeserializeOwned;

use super::request::{client_ip, origin_allowed};
use crate::accounts::auth::{
    session_clear_cookie, session_cookie, session_set_cookie, AuthError, LINKS_PER_IP,
    LOGIN_PER_IP, RECOVER_PER_IP, SIGNUP_PER_IP,
};
use crate::limits::{ip_key, Allowance};
use crate::AppState;

/// Largest request body the account endpoints read.
const MAX_BODY: usize = 16 * 1024;

/// The `/api` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/signup", post(signup))
        .route("/api/verify", post(verify))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/session", get(session))
        .route("/api/recover", post(recover))
        .route("/api/reset", post(reset))
        .route("/api", any(unknown_endpoint))
        .route("/api/", any(unknown_endpoint))
        .route("/api/{*unknown}", any(unknown_endpoint))
        .method_not_allowed_fallback(wrong_method)
}

/// A refusal on its way out: status, body and, for limits, `Retry-After`.
pub(super) struct Refusal(pub(super) StatusCode, pub(super) ApiError);

impl Refusal {
    pub(super) fn new(status: StatusCode, code: ApiErrorCode, message: impl Into<String>) -> Self {
        Refusal(
            status,
            ApiError {
                code,
                message: message.into(),
                field: None,
                retry_after_ms: None,
            },
        )
    }
}

impl From<AuthError> for Refusal {
    fn from(err: AuthError) -> Self {
        use ApiErrorCode as C;
        match err {
            AuthError::Invalid(field, message) => {
                let mut refusal = Refusal::new(StatusCode::BAD_REQUEST, C::Invalid, message);
                refusal.1.field = Some(field.into());
                refusal
            }
            AuthError::NameReserved => {
                let mut refusal = Refusal::new(
                    StatusCode::CONFLICT,
                    C::NameReserved,
                    "That name belongs to another account.",
                );
                refusal.1.field = Some("name".into());
                refusal
            }
            AuthError::NameTaken => {
                let mut refusal = Refusal::new(
                    StatusCode::CONFLICT,
                    C::NameTaken,
                    "Someone online is using that name right now.",
                );
                refusal.1.field = Some("name".into());
                refusal
            }
            AuthError::BadLogin => Refusal::new(
                StatusCode::UNAUTHORIZED,
                C::BadLogin,
                "That email and password do not match an account.",
            ),
            AuthError::NotVerified => Refusal::new(
                StatusCode::FORBIDDEN,
                C::NotVerified,
                "Confirm your email first: we sent you a new link.",
            ),
            AuthError::BadToken => Refusal::new(
                StatusCode::BAD_REQUEST,
                C::BadToken,
                "This link has expired or was already used. Ask for a new one.",
            ),
            AuthError::RateLimited(wait) => {
                let mut refusal = Refusal::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    C::RateLimited,
                    "Too many attempts; wait a little and try again.",
                );
                refusal.1.retry_after_ms =
                    Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1));
                refusal
            }
            AuthError::Internal => Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                C::Internal,
                "The server could not complete that; try again.",
            ),
        }
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(err: crate::store::StoreError) -> Self {
        AuthError::from(err).into()
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let Refusal(status, error) = self;
        if let Some(kind) = refusal_kind(error.code) {
            crate::telemetry::refused(kind);
        }
        let retry_after = error
            .retry_after_ms
            .map(|ms| ms.div_ceil(1000).to_string())
            .and_then(|secs| HeaderValue::from_str(&secs).ok());
        let mut response = (status, Json(error)).into_response();
        if let Some(secs) = retry_after {
            response.headers_mut().insert(RETRY_AFTER, secs);
        }
        response
    }
}

/// The `kind` label in `natter_refusals_total` of a refusal by a limit (others —
/// a wrong password, a bad body — are answers, not limits).
fn refusal_kind(code: ApiErrorCode) -> Option<&'static str> {
    match code {
        ApiErrorCode::RateLimited => Some("account_rate_limit"),
        ApiErrorCode::ForeignOrigin => Some("foreign_origin"),
        ApiErrorCode::TooLarge => Some("body_too_large"),
        ApiErrorCode::Timeout => Some("body_timeout"),
        _ => None,
    }
}

type ApiResult = Result<Response, Refusal>;

/// What every handler checks first: the Origin, then the per-IP allowance.
pub(super) fn admit(
    app: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    allowance: Option<Allowance>,
) -> Result<(), Refusal> {
    if !origin_allowed(headers, &app.config.allowed_origins) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            ApiErrorCode::ForeignOrigin,
            "Requests from other sites are not accepted.",
        ));
    }
    if let Some(allowance) = allowance {
        let ip = ip_key(client_ip(peer.ip(), headers, &app.config.trusted_proxies));
        app.auth.limit(allowance, &ip.to_string())?;
    }
    Ok(())
}

/// Reads a JSON body of at most [`MAX_BODY`] bytes within `--body-timeout-ms`; too
/// big is `413 too_large`, too slow `408 timeout`, not this endpoint's JSON
/// `400 bad_request`.
async fn read_json<T: DeserializeOwned>(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, Refusal> {
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ApiErrorCode::TooLarge,
            format!("A request body may be at most {} KiB.", MAX_BODY / 1024),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY as u64) {
        return Err(too_large());
    }
    let read = axum::body::to_bytes(body, MAX_BODY);
    let bytes = match tokio::time::timeout(app.config.body_timeout(), read).await {
        Ok(Ok(bytes)) => bytes,
        // Over the limit while streaming, or the client went away mid-body.
        Ok(Err(_)) => return Err(too_large()),
        Err(_) => {
            return Err(Refusal::new(
                StatusCode::REQUEST_TIMEOUT,
                ApiErrorCode::Timeout,
                "The request body did not arrive in time.",
            ))
        }
    };
    serde_json::from_slice(&bytes).map_err(|err| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            ApiErrorCode::BadRequest,
            format!("Could not read the request: {err}"),
        )
    })
}

fn accepted(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(Accepted {
            message: message.into(),
        }),
    )
        .into_response()
}

/// Whether cookies must be `Secure`: the public URL is HTTPS, or a trusted proxy says
/// the browser came over HTTPS.
fn secure(app: &AppState, peer: SocketAddr, headers: &HeaderMap) -> bool {
    if app.auth.settings().public_url.starts_with("https://") {
        return true;
    }
    app.config.trusted_proxies.contains(&peer.ip())
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

async fn signup(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    admit(&app, peer, &headers, Some(SIGNUP_PER_IP))?;
    let request: SignupRequest = read_json(&app, &headers, body).await?;
    app.auth
        .sign_up(&request.email, &request.name, &request.password)
        .await?;
    Ok(accepted(
        StatusCode::ACCEPTED,
        "Check your email: we sent a link to finish signing up.",
    ))
}

async fn verify(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    admit(&app, peer, &headers, Some(LINKS_PER_IP))?;
    let request: VerifyRequest = read_json(&app, &headers, body).await?;
    app.auth.verify_email(&request.token).await?;
    Ok(accepted(
        StatusCode::OK,
        "Your email is confirmed. Sign in to keep your name.",
    ))
}

async fn login(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    admit(&app, peer, &headers, Some(LOGIN_PER_IP))?;
    let request: LoginRequest = read_json(&app, &headers, body).await?;
    let signed_in = app
        .auth
        .sign_in(&request.email, &request.password, session_cookie(&headers))
        .await?;
    let cookie = session_set_cookie(
        &signed_in.session_id,
        app.auth.settings().session_max,
        secure(&app, peer, &headers),
    );
    let account = Account {
        user_id: signed_in.account.user_id,
        name: signed_in.account.name,
        email: signed_in.account.email,
    };
    let mut response = Json(account).into_response();
    set_cookie(&mut response, &cookie);
    Ok(response)
}

async fn logout(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> ApiResult {
    admit(&app, peer, &headers, None)?;
    if let Some(session_id) = session_cookie(&headers) {
        app.auth.end_session(session_id).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookie(
        &mut response,
        &session_clear_cookie(secure(&app, peer, &headers)),
    );
    Ok(response)
}

async fn session(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> ApiResult {
    admit(&app, peer, &headers, None)?;
    let account = match app.auth.session(&headers).await? {
        Some(session) => app.auth.account(&session.user_id).await?,
        None => None,
    };
    match account {
        Some(account) => Ok(Json(Account {
            user_id: account.user_id,
            name: account.name,
            email: account.email,
        })
        .into_response()),
        None => {
            // A guest asking is the normal case, not a failure: no error status, so a
            // visit logs nothing in the browser's console.
            let mut guest = StatusCode::NO_CONTENT.into_response();
            if session_cookie(&headers).is_some() {
                set_cookie(
                    &mut guest,
                    &session_clear_cookie(secure(&app, peer, &headers)),
                );
            }
            Ok(guest)
        }
    }
}

async fn recover(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    admit(&app, peer, &headers, Some(RECOVER_PER_IP))?;
    let request: RecoverRequest = read_json(&app, &headers, body).await?;
    app.auth.recover(&request.email)?;
    Ok(accepted(
        StatusCode::ACCEPTED,
        "If that address has an account, we sent it a link to choose a new password.",
    ))
}

async fn reset(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    admit(&app, peer, &headers, Some(LINKS_PER_IP))?;
    let request: ResetRequest = read_json(&app, &headers, body).await?;
    app.auth
        .reset_password(&request.token, &request.password)
        .await?;
    Ok(accepted(
        StatusCode::OK,
        "Your password is changed and every device was signed out. Sign in with the new one.",
    ))
}

/// Anything else under `/api` is a JSON 404, not the web client's page.
async fn unknown_endpoint() -> Refusal {
    Refusal::new(
        StatusCode::NOT_FOUND,
        ApiErrorCode::NotFound,
        "There is no such endpoint.",
    )
}

/// An endpoint called with the wrong method: a JSON 405 (axum's own is empty).
pub(super) async fn wrong_method() -> Refusal {
    Refusal::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ApiErrorCode::MethodNotAllowed,
        "This endpoint does not take that method.",
    )
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}
