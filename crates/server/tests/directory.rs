//! Browsing channels with their member counts, and `goodbye`: a guest who signs out
//! frees their name at once.

mod common;

use std::time::Duration;

use common::*;
use natter_protocol::*;

/// Everything one `browse_channels` answers, across its frames.
async fn browse(client: &mut Client) -> Vec<ChannelListing> {
    client.send(ClientMsg::BrowseChannels).await;
    let mut listings = Vec::new();
    loop {
        let (channels, complete) = client
            .recv_until(|m| match m {
                ServerMsg::ChannelDirectory { channels, complete } => {
                    Some((channels.clone(), *complete))
                }
                _ => None,
            })
            .await;
        listings.extend(channels);
        if complete {
            return listings;
        }
    }
}

#[tokio::test]
async fn the_channel_browser_lists_every_channel_with_its_members_busiest_first() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let mut ann = server.user("Ann").await;
    let mut bo = server.user("Bo").await;
    let mut cy = server.user("Cy").await;
    for name in ["busy", "quiet"] {
        ann.send(ClientMsg::CreateChannel {
            name: name.into(),
            delete_when_empty: false,
        })
        .await;
        ann.expect_joined().await;
    }
    bo.join_channel("busy").await;
    cy.join_channel("busy").await;
    bo.join_channel(DEFAULT_CHANNEL).await;
    // Someone offline still counts: membership, not presence.
    cy.close().await;

    let listed: Vec<(String, u32)> = browse(&mut ann)
        .await
        .into_iter()
        .map(|l| (l.name, l.members))
        .collect();
    assert_eq!(
        listed,
        [
            ("busy".to_string(), 3),
            ("general".to_string(), 1),
            ("quiet".to_string(), 1)
        ],
        "busiest first, then by name"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_guest_who_says_goodbye_frees_their_name_at_once() {
    let (_dir, db) = temp_db();
    let mut config = natter_server::Config::for_tests(sqlite_url(&db));
    // Far longer than the test: only `goodbye` can end it in time.
    config.presence_grace_ms = 60_000;
    let server = TestServer::start_with(config).await;
    let mut watcher = server.user("Watcher").await;

    // Without goodbye, a closed connection keeps its name through the grace period.
    let dropped = server.user("Dee").await;
    dropped.close().await;
    assert_eq!(
        server.client().await.hello_refused("Dee").await,
        ErrorCode::NameTaken
    );

    let mut ann = server.user("Ann").await;
    let ann_id = ann.id();
    ann.send(ClientMsg::Goodbye).await;
    ann.close().await;
    let offline = watcher
        .recv_until_within(Duration::from_secs(5), |m| match m {
            ServerMsg::Presence { offline, .. } => offline.contains(&ann_id).then_some(()),
            _ => None,
        })
        .await;
    assert!(
        offline.is_some(),
        "Ann went offline without waiting for the grace period"
    );
    let again = server.user("Ann").await;
    assert_ne!(again.id(), ann_id, "a new guest under the freed name");
    server.stop().await;
}
