//! The checks every request gets, whether it upgrades to `/ws` or calls `/api`.
//!
//! - [`origin_allowed`]: a browser's request must come from the server's own page (its
//!   `Origin` host equals `Host`) or from an `--allowed-origin`. Requests without
//!   `Origin` come from non-browser clients and are allowed: the check exists to stop
//!   other web pages from using a visitor's browser (and its cookie).
//! - [`client_ip`]: the address per-IP limits count, read through trusted proxies only.

use std::net::IpAddr;

use axum::http::header::{HOST, ORIGIN};
use axum::http::HeaderMap;

/// The address per-IP limits apply to: the peer's, or — when the peer is a trusted
/// proxy — the nearest address in `X-Forwarded-For` that is not itself a trusted proxy
/// (the header's left part is whatever the client claimed, so it is read from the
/// right). Without trusted proxies the header is ignored: anyone could send it.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect::<Vec<_>>();
    forwarded
        .iter()
        .rev()
        .map_while(|hop| hop.trim().parse::<IpAddr>().ok())
        .find(|hop| !trusted.contains(hop))
        .unwrap_or(peer)
}

/// A request without `Origin` (not a browser) is allowed; a browser's must be the
/// server's own origin (its host equals `Host`) or one of `allowed`.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin_host = origin.split_once("://").map(|(_, host)| host);
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    if origin_host.is_some() && origin_host == host {
        return true;
    }
    allowed
        .iter()
        .any(|a| a.trim().trim_end_matches('/').eq_ignore_ascii_case(origin))
}
