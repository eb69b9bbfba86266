//! Files over HTTP (see docs/protocol.md "Files"):
//!
//! | endpoint | answer |
//! |---|---|
//! | `POST /api/uploads?name=…` (the file as the raw body) | `201` [`Attachment`] / `401 not_signed_in` / `413 too_large` / `422 too_many_pixels`, `bad_image` / `429 quota_exceeded` |
//! | `GET /api/files/{id}` | the file (ranges, `ETag`) / `404 no_such_file` |
//! | `GET /api/files/{id}/thumb` | a picture's thumbnail (the picture when it is small) / `404` |
//!
//! **Who uploads:** the person the WebSocket is — a signed-in account by its session
//! cookie, a guest by `Authorization: Guest <user id>:<secret>`, the identity `ready`
//! gave it (the secret is checked against its stored digest). The Origin is checked
//! like every `/api` request, before the body is read.
//!
//! **Who fetches:** whoever holds the URL. A file id is 128 random bits and is only
//! ever sent to the people who can see the message carrying it (and its uploader), so
//! it cannot be guessed or listed; a URL someone copies elsewhere shows that one file
//! to whoever gets it — a capability, like a shared link.
//!
//! **How it is served:** with the server's own `Content-Type`, `nosniff`,
//! `Content-Security-Policy: sandbox; default-src 'none'` (nothing in it runs, even
//! opened directly), `inline` only for JPEG, PNG and GIF — every other type, SVG and
//! HTML included, is an `attachment` — ranges and `ETag` (tower-http's `ServeFile`),
//! and a year's private caching (an id always names the same bytes).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_SECURITY_POLICY,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use natter_protocol::account::ApiErrorCode;
use natter_protocol::{FileId, UserId};
use serde::Deserialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::api::{admit, Refusal};
use super::request::client_ip;
use crate::files::picture::{thumbnail_mime, PictureError};
use crate::files::{is_file_id, UploadError};
use crate::quota::Quota;
use crate::secret::digest;
use crate::AppState;

/// The policy of a served file: nothing in it may run or load, even opened on its own.
const SANDBOXED: &str = "sandbox; default-src 'none'";
/// Types shown in the page (`inline`); every other file is a download.
const INLINE_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/gif"];

/// The file routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/uploads", post(upload))
        .route("/api/files/{id}", get(original))
        .route("/api/files/{id}/thumb", get(thumbnail))
        .method_not_allowed_fallback(super::api::wrong_method)
}

/// `?name=` of an upload.
#[derive(Debug, Deserialize)]
struct UploadQuery {
    #[serde(default)]
    name: String,
}

/// `POST /api/uploads`: the body is the file.
async fn upload(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    admit(&app, peer, &headers, None)?;
    let Query(query) = query.map_err(|err| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            ApiErrorCode::BadRequest,
            format!("Say the file's name once, as ?name=…: {err}"),
        )
    })?;
    let uploader = uploader(&app, &headers).await?;
    let limit = app.files.settings().max_upload_bytes;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(UploadError::TooLarge { limit }.into());
    }
    let ip = client_ip(peer.ip(), &headers, &app.config.trusted_proxies);
    if let Err(wait) = app.quotas.take(Quota::Uploads, &uploader, ip) {
        crate::telemetry::refused(Quota::Uploads.metric_kind());
        let mut refusal = Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            ApiErrorCode::QuotaExceeded,
            Quota::Uploads.refusal(wait),
        );
        refusal.1.retry_after_ms = Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1));
        return Err(refusal);
    }
    let file = app.files.upload(&uploader, &query.name, body).await?;
    Ok((StatusCode::CREATED, Json(file.attachment())).into_response())
}

/// Who is uploading: the session cookie's account, or the guest whose id and secret
/// come in `Authorization: Guest <id>:<secret>`.
async fn uploader(app: &AppState, headers: &HeaderMap) -> Result<UserId, Refusal> {
    if let Some(session) = app.auth.session(headers).await? {
        return Ok(session.user_id);
    }
    let refused = || {
        Refusal::new(
            StatusCode::UNAUTHORIZED,
            ApiErrorCode::NotSignedIn,
            "Say who you are: sign in, or send your guest identity (Authorization: Guest <id>:<secret>).",
        )
    };
    let credentials = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Guest "))
        .and_then(|v| v.split_once(':'))
        .filter(|(id, secret)| id.len() <= 64 && secret.len() <= 128);
    let Some((id, secret)) = credentials else {
        return Err(refused());
    };
    match app.hub.store().find_user(&UserId(id.into())).await? {
        Some(user) if user.secret_hash == digest(secret) => Ok(user.id),
        _ => Err(refused()),
    }
}

