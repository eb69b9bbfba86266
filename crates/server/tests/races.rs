//! Requests that lose a race must leave nothing behind: a rename refused because the
//! name is taken has not written the store (an account left holding, in the store, a
//! name someone online uses could not connect until they left).

mod common;

use common::*;
use natter_protocol::*;
use natter_server::Config;

#[tokio::test]
async fn a_rename_to_a_name_in_use_writes_nothing() {
    let (_dir, db) = temp_db();
    let server = TestServer::start_with(Config::for_tests(sqlite_url(&db))).await;
    let _zed = server.user("Zed").await;
    let mut ann = server.user("Ann").await;
    ann.send(ClientMsg::Rename { name: "zed".into() }).await;
    assert_eq!(ann.expect_error().await.0, ErrorCode::NameTaken);
    let store = natter_server::open_store(&sqlite_url(&db))
        .await
        .expect("the database opens beside the server");
    let stored = store
        .find_user(&ann.id())
        .await
        .expect("store call failed")
        .expect("Ann is stored");
    assert_eq!(stored.name, "Ann", "the refused name reached the store");
    // And the name she kept still works for her.
    ann.send(ClientMsg::Rename { name: "Ann".into() }).await;
    ann.send(ClientMsg::Rename {
        name: "Anne".into(),
    })
    .await;
    ann.recv_until(|m| match m {
        ServerMsg::Presence { online, .. } => online.iter().any(|u| u.name == "Anne").then_some(()),
        _ => None,
    })
    .await;
    server.stop().await;
}
