//! Accounts in the browser: the `/api` calls, and the links that arrive by email.
//!
//! The session itself is an HttpOnly cookie that this code never sees: signing in
//! makes the server set it, and the browser presents it on the WebSocket upgrade.

use natter_protocol::account::{
    Accepted, Account, ApiError, ApiErrorCode, LoginRequest, RecoverRequest, ResetRequest,
    SignupRequest, VerifyRequest,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestCredentials, RequestInit, Response};

/// A link from an email, found in the page's address when it was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailLink {
    /// `#verify=<token>`: confirm the address.
    Verify(String),
    /// `#reset=<token>`: choose a new password.
    Reset(String),
}

/// Reads (and removes from the address bar) an emailed link's token. The token sits
/// after `#`, so it never reached the server in the page request.
pub fn take_email_link() -> Option<EmailLink> {
    let location = web_sys::window()?.location();
    let hash = location.hash().ok()?;
    let link = parse_email_link(&hash)?;
    let _ = location.set_hash("");
    Some(link)
}

/// `#verify=abc` → `Verify("abc")`; anything else → `None`.
pub fn parse_email_link(hash: &str) -> Option<EmailLink> {
    let hash = hash.strip_prefix('#')?;
    let (kind, token) = hash.split_once('=')?;
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match kind {
        "verify" => Some(EmailLink::Verify(token.into())),
        "reset" => Some(EmailLink::Reset(token.into())),
        _ => None,
    }
}

/// The signed-in account, or `None` (no cookie, or it expired).
pub async fn current_session() -> Option<Account> {
    call::<(), Account>("GET", "/api/session", None)
        .await
        .ok()
        .flatten()
}

/// `POST /api/signup`.
pub async fn sign_up(request: &SignupRequest) -> Result<Accepted, ApiError> {
    expect_body(call("POST", "/api/signup", Some(request)).await)
}

/// `POST /api/login`: on success the browser holds the session cookie.
pub async fn sign_in(request: &LoginRequest) -> Result<Account, ApiError> {
    expect_body(call("POST", "/api/login", Some(request)).await)
}

/// `POST /api/logout`: ends this browser's session (the server closes its sockets).
pub async fn sign_out() -> Result<(), ApiError> {
    call::<(), serde_json::Value>("POST", "/api/logout", None)
        .await
        .map(|_| ())
}

/// `POST /api/verify`.
pub async fn verify(token: &str) -> Result<Accepted, ApiError> {
    let request = VerifyRequest {
        token: token.into(),
    };
    expect_body(call("POST", "/api/verify", Some(&request)).await)
}

/// `POST /api/recover`.
pub async fn recover(email: &str) -> Result<Accepted, ApiError> {
    let request = RecoverRequest {
        email: email.into(),
    };
    expect_body(call("POST", "/api/recover", Some(&request)).await)
}

/// `POST /api/reset`.
pub async fn reset(token: &str, password: &str) -> Result<Accepted, ApiError> {
    let request = ResetRequest {
        token: token.into(),
        password: password.into(),
    };
    expect_body(call("POST", "/api/reset", Some(&request)).await)
}

fn expect_body<R>(result: Result<Option<R>, ApiError>) -> Result<R, ApiError> {
    result?.ok_or_else(|| failure("The server sent an empty answer."))
}

fn failure(message: &str) -> ApiError {
    ApiError {
        code: ApiErrorCode::Internal,
        message: message.into(),
        field: None,
        retry_after_ms: None,
    }
}

/// One JSON request to this page's server; `Ok(None)` for an empty success (204).
async fn call<B: Serialize, R: DeserializeOwned>(
    method: &str,
    path: &str,
    body: Option<&B>,
) -> Result<Option<R>, ApiError> {
    let unreachable = |_: JsValue| failure("Cannot reach the server; try again.");
    let init = RequestInit::new();
    init.set_method(method);
    init.set_credentials(RequestCredentials::SameOrigin);
    if let Some(body) = body {
        let json = serde_json::to_string(body).map_err(|_| failure("Could not send that."))?;
        let headers = Headers::new().map_err(unreachable)?;
        headers
            .set("Content-Type", "application/json")
            .map_err(unreachable)?;
        init.set_headers(&headers);
        init.set_body(&JsValue::from_str(&json));
    }
    let request = Request::new_with_str_and_init(path, &init).map_err(unreachable)?;
    let window = web_sys::window().ok_or_else(|| failure("No window."))?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(unreachable)?
        .dyn_into()
        .map_err(unreachable)?;
    let text = JsFuture::from(response.text().map_err(unreachable)?)
        .await
        .map_err(unreachable)?
        .as_string()
        .unwrap_or_default();
    let status = response.status();
    if (200..300).contains(&status) {
        if text.is_empty() {
            return Ok(None);
        }
        return serde_json::from_str(&text)
            .map(Some)
            .map_err(|_| failure("The server's answer could not be read."));
    }
    Err(serde_json::from_str::<ApiError>(&text)
        .unwrap_or_else(|_| failure(&format!("The server answered {status}; try again."))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_links_are_read_from_the_hash() {
        assert_eq!(
            parse_email_link("#verify=00ff"),
            Some(EmailLink::Verify("00ff".into()))
        );
        assert_eq!(
            parse_email_link("#reset=abc123"),
            Some(EmailLink::Reset("abc123".into()))
        );
        assert_eq!(parse_email_link("#verify="), None);
        assert_eq!(parse_email_link("#verify=<script>"), None);
        assert_eq!(parse_email_link("#room=12"), None);
        assert_eq!(parse_email_link(""), None);
    }
}
