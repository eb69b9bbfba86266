//! The web client's files: the page with its Content-Security-Policy, the bundle
//! compressed and cached for good, and honest 404s.
//!
//! - **The page** (`/`, `/index.html` and every path without a file extension, for the
//!   SPA's own routes) is read from the static directory per request (it is ~2 KB),
//!   and its policy is computed from it: trunk's bootstrap is an inline `<script>`, so
//!   the policy allows exactly that script by its SHA-256 and nothing else inline.
//!   `index.html` is `no-cache` (revalidated each visit) so a new release is picked up.
//! - **The bundle** (`.js`, `.wasm`, `.css`, named with trunk's content hash) is served
//!   from the `.br` or `.gz` file `cargo xtask` builds beside each one when the browser
//!   accepts it, and cached `immutable` for a year: a new build has new names.
//! - **A missing file** (a path with an extension: `/favicon.ico`, an old bundle) is a
//!   plain 404, not the page with 200 — a script tag must not receive HTML.

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, VARY};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use sha2::{Digest, Sha256};
use tower_http::services::ServeDir;

/// `Cache-Control` of files whose name carries their content hash.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything else: use it, but ask first whether it changed.
const REVALIDATE: &str = "no-cache";

/// Where the web client's files are.
#[derive(Debug, Clone)]
struct Site {
    dir: PathBuf,
}

/// The web client: the page at `/` and for the SPA's routes, its files from `dir`.
pub fn routes<S: Clone + Send + Sync + 'static>(dir: PathBuf) -> Router<S> {
    let site = Site { dir: dir.clone() };
    let missing: axum::routing::MethodRouter =
        axum::routing::get(page_or_missing).with_state(site.clone());
    let files = ServeDir::new(&dir)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(false)
        .fallback(missing);
    Router::new()
        .route("/", axum::routing::get(page).with_state(site.clone()))
        .route("/index.html", axum::routing::get(page).with_state(site))
        .fallback_service(files)
        .layer(middleware::from_fn(cache_control))
}

/// The page, with the policy that lets exactly its own inline scripts run.
async fn page(State(site): State<Site>) -> Response {
    let html = match tokio::fs::read_to_string(site.dir.join("index.html")).await {
        Ok(html) => html,
        Err(_) => {
            return (
                StatusCode::NOT_FOUND,
                "The web client is not built; run `cargo xtask run`.",
            )
                .into_response()
        }
    };
    let policy = content_security_policy(&html);
    let mut response = ([(CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(CONTENT_SECURITY_POLICY, policy);
    }
    response
}

/// A path ServeDir did not find: a file (with an extension) is missing → 404; a route
/// of the SPA (`/reset`, `/verify`) → the page.
async fn page_or_missing(site: State<Site>, request: Request<Body>) -> Response {
    let last = request.uri().path().rsplit('/').next().unwrap_or("");
    if last.contains('.') {
        return (StatusCode::NOT_FOUND, "No such file.").into_response();
    }
    page(site).await
}

/// The page's policy: its own origin only, WebAssembly compiled, inline scripts only
/// by hash, no frames, plugins, `<base>` or foreign form targets. Style *attributes*
/// are allowed (the client colours names with them, and they cannot be hashed), style
/// *elements* only from this origin (`style-src` is the fallback of browsers that
/// know no `style-src-elem`).
pub fn content_security_policy(html: &str) -> String {
    let hashes: String = inline_scripts(html)
        .map(|script| {
            let digest = Sha256::digest(script.as_bytes());
            format!(
                " 'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        })
        .collect();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{hashes}; \
         style-src 'self' 'unsafe-inline'; style-src-elem 'self'; \
         style-src-attr 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The bodies of `<script>` elements without `src`, as the browser hashes them.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    html.split("<script").skip(1).filter_map(|tag| {
        let (attributes, rest) = tag.split_once('>')?;
        if attributes.contains("src=") {
            return None;
        }
        rest.split_once("</script>").map(|(body, _)| body)
    })
}

/// Hashed files are immutable; everything else is revalidated. Every answer may
/// differ by `Accept-Encoding` (a `.br` file or the plain one), which shared caches
/// must know.
async fn cache_control(request: Request<Body>, next: Next) -> Response {
    let hashed = is_content_hashed(request.uri().path());
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(VARY, HeaderValue::from_static("accept-encoding"));
    if !response.headers().contains_key(CACHE_CONTROL) {
        let policy = if hashed && response.status().is_success() {
            IMMUTABLE
        } else {
            REVALIDATE
        };
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    response
}

/// Whether a file name carries trunk's content hash (`name-<16 hex>.ext` or
/// `name-<16 hex>_bg.wasm`).
fn is_content_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    let stem = name.split('.').next().unwrap_or("");
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-')
        .is_some_and(|(_, hash)| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_allowed_by_their_hash_only() {
        let html = r#"<html><head><script src="/a.js"></script>
<script type="module">import init from '/a.js';init();</script></head></html>"#;
        let policy = content_security_policy(html);
        let expected = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(b"import init from '/a.js';init();"));
        assert!(policy.contains(&format!("'sha256-{expected}'")), "{policy}");
        assert_eq!(policy.matches("'sha256-").count(), 1, "{policy}");
        let scripts = policy
            .split(';')
            .find(|d| d.contains("script-src"))
            .expect("script-src");
        assert!(!scripts.contains("'unsafe-inline'") && !scripts.contains(" 'unsafe-eval'"));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(policy.contains("style-src-elem 'self';"), "{policy}");
    }

    #[test]
    fn trunk_names_are_recognised_as_hashed() {
        assert!(is_content_hashed("/natter-web-0123456789abcdef.js"));
        assert!(is_content_hashed("/natter-web-0123456789abcdef_bg.wasm"));
        assert!(is_content_hashed("/style-0123456789abcdef.css"));
        assert!(!is_content_hashed("/index.html"));
        assert!(!is_content_hashed("/natter-web.js"));
        assert!(!is_content_hashed("/x-0123456789abcdeg.js"));
    }
}
