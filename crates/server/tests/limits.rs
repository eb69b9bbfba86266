//! Abuse resistance over real sockets: Origin, per-IP cap, rate limits, slowloris,
//! invalid UTF-8, slow consumers.

mod common;

use std::time::{Duration, Instant};

use clap::Parser;
use common::*;
use natter_protocol::*;
use natter_server::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Tries an upgrade with the given Origin; returns the HTTP status on refusal.
async fn upgrade_status(server: &TestServer, origin: Option<&str>) -> u16 {
    let mut request = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .expect("request");
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("header"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => 101,
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[tokio::test]
async fn a_foreign_origin_gets_403_and_no_upgrade() {
    let (_dir, db) = temp_db();
    let mut config = Config::for_tests(sqlite_url(&db));
    config.allowed_origins = vec!["https://chat.example.org".into()];
    let server = TestServer::start_with(config).await;
    let own = format!("http://{}", server.addr);
    assert_eq!(
        upgrade_status(&server, Some("https://evil.example")).await,
        403
    );
    assert_eq!(upgrade_status(&server, Some("null")).await, 403);
    assert_eq!(upgrade_status(&server, Some(&own)).await, 101);
    assert_eq!(
        upgrade_status(&server, Some("https://chat.example.org")).await,
        101
    );
    assert_eq!(
        upgrade_status(&server, None).await,
        101,
        "non-browser clients send no Origin"
    );
    server.stop().await;
}

#[tokio::test]
async fn connections_per_ip_are_capped() {
    let (_dir, db) = temp_db();
    let mut config = Config::for_tests(sqlite_url(&db));
    config.max_connections_per_ip = 2;
    let server = TestServer::start_with(config).await;
    let first = server.client().await;
    let _second = server.client().await;
    assert_eq!(upgrade_status(&server, None).await, 429);
    first.close().await;
    // The slot is released when the connection ends.
    let deadline = Instant::now() + WAIT;
    while upgrade_status(&server, None).await != 101 {
        assert!(Instant::now() < deadline, "slot was never released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

/// Opens a WebSocket claiming to come from `forwarded_for`; the status and the socket.
async fn connect_forwarded_for(
    server: &TestServer,
    forwarded_for: &str,
) -> (u16, Option<impl Sized>) {
    let mut request = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("x-forwarded-for", forwarded_for.parse().expect("header"));
    match tokio_tungstenite::connect_async(request).await {
        Ok(socket) => (101, Some(socket)),
        Err(WsError::Http(response)) => (response.status().as_u16(), None),
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_limits_apply_per_forwarded_client() {
    let (_dir, db) = temp_db();
    let mut config = Config::for_tests(sqlite_url(&db));
    config.max_connections_per_ip = 1;
    config.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
    let server = TestServer::start_with(config).await;
    // Two people behind the proxy each get their own allowance…
    let (status, _a) = connect_forwarded_for(&server, "203.0.113.7").await;
    assert_eq!(status, 101);
    let (status, _b) = connect_forwarded_for(&server, "198.51.100.2, 203.0.113.9").await;
    assert_eq!(status, 101, "the proxy's own entry (rightmost) counts");
    // …and one of them cannot exceed theirs.
    let (status, _) = connect_forwarded_for(&server, "203.0.113.7").await;
    assert_eq!(status, 429);
    server.stop().await;

    // Without a trusted proxy the header is ignored: anyone could send it.
    let (_dir, db) = temp_db();
    let mut config = Config::for_tests(sqlite_url(&db));
    config.max_connections_per_ip = 1;
    let server = TestServer::start_with(config).await;
    let (status, _a) = connect_forwarded_for(&server, "203.0.113.7").await;
    assert_eq!(status, 101);
    let (status, _) = connect_forwarded_for(&server, "198.51.100.2").await;
    assert_eq!(status, 429, "a spoofed header does not buy a new allowance");
    server.stop().await;
}

#[tokio::test]
async fn rate_limits_answer_with_retry_after_then_close_persistent_abuse() {
    let (_dir, db) = temp_db();
    let mut config = Config::for_tests(sqlite_url(&db));
    config.rate_per_connection = 5;
    config.burst_per_connection = 5;
    let server = TestServer::start_with(config).await;
    let mut spammer = server.user("Spammer").await; // hello took one token
    let mut victim = server.user("Victim").await;
    let (room, _) = victim.join_channel(DEFAULT_CHANNEL).await;
    for i in 0..10 {
        spammer
            .send(ClientMsg::Rename {
                name: format!("Spam{i}"),
            })
            .await;
    }
    let retry_after = spammer
        .recv_until(|m| match m {
            ServerMsg::Error {
                code: ErrorCode::RateLimited,
                retry_after_ms,
                ..
            } => Some(*retry_after_ms),
            _ => None,
        })
        .await;
    assert!(
        retry_after.is_some_and(|ms| ms > 0 && ms <= 1000),
        "{retry_after:?}"
    );
    // Keep hammering: closed with 1008.
    for i in 0..60 {
        let frame = ClientFrame::from(ClientMsg::Rename {
            name: format!("Spam{i}"),
        })
        .to_json();
        if spammer.try_send_raw(Message::text(frame)).await.is_err() {
            break;
        }
    }
    assert_eq!(spammer.closed().await, Some(CloseCode::Policy));
    // Everyone else carries on.
    let seq = victim.say(room, "v1", "still here").await;
    assert!(seq > 0);
    server.stop().await;
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    // The shipped default must close slowloris connections within 10 s.
    let default = Config::parse_from(["natter-server"]);
    assert!(default.header_timeout() <= Duration::from_secs(10));

    let (_dir, db) = temp_db();
    let mut config = Config::for_tests(sqlite_url(&db));
    config.header_timeout_ms = 500;
    let server = TestServer::start_with(config).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    // Drip one header byte every 100 ms; the server must hang up.
    let mut closed = false;
    for byte in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        .iter()
        .cycle()
        .take(100)
    {
        if stream.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await
        {
            // EOF, or an error response (408) followed by EOF.
            if n == 0 || buf.starts_with(b"HTTP/1.1 408") {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "a slow-header connection was not closed");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    server.stop().await;
}

#[tokio::test]
async fn invalid_utf8_is_closed_with_1007() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let mut client = server.user("Ann").await;
    let frame = Frame::message(vec![0x7b, 0xff, 0xfe, 0x7d], OpCode::Data(Data::Text), true);
    client.send_raw(Message::Frame(frame)).await;
    assert_eq!(client.closed().await, Some(CloseCode::Invalid));
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_and_others_get_everything() {
    let (_dir, db) = temp_db();
    let mut config = Config::for_tests(sqlite_url(&db));
    config.outbound_queue = 16;
    let server = TestServer::start_with(config).await;
    let mut sender = server.user("Sender").await;
    let mut reader = server.user("Reader").await;
    let mut stalled = server.user("Stalled").await;
    let (room, _) = sender.join_channel(DEFAULT_CHANNEL).await;
    reader.join_channel(DEFAULT_CHANNEL).await;
    stalled.join_channel(DEFAULT_CHANNEL).await;

    // ~12 MB of messages: far more than the kernel buffers hold for the stalled client.
    const COUNT: usize = 3000;
    let text = "x".repeat(4000);
    let reading = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while seqs.len() < COUNT {
            seqs.push(reader.next_text(room).await.seq);
        }
        seqs
    });
    let sending = tokio::spawn(async move {
        // Pipelined in windows, reading acks as it goes (a sender must read too).
        for window in (0..COUNT).collect::<Vec<_>>().chunks(8) {
            for i in window {
                sender
                    .send(ClientMsg::Send {
                        reply_to: None,
                        room,
                        client_id: format!("m{i}"),
                        text: text.clone(),
                        attachments: Vec::new(),
                    })
                    .await;
            }
            for _ in window {
                sender
                    .recv_until(|m| matches!(m, ServerMsg::Ack { .. }).then_some(()))
                    .await;
            }
        }
    });
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(60), sending)
        .await
        .expect("sender finishes")
        .expect("sender");
    let seqs = tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .expect("reader finishes")
        .expect("reader");
    let took = started.elapsed();
    assert_eq!(seqs.len(), COUNT);
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "the reader got every message in order"
    );
    println!("reader received {COUNT} messages of 4000 chars in {took:?} while another client was stalled");

    // The stalled client, reading at last, finds its connection was ended by the server
    // before everything reached it.
    let mut received = 0;
    let ending = loop {
        match stalled.next_raw(Duration::from_secs(10)).await {
            Some(Message::Text(_)) => received += 1,
            Some(Message::Close(frame)) => break frame.map(|f| f.code),
            Some(_) => continue,
            None => break None,
        }
    };
    assert!(
        received < COUNT,
        "the stalled client was not cut off (got {received})"
    );
    assert!(
        matches!(ending, Some(CloseCode::Again) | None),
        "ended with {ending:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_closed_with_1001() {
    let (_dir, db) = temp_db();
    let mut config = Config::for_tests(sqlite_url(&db));
    config.heartbeat_ms = 150;
    let server = TestServer::start_with(config).await;
    let mut silent = server.user("Silent").await;
    // Not reading means not answering pings either.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(silent.closed().await, Some(CloseCode::Away));
    server.stop().await;
}
