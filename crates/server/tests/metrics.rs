//! Prometheus metrics on their own listener: what an operator scrapes after real
//! traffic, refusals and closes — and that the public port does not serve them and no
//! series is labelled with a room or a user.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::http::request;
use common::*;
use natter_server::Config;

/// A free port on loopback (bound and released; the server binds it right after).
fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// The value of the first series whose line starts with `series`.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn operators_see_traffic_refusals_and_closes_on_their_own_port() {
    let metrics_addr = free_addr();
    let mut config = Config::for_tests("memory:");
    config.metrics_listen = Some(metrics_addr);
    config.hello_timeout_ms = 200;
    let server = TestServer::start_with(config).await;

    let mut ann = server.user("Ann").await;
    let mut bo = server.user("Bo").await;
    let (room, _) = ann.join_channel(natter_protocol::DEFAULT_CHANNEL).await;
    bo.join_channel(natter_protocol::DEFAULT_CHANNEL).await;
    for n in 0..5 {
        ann.say(room, &format!("m{n}"), "hello").await;
    }
    bo.next_text(room).await;
    // A refusal, and a close the server chose.
    let evil = request(server.addr, "GET", "/", &[("Host", "evil.example")], None).await;
    assert_eq!(evil.status, 421);
    let mut silent = Client::connect(server.addr).await;
    silent.closed().await;

    let scrape = || request(metrics_addr, "GET", "/metrics", &[], None);
    let metrics = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let metrics = scrape().await.body;
            // (The closed connection is counted until its task has ended.)
            if metrics.contains("natter_closes_total{reason=\"hello_timeout\"}")
                && value(&metrics, "natter_connections ") == Some(2.0)
            {
                return metrics;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the hello timeout is counted and the connection gone");

    assert_eq!(
        value(&metrics, "natter_connections "),
        Some(2.0),
        "{metrics}"
    );
    assert!(value(&metrics, "natter_messages_received_total ").is_some_and(|v| v >= 5.0));
    assert!(value(&metrics, "natter_frames_sent_total ").is_some_and(|v| v >= 10.0));
    assert!(value(&metrics, "natter_message_seconds_count ").is_some_and(|v| v >= 5.0));
    assert!(value(&metrics, "natter_fanout_seconds_count ").is_some_and(|v| v >= 5.0));
    assert!(metrics.contains("natter_message_seconds_bucket{le=\"0.001\"}"));
    assert!(value(&metrics, "natter_store_seconds_count{op=\"append\"} ").is_some());
    assert!(value(&metrics, "natter_store_seconds_count{op=\"rooms_of\"} ").is_some());
    assert_eq!(
        value(&metrics, "natter_refusals_total{kind=\"unknown_host\"} "),
        Some(1.0)
    );
    assert!(value(&metrics, "natter_mail_queue ").is_some(), "{metrics}");
    // No series names a room or a person.
    for private in [ann.id().0, bo.id().0, format!("room=\"{}\"", room.0)] {
        assert!(!metrics.contains(&private), "{private} in the metrics");
    }
    // The public port does not serve them.
    let public = request(server.addr, "GET", "/metrics", &[], None).await;
    assert!(!public.body.contains("natter_connections"));
    server.stop().await;
}
