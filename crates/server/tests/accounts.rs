//! Accounts end to end: a real server, a real SMTP server (aiosmtpd) receiving the
//! emails, HTTP requests to `/api` and WebSockets opened with the session cookie.
//!
//! Why one long file: each account flow is one end-to-end test over the same server,
//! SMTP sink and HTTP helpers.

mod common;

use std::time::{Duration, Instant};

use common::http::{post, request, Response};
use common::mail::{emails_in, link_token, subject, SmtpSink};
use common::{sqlite_url, temp_db, Client, TestServer};
use natter_protocol::account::{Accepted, Account, ApiError, ApiErrorCode};
use natter_protocol::{ClientMsg, ErrorCode, ServerMsg, CLOSE_SIGNED_OUT};
use natter_server::Config;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "correct horse battery";

/// A server on a fresh SQLite file whose emails go to `smtp` (or to an outbox dir).
async fn server(
    smtp: Option<&SmtpSink>,
    tweak: impl FnOnce(&mut Config),
) -> (TestServer, tempfile::TempDir) {
    let (dir, db) = temp_db();
    let mut config = Config::for_tests(sqlite_url(&db));
    config.smtp_url = smtp.map(|s| s.url.clone());
    config.outbox_dir = dir.path().join("outbox");
    tweak(&mut config);
    (TestServer::start_with(config).await, dir)
}