impl From<UploadError> for Refusal {
    fn from(err: UploadError) -> Self {
        use ApiErrorCode as C;
        match err {
            UploadError::TooLarge { limit } => Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                C::TooLarge,
                format!("Files are at most {}.", megabytes(limit)),
            ),
            UploadError::OverDailyQuota { limit } => {
                crate::telemetry::refused("quota_upload_bytes");
                let mut refusal = Refusal::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    C::QuotaExceeded,
                    format!(
                        "You uploaded {} in the last 24 hours, as much as one person may.",
                        megabytes(limit)
                    ),
                );
                refusal.1.retry_after_ms = Some(3_600_000);
                refusal
            }
            UploadError::Picture(PictureError::TooManyPixels {
                width,
                height,
                limit,
            }) => Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                C::TooManyPixels,
                format!(
                    "This picture is {width} × {height} pixels; pictures may have at most {} million.",
                    limit / 1_000_000
                ),
            ),
            UploadError::Picture(PictureError::Unreadable(why)) => Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                C::BadImage,
                format!("This looks like a picture but cannot be read ({why})."),
            ),
            UploadError::Interrupted(why) => Refusal::new(
                StatusCode::BAD_REQUEST,
                C::BadRequest,
                format!("The upload did not arrive whole: {why}."),
            ),
            UploadError::Disk(err) => {
                tracing::error!(%err, "could not store an upload");
                Refusal::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    C::Internal,
                    "The server could not store the file; try again.",
                )
            }
            UploadError::Store(err) => err.into(),
        }
    }
}

/// "25 MB", "1.5 GB".
fn megabytes(bytes: u64) -> String {
    if bytes >= 1_000_000_000 {
        format!("{:.1} GB", bytes as f64 / 1e9)
    } else {
        format!("{} MB", bytes / 1_000_000)
    }
}

/// `GET /api/files/{id}`.
async fn original(
    State(app): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, Refusal> {
    serve(&app, &id, false, request).await
}

/// `GET /api/files/{id}/thumb`.
async fn thumbnail(
    State(app): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, Refusal> {
    serve(&app, &id, true, request).await
}

async fn serve(
    app: &AppState,
    id: &str,
    thumb: bool,
    request: Request,
) -> Result<Response, Refusal> {
    let missing = || {
        Refusal::new(
            StatusCode::NOT_FOUND,
            ApiErrorCode::NoSuchFile,
            "There is no such file.",
        )
    };
    if !is_file_id(id) {
        return Err(missing());
    }
    let Some(served) = app.files.served(&FileId(id.into()), thumb).await? else {
        return Err(missing());
    };
    let mime_type = if served.thumbnail {
        thumbnail_mime(&served.file.mime).to_string()
    } else {
        served.file.mime.clone()
    };
    let mime: mime::Mime = mime_type.parse().unwrap_or(mime::APPLICATION_OCTET_STREAM);
    let response = match ServeFile::new_with_mime(&served.path, &mime)
        .oneshot(request)
        .await
    {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    };
    if response.status() == StatusCode::NOT_FOUND {
        tracing::error!(file = %id, path = %served.path.display(), "a file's bytes went missing");
        return Err(missing());
    }
    let mut response = response.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(SANDBOXED));
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    let inline = INLINE_TYPES.contains(&mime_type.as_str());
    if let Ok(disposition) = HeaderValue::from_str(&disposition(inline, &served.file.name)) {
        headers.insert(CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}

/// `inline` or `attachment`, with the name in ASCII and in full (RFC 6266 / 5987).
fn disposition(inline: bool, name: &str) -> String {
    let kind = if inline { "inline" } else { "attachment" };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disposition_never_breaks_out_of_its_quotes() {
        assert_eq!(
            disposition(false, "a\"b\\c é.pdf"),
            "attachment; filename=\"a_b_c _.pdf\"; filename*=UTF-8''a%22b%5Cc%20%C3%A9.pdf"
        );
        assert!(disposition(true, "x.jpg").starts_with("inline; "));
    }
}
