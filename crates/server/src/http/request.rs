//! The checks every request gets, whether it upgrades to `/ws` or calls `/api`.
//!
//! - [`origin_allowed`]: a browser's request must come from the server's own page (its
//!   `Origin` host equals `Host`) or from an `--allowed-origin`. Requests without
//!   `Origin` come from non-browser clients and are allowed: the check exists to stop
//!   other web pages from using a visitor's browser (and its cookie).
//! - [`client_ip`]: the address per-IP limits count, read through trusted proxies only.
//! - [`HostNames`]: the names this server answers to. A page on `evil.example` whose
//!   DNS name is re-pointed at this server (DNS rebinding) sends `Host: evil.example`,
//!   so it is refused before anything else — which is also what makes comparing
//!   `Origin` with `Host` sound.

use std::net::{IpAddr, Ipv6Addr};

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

/// The host names this server answers to: `localhost`, the host of `--public-url`
/// and every `--allowed-host`. An IP address as `Host` is always accepted: DNS
/// rebinding needs a name, and a server reached by its address has no other.
#[derive(Debug, Clone)]
pub struct HostNames(Vec<String>);

impl HostNames {
    /// The names from the configuration (compared without case or trailing dot).
    pub fn new(public_url: Option<&str>, allowed: &[String]) -> Self {
        let public = public_url
            .and_then(|url| url.split_once("://"))
            .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
            .and_then(host_name);
        let names = std::iter::once("localhost".to_string())
            .chain(public)
            .chain(allowed.iter().filter_map(|name| host_name(name.trim())))
            .collect();
        HostNames(names)
    }

    /// Whether a request with these headers is for this server. A request without
    /// `Host` (HTTP/1.0, some tools) is not a browser's and is let through.
    pub fn allow(&self, headers: &HeaderMap) -> Result<(), String> {
        let Some(value) = headers.get(HOST) else {
            return Ok(());
        };
        let Some(name) = value.to_str().ok().and_then(host_name) else {
            return Err("the Host header is not a host name".into());
        };
        if name.parse::<IpAddr>().is_ok() || self.0.contains(&name) {
            return Ok(());
        }
        Err(format!(
            "this server does not answer to the name {name}; its operator can add it with --allowed-host or --public-url"
        ))
    }
}

/// The host part of a `Host` value (`name[:port]`, `[v6][:port]`), lower-cased,
/// without a trailing dot; an IPv6 literal without its brackets.
fn host_name(authority: &str) -> Option<String> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (address, _) = rest.split_once(']')?;
        return address.parse::<Ipv6Addr>().ok().map(|ip| ip.to_string());
    }
    let name = match authority.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        Some(_) => return None,
        None => authority,
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    valid.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_host(host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, host.parse().expect("header"));
        headers
    }

    #[test]
    fn only_own_names_and_addresses_are_served() {
        let names = HostNames::new(
            Some("https://Chat.Example.org/"),
            &["intranet.corp:8443".into()],
        );
        for host in [
            "chat.example.org",
            "CHAT.example.org.:443",
            "localhost:8080",
            "intranet.corp",
            "127.0.0.1:8080",
            "[::1]:8080",
            "10.1.2.3",
        ] {
            assert!(names.allow(&with_host(host)).is_ok(), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "chat.example.org.evil.example",
            "localhost.evil.example",
            "[not-an-ip]",
            "a b",
        ] {
            assert!(names.allow(&with_host(host)).is_err(), "{host}");
        }
        assert!(names.allow(&HeaderMap::new()).is_ok());
    }
}