/// Waits for the first email natter wrote to its outbox directory.
async fn outbox_email(outbox: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(mail) = emails_in(outbox).pop() {
            return mail;
        }
        assert!(
            Instant::now() < deadline,
            "no email in {}",
            outbox.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn error_code(response: &Response) -> ApiErrorCode {
    response.json::<ApiError>().code
}

async fn sign_up(server: &TestServer, email: &str, name: &str, password: &str) -> Response {
    post(
        server.addr,
        "/api/signup",
        &[],
        json!({"email": email, "name": name, "password": password}),
    )
    .await
}

async fn log_in(server: &TestServer, email: &str, password: &str) -> Response {
    post(
        server.addr,
        "/api/login",
        &[],
        json!({"email": email, "password": password}),
    )
    .await
}

async fn verify(server: &TestServer, token: &str) -> Response {
    post(server.addr, "/api/verify", &[], json!({ "token": token })).await
}

/// `POST /api/logout` with a cookie.
async fn log_out(server: &TestServer, cookie: &str) -> Response {
    request(
        server.addr,
        "POST",
        "/api/logout",
        &[("Cookie", cookie)],
        None,
    )
    .await
}

/// `GET /api/session` with a cookie.
async fn session_of(server: &TestServer, cookie: &str) -> Response {
    request(
        server.addr,
        "GET",
        "/api/session",
        &[("Cookie", cookie)],
        None,
    )
    .await
}

/// Signs up and follows the emailed verification link; the account can sign in.
async fn verified_account(server: &TestServer, sink: &SmtpSink, email: &str, name: &str) {
    assert_eq!(sign_up(server, email, name, PASSWORD).await.status, 202);
    let mail = sink.email_to(email).await;
    let token = link_token(&mail, "verify");
    let verified = verify(server, &token).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
}

/// Opens a WebSocket with `cookie` and says hello; returns the client and `ready`.
async fn signed_in_socket(server: &TestServer, cookie: &str, name: &str) -> (Client, ServerMsg) {
    let mut client = Client::connect_with(server.addr, &[("Cookie", cookie)])
        .await
        .expect("upgrade accepted");
    client.hello(name, None, vec![]).await;
    let ready = client.ready.clone().expect("ready");
    (client, ready)
}

#[tokio::test]
async fn sign_up_verify_sign_in_and_out_over_real_smtp() {
    let Some(sink) =
        SmtpSink::start("accounts::sign_up_verify_sign_in_and_out_over_real_smtp").await
    else {
        return;
    };
    let (server, _dir) = server(Some(&sink), |_| {}).await;

    let signup = sign_up(&server, "ann@example.org", "Ann", PASSWORD).await;
    assert_eq!(signup.status, 202, "{}", signup.body);
    let mail = sink.email_to("ann@example.org").await;
    assert_eq!(subject(&mail), "Confirm your email for natter");
    assert!(
        mail.contains(&format!("http://{}/#verify=", server.addr)),
        "{mail}"
    );

    // Not verified yet: the right password is not enough (and a fresh link is sent).
    let early = log_in(&server, "ann@example.org", PASSWORD).await;
    assert_eq!(
        (early.status, error_code(&early)),
        (403, ApiErrorCode::NotVerified)
    );
    sink.nth_email_to("ann@example.org", 2).await;

    let token = link_token(&mail, "verify");
    let verified = verify(&server, &token).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    let reused = verify(&server, &token).await;
    assert_eq!(
        (reused.status, error_code(&reused)),
        (400, ApiErrorCode::BadToken),
        "single use"
    );

    let login = log_in(&server, "ANN@example.org", PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let set_cookie = login.set_cookie().expect("session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains("Secure"),
        "plain HTTP here: {set_cookie}"
    );
    let account: Account = login.json();
    assert_eq!(
        (account.name.as_str(), account.email.as_str()),
        ("Ann", "ann@example.org")
    );
    let cookie = login.session_cookie();
    assert_eq!(
        cookie.len(),
        "natter_session=".len() + 32,
        "128 random bits, hex"
    );

    let session = session_of(&server, &cookie).await;
    assert_eq!(session.status, 200);
    assert_eq!(session.json::<Account>(), account);

    // The WebSocket knows the account by its cookie: the name asked for is ignored and
    // no guest credentials are handed out.
    let (mut socket, ready) = signed_in_socket(&server, &cookie, "Somebody else").await;
    let ServerMsg::Ready {
        me, credentials, ..
    } = ready
    else {
        unreachable!()
    };
    assert_eq!((me.id, me.name.as_str()), (account.user_id.clone(), "Ann"));
    assert_eq!(credentials, None);
    // A second tab of the same session.
    let (mut tab, _) = signed_in_socket(&server, &cookie, "Ann").await;

    let logout = log_out(&server, &cookie).await;
    assert_eq!(logout.status, 204);
    assert!(
        logout.set_cookie().is_some_and(|c| c.contains("Max-Age=0")),
        "cookie cleared"
    );
    assert_eq!(
        socket.closed().await,
        Some(CloseCode::from(CLOSE_SIGNED_OUT))
    );
    assert_eq!(tab.closed().await, Some(CloseCode::from(CLOSE_SIGNED_OUT)));
    let after = session_of(&server, &cookie).await;
    assert_eq!(after.status, 204, "a guest now: {}", after.body);
    // The old cookie now opens a guest connection, which cannot use Ann's name.
    let mut guest = Client::connect_with(server.addr, &[("Cookie", &cookie)])
        .await
        .expect("upgrade");
    assert_eq!(guest.hello_refused("ann").await, ErrorCode::NameReserved);
    sink.stop().await;
}

#[tokio::test]
async fn password_recovery_by_email_ends_every_session() {
    let Some(sink) =
        SmtpSink::start("accounts::password_recovery_by_email_ends_every_session").await
    else {
        return;
    };
    let (server, _dir) = server(Some(&sink), |_| {}).await;
    verified_account(&server, &sink, "bob@example.org", "Bob").await;
    let cookie = log_in(&server, "bob@example.org", PASSWORD)
        .await
        .session_cookie();
    let (mut socket, _) = signed_in_socket(&server, &cookie, "Bob").await;

    let recover = post(
        server.addr,
        "/api/recover",
        &[],
        json!({"email": "Bob@Example.org"}),
    )
    .await;
    assert_eq!(recover.status, 202);
    let mail = sink.nth_email_to("bob@example.org", 2).await;
    assert_eq!(subject(&mail), "Reset your natter password");
    let token = link_token(&mail, "reset");

    let short = post(
        server.addr,
        "/api/reset",
        &[],
        json!({"token": token, "password": "short"}),
    )
    .await;
    assert_eq!(
        (short.status, error_code(&short)),
        (400, ApiErrorCode::Invalid)
    );
    assert_eq!(short.json::<ApiError>().field.as_deref(), Some("password"));
    let reset = post(
        server.addr,
        "/api/reset",
        &[],
        json!({"token": token, "password": "a brand new passphrase"}),
    )
    .await;
    assert_eq!(
        reset.status, 200,
        "the refused short password did not use the link up: {}",
        reset.body
    );
    assert_eq!(
        socket.closed().await,
        Some(CloseCode::from(CLOSE_SIGNED_OUT)),
        "sessions end"
    );
    let gone = session_of(&server, &cookie).await;
    assert_eq!(gone.status, 204, "a guest now");

    let old = log_in(&server, "bob@example.org", PASSWORD).await;
    assert_eq!(
        (old.status, error_code(&old)),
        (401, ApiErrorCode::BadLogin)
    );
    let new = log_in(&server, "bob@example.org", "a brand new passphrase").await;
    assert_eq!(new.status, 200, "{}", new.body);
    let again = post(
        server.addr,
        "/api/reset",
        &[],
        json!({"token": token, "password": "yet another passphrase"}),
    )
    .await;
    assert_eq!(
        (again.status, error_code(&again)),
        (400, ApiErrorCode::BadToken),
        "used once"
    );
    sink.stop().await;
}

#[tokio::test]
async fn expired_links_are_refused() {
    let Some(sink) = SmtpSink::start("accounts::expired_links_are_refused").await else {
        return;
    };
    let (server, _dir) = server(Some(&sink), |config| {
        config.verify_link_secs = 1;
        config.reset_link_secs = 1;
    })
    .await;
    assert_eq!(
        sign_up(&server, "cy@example.org", "Cy", PASSWORD)
            .await
            .status,
        202
    );
    let verify_token = link_token(&sink.email_to("cy@example.org").await, "verify");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let late = verify(&server, &verify_token).await;
    assert_eq!(
        (late.status, error_code(&late)),
        (400, ApiErrorCode::BadToken)
    );

    assert_eq!(
        post(
            server.addr,
            "/api/recover",
            &[],
            json!({"email": "cy@example.org"})
        )
        .await
        .status,
        202
    );
    let reset = link_token(&sink.nth_email_to("cy@example.org", 2).await, "reset");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let late = post(
        server.addr,
        "/api/reset",
        &[],
        json!({"token": reset, "password": "whatever you like"}),
    )
    .await;
    assert_eq!(
        (late.status, error_code(&late)),
        (400, ApiErrorCode::BadToken)
    );
    sink.stop().await;
}

#[tokio::test]
async fn a_registered_name_is_reserved_from_guests() {
    let Some(sink) = SmtpSink::start("accounts::a_registered_name_is_reserved_from_guests").await
    else {
        return;
    };
    let (server, _dir) = server(Some(&sink), |_| {}).await;
    verified_account(&server, &sink, "dee@example.org", "Dee").await;

    // Dee is offline; a guest can take neither the name nor it in another case.
    let mut guest = server.client().await;
    assert_eq!(guest.hello_refused("DEE").await, ErrorCode::NameReserved);
    let mut guest = server.user("Guest").await;
    guest.send(ClientMsg::Rename { name: "dee".into() }).await;
    assert_eq!(guest.expect_error().await.0, ErrorCode::NameReserved);
    let taken = sign_up(&server, "other@example.org", "dEE", PASSWORD).await;
    assert_eq!(
        (taken.status, error_code(&taken)),
        (409, ApiErrorCode::NameReserved)
    );
    let online = sign_up(&server, "guest@example.org", "guest", PASSWORD).await;
    assert_eq!(
        (online.status, error_code(&online)),
        (409, ApiErrorCode::NameTaken),
        "in use online"
    );

    // Dee renames: the reservation moves with the name.
    let cookie = log_in(&server, "dee@example.org", PASSWORD)
        .await
        .session_cookie();
    let (mut dee, _) = signed_in_socket(&server, &cookie, "Dee").await;
    dee.send(ClientMsg::Rename {
        name: "Deirdre".into(),
    })
    .await;
    dee.recv_until(|m| match m {
        ServerMsg::Presence { online, .. } => {
            online.iter().any(|u| u.name == "Deirdre").then_some(())
        }
        _ => None,
    })
    .await;
    dee.close().await;
    guest.send(ClientMsg::Rename { name: "Dee".into() }).await;
    guest
        .recv_until(|m| match m {
            ServerMsg::Presence { online, .. } => {
                online.iter().any(|u| u.name == "Dee").then_some(())
            }
            ServerMsg::Error { code, .. } => panic!("the old name stayed reserved: {code:?}"),
            _ => None,
        })
        .await;
    guest.close().await;
    let (_, ready) = signed_in_socket(&server, &cookie, "x").await;
    let ServerMsg::Ready { me, .. } = ready else {
        unreachable!()
    };
    assert_eq!(
        me.name, "Deirdre",
        "the account keeps its new name across sign-ins"
    );
    sink.stop().await;
}

#[tokio::test]
async fn foreign_origins_guessing_and_enumeration_are_refused() {
    let Some(sink) =
        SmtpSink::start("accounts::foreign_origins_guessing_and_enumeration_are_refused").await
    else {
        return;
    };
    let (server, _dir) = server(Some(&sink), |_| {}).await;
    verified_account(&server, &sink, "eve@example.org", "Eve").await;
    let cookie = log_in(&server, "eve@example.org", PASSWORD)
        .await
        .session_cookie();

    // Another site's page cannot use the visitor's cookie: not on the WebSocket...
    let foreign = [
        ("Cookie", cookie.as_str()),
        ("Origin", "http://evil.example"),
    ];
    assert_eq!(
        Client::connect_with(server.addr, &foreign).await.err(),
        Some(403)
    );
    let own_origin = format!("http://{}", server.addr);
    let own = [("Cookie", cookie.as_str()), ("Origin", own_origin.as_str())];
    assert!(
        Client::connect_with(server.addr, &own).await.is_ok(),
        "its own page can"
    );
    // ...nor on the API.
    let logout = request(server.addr, "POST", "/api/logout", &foreign, None).await;
    assert_eq!(
        (logout.status, error_code(&logout)),
        (403, ApiErrorCode::ForeignOrigin)
    );
    let still = session_of(&server, &cookie).await;
    assert_eq!(still.status, 200, "the foreign logout did nothing");

    // Recovery and sign-up answer the same whether or not the email has an account.
    let known = post(
        server.addr,
        "/api/recover",
        &[],
        json!({"email": "eve@example.org"}),
    )
    .await;
    let unknown = post(
        server.addr,
        "/api/recover",
        &[],
        json!({"email": "nobody@example.org"}),
    )
    .await;
    assert_eq!((known.status, &known.body), (unknown.status, &unknown.body));
    let again = sign_up(&server, "EVE@example.org", "Evelyn", "another password").await;
    let fresh = sign_up(&server, "fay@example.org", "Fay", "another password").await;
    assert_eq!(
        (again.status, again.json::<Accepted>()),
        (fresh.status, fresh.json::<Accepted>())
    );
    // The owner hears of the attempt (with a reset link); the account is unchanged.
    let notice = sink.nth_email_to("eve@example.org", 3).await;
    assert_eq!(subject(&notice), "Reset your natter password");
    let before = sink.emails().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        sink.emails()
            .iter()
            .all(|m| !m.contains("nobody@example.org")),
        "nothing is sent to an unknown address"
    );
    assert!(sink.emails().len() >= before);
    assert_eq!(
        log_in(&server, "eve@example.org", PASSWORD).await.status,
        200
    );

    // Guessing a password: after 5 wrong ones the account is refused for a while, the
    // right password included; the answer says when to come back.
    for attempt in 1..=5 {
        let wrong = log_in(
            &server,
            "eve@example.org",
            &format!("guess number {attempt}"),
        )
        .await;
        assert_eq!(
            (wrong.status, error_code(&wrong)),
            (401, ApiErrorCode::BadLogin)
        );
    }
    let limited = log_in(&server, "eve@example.org", PASSWORD).await;
    assert_eq!(
        (limited.status, error_code(&limited)),
        (429, ApiErrorCode::RateLimited)
    );
    let retry: u64 = limited
        .header("Retry-After")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(limited.json::<ApiError>().retry_after_ms.is_some());
    // An unknown email answers exactly like a wrong password.
    let nobody = log_in(&server, "nobody@example.org", PASSWORD).await;
    assert_eq!(
        (nobody.status, error_code(&nobody)),
        (401, ApiErrorCode::BadLogin)
    );
    sink.stop().await;
}

#[tokio::test]
async fn mail_queued_while_smtp_is_down_is_sent_after_a_restart() {
    let test = "accounts::mail_queued_while_smtp_is_down_is_sent_after_a_restart";
    let smtp_port = common::process::free_addr().port();
    let (dir, db) = temp_db();
    let config = || {
        let mut config = Config::for_tests(sqlite_url(&db));
        config.smtp_url = Some(format!("smtp://127.0.0.1:{smtp_port}"));
        config
    };
    let server = TestServer::start_with(config()).await;
    let started = Instant::now();
    assert_eq!(
        sign_up(&server, "gus@example.org", "Gus", PASSWORD)
            .await
            .status,
        202
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "sending never blocks the request"
    );
    tokio::time::sleep(Duration::from_millis(500)).await; // the first attempt fails
    server.stop().await;

    let Some(sink) = SmtpSink::start_on(test, smtp_port).await else {
        return;
    };
    let server = TestServer::start_with(config()).await;
    let mail = sink.email_to("gus@example.org").await;
    let token = link_token(&mail, "verify");
    let verified = verify(&server, &token).await;
    assert_eq!(
        verified.status, 200,
        "the link from before the restart works"
    );
    drop(dir);
    sink.stop().await;
}

#[tokio::test]
async fn without_smtp_emails_land_in_the_outbox() {
    let (server, dir) = server(None, |_| {}).await;
    assert_eq!(
        sign_up(&server, "hal@example.org", "Hal", PASSWORD)
            .await
            .status,
        202
    );
    let mail = outbox_email(&dir.path().join("outbox")).await;
    assert!(mail.contains("To: hal@example.org"), "{mail}");
    let token = link_token(&mail, "verify");
    let verified = verify(&server, &token).await;
    assert_eq!(verified.status, 200);
    assert_eq!(
        log_in(&server, "hal@example.org", PASSWORD).await.status,
        200
    );
}

#[tokio::test]
async fn an_idle_session_expires() {
    let Some(sink) = SmtpSink::start("accounts::an_idle_session_expires").await else {
        return;
    };
    let (server, _dir) = server(Some(&sink), |config| config.session_idle_secs = 1).await;
    verified_account(&server, &sink, "ida@example.org", "Ida").await;
    let cookie = log_in(&server, "ida@example.org", PASSWORD)
        .await
        .session_cookie();
    let fresh = session_of(&server, &cookie).await;
    assert_eq!(fresh.status, 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let idle = session_of(&server, &cookie).await;
    assert_eq!(idle.status, 204, "a guest now: {}", idle.body);
    // Signing in again rotates: a new id, and the old one stays dead.
    let again = log_in(&server, "ida@example.org", PASSWORD)
        .await
        .session_cookie();
    assert_ne!(again, cookie);
    sink.stop().await;
}

#[tokio::test]
async fn bad_bodies_get_clear_errors() {
    let (server, _dir) = server(None, |_| {}).await;
    let garbage = request(server.addr, "POST", "/api/login", &[], Some("{not json")).await;
    assert_eq!(
        (garbage.status, error_code(&garbage)),
        (400, ApiErrorCode::BadRequest)
    );
    let short = sign_up(&server, "jo@example.org", "Jo", "short").await;
    assert_eq!(
        (short.status, error_code(&short)),
        (400, ApiErrorCode::Invalid)
    );
    assert_eq!(short.json::<ApiError>().field.as_deref(), Some("password"));
    let email = sign_up(&server, "not an email", "Jo", PASSWORD).await;
    assert_eq!(email.json::<ApiError>().field.as_deref(), Some("email"));
    let name = sign_up(&server, "jo@example.org", "a\u{200B}b", PASSWORD).await;
    assert_eq!(name.json::<ApiError>().field.as_deref(), Some("name"));
    let huge = "x".repeat(64 * 1024);
    let big = request(server.addr, "POST", "/api/login", &[], Some(&huge)).await;
    assert_eq!(
        (big.status, error_code(&big)),
        (413, ApiErrorCode::TooLarge),
        "bodies are capped"
    );
    let unknown = request(server.addr, "GET", "/api/nothing/here", &[], None).await;
    assert_eq!(
        (unknown.status, error_code(&unknown)),
        (404, ApiErrorCode::NotFound)
    );
    let health = request(server.addr, "GET", "/healthz", &[], None).await;
    assert_eq!(health.status, 200, "the server is fine");
}

#[tokio::test]
async fn cookies_are_secure_when_the_site_is_https() {
    let (server, dir) = server(None, |config| {
        config.public_url = Some("https://chat.example.org/".into());
    })
    .await;
    assert_eq!(
        sign_up(&server, "kai@example.org", "Kai", PASSWORD)
            .await
            .status,
        202
    );
    let mail = outbox_email(&dir.path().join("outbox")).await;
    assert!(
        mail.contains("https://chat.example.org/#verify="),
        "links use --public-url, never the request's Host: {mail}"
    );
    let token = link_token(&mail, "verify");
    verify(&server, &token).await;
    let login = log_in(&server, "kai@example.org", PASSWORD).await;
    let cookie = login.set_cookie().expect("session cookie");
    assert!(cookie.ends_with("; Secure"), "{cookie}");
}

#[tokio::test]
async fn an_open_socket_closes_when_its_session_reaches_its_age_limit() {
    let (server, dir) = server(None, |config| config.session_max_secs = 2).await;
    assert_eq!(
        sign_up(&server, "lou@example.org", "Lou", PASSWORD)
            .await
            .status,
        202
    );
    let token = link_token(&outbox_email(&dir.path().join("outbox")).await, "verify");
    verify(&server, &token).await;
    let started = Instant::now(); // the session is made after this
    let cookie = log_in(&server, "lou@example.org", PASSWORD)
        .await
        .session_cookie();
    let (mut socket, _) = signed_in_socket(&server, &cookie, "Lou").await;
    assert_eq!(
        socket.closed().await,
        Some(CloseCode::from(CLOSE_SIGNED_OUT)),
        "the socket does not outlive its session"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1950),
        "{:?}",
        started.elapsed()
    );
    let gone = session_of(&server, &cookie).await;
    assert_eq!(gone.status, 204, "a guest now");
}

/// A sign-out that races a WebSocket upgrade with the same cookie: the socket either
/// was refused the account (a guest connection) or closes with 4001 — it never stays
/// signed in to a session that no longer exists. Offsets vary so the sign-out lands
/// before, inside and after the upgrade's own work.
#[tokio::test]
async fn a_sign_out_racing_an_upgrade_still_closes_that_socket() {
    // Every round signs in anew: each from its own address (through a trusted
    // proxy), or the per-IP sign-in limit would end the test early.
    let (server, dir) = server(None, |c| c.trusted_proxies = vec![[127, 0, 0, 1].into()]).await;
    let email = "race@example.org";
    assert_eq!(sign_up(&server, email, "Racer", PASSWORD).await.status, 202);
    let token = link_token(&outbox_email(&dir.path().join("outbox")).await, "verify");
    assert_eq!(verify(&server, &token).await.status, 200);
    for round in 0..150u64 {
        let address = format!("10.9.{}.{}", round / 250, round % 250);
        let cookie = post(
            server.addr,
            "/api/login",
            &[("X-Forwarded-For", address.as_str())],
            json!({"email": email, "password": PASSWORD}),
        )
        .await
        .session_cookie();
        let upgrade = {
            let cookie = cookie.clone();
            let addr = server.addr;
            tokio::spawn(async move {
                let mut client = Client::connect_with(addr, &[("Cookie", cookie.as_str())])
                    .await
                    .expect("upgrade accepted");
                client
                    .send(ClientMsg::Hello {
                        version: natter_protocol::PROTOCOL_VERSION,
                        name: format!("Guest{round}"),
                        credentials: None,
                        resume: vec![],
                    })
                    .await;
                client
            })
        };
        tokio::time::sleep(Duration::from_micros(round % 100 * 40)).await;
        assert_eq!(log_out(&server, &cookie).await.status, 204);
        let mut client = upgrade.await.expect("upgrade task");
        // Signed in (no guest credentials in `ready`, or closed before `ready` came):
        // the socket must close with 4001. A guest connection stays.
        let mut signed_in = None;
        loop {
            match client.next_raw(Duration::from_secs(5)).await {
                Some(Message::Text(text)) => {
                    if let Ok(ServerMsg::Ready { credentials, .. }) = serde_json::from_str(&text) {
                        signed_in = Some(credentials.is_none());
                        if credentials.is_some() {
                            break;
                        }
                    }
                }
                Some(Message::Close(frame)) => {
                    assert_ne!(signed_in, Some(false), "round {round}: a guest was closed");
                    assert_eq!(
                        frame.map(|f| f.code),
                        Some(CloseCode::from(CLOSE_SIGNED_OUT)),
                        "round {round}"
                    );
                    break;
                }
                Some(_) => {}
                None => panic!("round {round}: a signed-in socket outlived its session"),
            }
        }
    }
}
