//! Several natter nodes on one PostgreSQL database and one Redis behave like one server.
//!
//! Each test starts real `natter-server` processes on their own ports, sharing a fresh
//! PostgreSQL schema and a Redis key prefix of their own, and talks to them over real
//! WebSockets. PostgreSQL and Redis come from `NATTER_TEST_DATABASE_URL` and
//! `NATTER_TEST_REDIS_URL` (the machine's services by default); when one is missing
//! the tests say so and are counted as skipped, except with `CI=true`. The Redis
//! restart test runs a `redis-server` of its own, so that restarting it disturbs
//! nobody else's Redis. The file test keeps files in the S3-compatible store
//! `cargo xtask test` starts (s3s-fs), as a cluster must.
//!
//! Why one long file: every test starts the same kind of node processes on PostgreSQL
//! and Redis; they share that setup.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::http::request_bytes;
use common::process::{free_addr, ServerProcess};
use common::resuming::{chatters, check_logs};
use common::services::{hex_id, redis_available, redis_url, s3_store, skip, PgSchema};
use common::*;
use natter_protocol::*;

/// The presence grace period the nodes run with.
const GRACE: Duration = Duration::from_millis(1000);

/// Nodes sharing one database schema and one Redis prefix.
struct Cluster {
    nodes: Vec<Option<ServerProcess>>,
    addrs: Vec<SocketAddr>,
    /// Each node's metrics listener.
    metrics: Vec<SocketAddr>,
    redis_url: String,
    prefix: String,
    /// Where every node writes emails (no SMTP server in these tests).
    outbox: tempfile::TempDir,
    /// Each node's `--files-dir` (its cache when files live in the object store).
    files: tempfile::TempDir,
    /// `--files-url` and `--s3-endpoint` for every node, when the test keeps files in
    /// the object store.
    object_store: Option<(String, String)>,
    _schema: PgSchema,
}

impl Cluster {
    /// `count` nodes, ready to serve; `None` (skipped) when a service is missing.
    async fn start(test: &str, redis_url: &str, count: usize) -> Option<Cluster> {
        Self::start_with(test, redis_url, count, None).await
    }

    /// [`Cluster::start`], the nodes keeping files in the object store `(endpoint,
    /// bucket)` when given.
    async fn start_with(
        test: &str,
        redis_url: &str,
        count: usize,
        object_store: Option<(String, String)>,
    ) -> Option<Cluster> {
        let schema = PgSchema::fresh(test).await?;
        if !redis_available(test, redis_url).await {
            return None;
        }
        let mut cluster = Cluster {
            nodes: Vec::new(),
            addrs: (0..count).map(|_| free_addr()).collect(),
            metrics: (0..count).map(|_| free_addr()).collect(),
            redis_url: redis_url.to_string(),
            prefix: format!("natter-test-{}", hex_id()),
            outbox: tempfile::tempdir().expect("tempdir"),
            files: tempfile::tempdir().expect("tempdir"),
            object_store: object_store
                .map(|(endpoint, bucket)| (format!("s3://{bucket}/{}", hex_id()), endpoint)),
            _schema: schema,
        };
        for node in 0..count {
            let process = cluster.spawn(node);
            cluster.nodes.push(Some(process));
        }
        for node in cluster.nodes.iter().flatten() {
            node.wait_ready().await;
        }
        // Let every node subscribe before the test starts talking.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Some(cluster)
    }

    fn spawn(&self, node: usize) -> ServerProcess {
        let grace = GRACE.as_millis().to_string();
        let outbox = self.outbox.path().display().to_string();
        let metrics = self.metrics[node].to_string();
        let files = self
            .files
            .path()
            .join(format!("node{node}"))
            .display()
            .to_string();
        let mut env = vec![
            ("NATTER_REDIS_URL", self.redis_url.as_str()),
            ("NATTER_REDIS_PREFIX", self.prefix.as_str()),
            ("NATTER_PRESENCE_GRACE_MS", grace.as_str()),
            ("NATTER_OUTBOX_DIR", outbox.as_str()),
            ("NATTER_METRICS_LISTEN", metrics.as_str()),
            ("NATTER_FILES_DIR", files.as_str()),
        ];
        if let Some((url, endpoint)) = &self.object_store {
            env.push(("NATTER_FILES_URL", url.as_str()));
            env.push(("NATTER_S3_ENDPOINT", endpoint.as_str()));
        }
        ServerProcess::spawn_with(self.addrs[node], &self._schema.url, &env)
    }

    /// SIGKILLs a node: no goodbye to its clients, no flush, nothing.
    fn kill(&mut self, node: usize) {
        self.nodes[node] = None;
    }

    async fn client(&self, node: usize, name: &str) -> Client {
        let mut client = Client::connect(self.addrs[node]).await;
        client.hello(name, None, vec![]).await;
        client
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nodes.clear();
        // The nodes' own keys expire by themselves; the node set does not.
        if let Ok(mut conn) =
            redis::Client::open(self.redis_url.as_str()).and_then(|c| c.get_connection())
        {
            let _: Result<(), _> = redis::cmd("DEL")
                .arg(format!("{}:nodes", self.prefix))
                .query(&mut conn);
        }
    }
}

/// Waits until `client` sees `user` online (`true`) or offline (`false`).
async fn wait_presence(client: &mut Client, user: &UserId, online: bool) {
    client
        .recv_until(|m| match m {
            ServerMsg::Presence {
                online: on,
                offline: off,
            } => {
                let seen = if online {
                    on.iter().any(|u| u.id == *user)
                } else {
                    off.contains(user)
                };
                seen.then_some(())
            }
            _ => None,
        })
        .await
}

/// Fails if `client` is told that `user` went offline within `quiet`.
async fn expect_still_online(client: &mut Client, user: &UserId, quiet: Duration) {
    let deadline = Instant::now() + quiet;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some(frame) = client.next_raw(left).await else {
            return;
        };
        if let Ok(ServerMsg::Presence { offline, .. }) =
            serde_json::from_str::<ServerMsg>(frame.to_text().unwrap_or_default())
        {
            assert!(!offline.contains(user), "{user} was shown offline");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_presence_names_direct_rooms_and_channels() {
    let test = "cluster::three_nodes_share_presence_names_direct_rooms_and_channels";
    let Some(cluster) = Cluster::start(test, &redis_url(), 3).await else {
        return;
    };

    // Presence: people on different nodes see each other.
    let mut alice = cluster.client(0, "Alice").await;
    let mut bob = cluster.client(1, "Bob").await;
    wait_presence(&mut bob, &alice.id(), true).await;
    wait_presence(&mut alice, &bob.id(), true).await;

    // Names are unique across nodes (in any case).
    let mut impostor = Client::connect(cluster.addrs[2]).await;
    assert_eq!(impostor.hello_refused("ALICE").await, ErrorCode::NameTaken);
    let mut carol = cluster.client(2, "Carol").await;

    // A direct room pops up on both sides, across nodes, and carries messages.
    alice.send(ClientMsg::OpenDirect { user: bob.id() }).await;
    let (dm, _) = bob.expect_joined().await;
    let (dm_alice, _) = alice.expect_joined().await;
    assert_eq!(dm, dm_alice);
    bob.say(dm, "b1", "hi Alice, from node 1").await;
    assert_eq!(alice.next_text(dm).await.text, "hi Alice, from node 1");
    alice.say(dm, "a1", "hi Bob, from node 0").await;
    assert_eq!(bob.next_text(dm).await.text, "hi Bob, from node 0");
    // Node 1 measured how long node 0's deliveries took through Redis.
    let scraped = common::http::request(cluster.metrics[1], "GET", "/metrics", &[], None).await;
    assert!(
        scraped
            .body
            .lines()
            .any(|l| l.starts_with("natter_redis_lag_seconds_count ") && !l.ends_with(" 0")),
        "{}",
        scraped.body
    );

    // A rename on one node shows on the others; the new name is taken everywhere and
    // the old one is free everywhere.
    bob.send(ClientMsg::Rename {
        name: "Robert".into(),
    })
    .await;
    alice
        .recv_until(|m| match m {
            ServerMsg::Presence { online, .. } => online
                .iter()
                .any(|u| u.id == bob.id() && u.name == "Robert")
                .then_some(()),
            _ => None,
        })
        .await;
    let mut copycat = Client::connect(cluster.addrs[2]).await;
    assert_eq!(copycat.hello_refused("robert").await, ErrorCode::NameTaken);
    cluster.client(0, "Bob").await;

    // The channel list is live on every node; delete-when-empty works across nodes.
    carol
        .send(ClientMsg::CreateChannel {
            name: "ops".into(),
            delete_when_empty: true,
        })
        .await;
    let (ops, _) = carol.expect_joined().await;
    for watcher in [&mut alice, &mut bob] {
        watcher
            .recv_until(|m| match m {
                ServerMsg::ChannelAdded { channel } if channel.name == "ops" => Some(()),
                _ => None,
            })
            .await;
    }
    let (joined, _) = bob.join_channel("ops").await;
    assert_eq!(joined, ops);
    carol.say(ops, "c1", "standup in 5").await;
    assert_eq!(bob.next_text(ops).await.text, "standup in 5");
    carol.send(ClientMsg::Leave { room: ops }).await;
    bob.send(ClientMsg::Leave { room: ops }).await;
    alice
        .recv_until(|m| match m {
            ServerMsg::ChannelRemoved { room } if *room == ops => Some(()),
            _ => None,
        })
        .await;

    // Two tabs on two nodes are one presence: closing one shows nothing.
    let mut alice_tab = Client::connect(cluster.addrs[2]).await;
    alice_tab
        .hello("Alice", alice.credentials.clone(), vec![])
        .await;
    let alice_id = alice.id();
    alice.close().await;
    expect_still_online(&mut bob, &alice_id, GRACE * 2).await;
    // Closing the last one does, after the grace period.
    alice_tab.close().await;
    wait_presence(&mut bob, &alice_id, false).await;
    // And the name is free again, on any node.
    cluster.client(1, "Alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_clients_resume_elsewhere_and_nothing_is_lost() {
    let test = "cluster::a_killed_nodes_clients_resume_elsewhere_and_nothing_is_lost";
    let Some(mut cluster) = Cluster::start(test, &redis_url(), 3).await else {
        return;
    };
    // Two people on node 0 besides the chatters: one comes back on another node after
    // the crash, one does not. A watcher on node 1 follows their presence.
    let mut watcher = cluster.client(1, "Watcher").await;
    let doomed = cluster.client(0, "Doomed").await;
    let survivor = cluster.client(0, "Survivor").await;
    let (doomed_id, survivor_id) = (doomed.id(), survivor.id());
    let survivor_credentials = survivor.credentials.clone();

    const CLIENTS: usize = 6;
    const EACH: usize = 40;
    let tasks = chatters(&cluster.addrs, CLIENTS, EACH);
    // Mid-conversation, node 0 dies.
    tokio::time::sleep(Duration::from_millis(400)).await;
    cluster.kill(0);
    drop((doomed, survivor));
    let mut survivor = Client::connect(cluster.addrs[2]).await;
    survivor
        .hello("Survivor", survivor_credentials, vec![])
        .await;

    // The dead node's people go offline once its heartbeat expired and the grace
    // period passed — except the one who came back elsewhere.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("the dead node's user never went offline");
        let Some(frame) = watcher.next_raw(left).await else {
            panic!("the watcher's connection closed");
        };
        if let Ok(ServerMsg::Presence { offline, .. }) =
            serde_json::from_str::<ServerMsg>(frame.to_text().unwrap_or_default())
        {
            assert!(
                !offline.contains(&survivor_id),
                "the user who reconnected to another node was shown offline"
            );
            if offline.contains(&doomed_id) {
                break;
            }
        }
    }
    let mut logs = Vec::new();
    for task in tasks {
        logs.push(task.await.expect("client task"));
    }
    for (c, log) in logs.iter().enumerate() {
        if c % cluster.addrs.len() == 0 {
            assert!(
                log.sessions >= 2,
                "client {c} started on the killed node and resumed on another"
            );
        }
    }
    check_logs(&logs, CLIENTS, EACH);
}

/// A `redis-server` of this test's own, which it can stop and start again.
struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    /// Starts one on `port`; `None` (after `skip`) when the binary is missing.
    async fn start(test: &str, port: u16) -> Option<OwnRedis> {
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(err) => {
                skip(test, &format!("cannot start redis-server: {err}"));
                return None;
            }
        };
        let redis = OwnRedis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "redis-server never listened");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_recovers_with_nothing_lost_after_redis_restarts() {
    let test = "cluster::traffic_recovers_with_nothing_lost_after_redis_restarts";
    let port = free_addr().port();
    let Some(redis) = OwnRedis::start(test, port).await else {
        return;
    };
    let Some(cluster) = Cluster::start(test, &redis.url(), 3).await else {
        return;
    };
    const CLIENTS: usize = 6;
    const EACH: usize = 60;
    let tasks = chatters(&cluster.addrs, CLIENTS, EACH);
    // Mid-conversation, Redis dies (empty when it comes back: it keeps nothing).
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(redis);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _redis = OwnRedis::start(test, port).await.expect("redis restarts");
    let mut logs = Vec::new();
    for task in tasks {
        logs.push(task.await.expect("client task"));
    }
    check_logs(&logs, CLIENTS, EACH);
}

#[tokio::test]
async fn a_cluster_node_refuses_a_database_of_its_own() {
    let (_dir, db) = temp_db();
    let mut config = natter_server::Config::for_tests(sqlite_url(&db));
    // Never contacted: the check comes first.
    config.redis_url = Some("redis://127.0.0.1:1".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let outcome = natter_server::run(listener, config, async {}).await;
    let err = outcome.expect_err("SQLite with Redis is refused");
    assert!(err.to_string().contains("postgres://"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_lost_on_the_way_with_nothing_after_it_still_arrives() {
    let test = "cluster::a_message_lost_on_the_way_with_nothing_after_it_still_arrives";
    let Some(redis) = OwnRedis::start(test, free_addr().port()).await else {
        return;
    };
    let Some(cluster) = Cluster::start(test, &redis.url(), 2).await else {
        return;
    };
    let mut alice = cluster.client(0, "Alice").await;
    let (general, _) = alice.join_channel(DEFAULT_CHANNEL).await;
    let mut bob = cluster.client(1, "Bob").await;
    bob.join_channel(DEFAULT_CHANNEL).await;
    alice.say(general, "a0", "warm-up").await;
    assert_eq!(bob.next_text(general).await.text, "warm-up");

    // Cut the nodes' command connections (their subscriptions stay up, so nothing
    // reconnects or catches up): the next publish is lost on the way, and no later
    // message comes to show Bob's node the gap.
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connects");
    let _: Result<i64, _> = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query_async(&mut conn)
        .await;
    alice
        .say(general, "a1", "the only message after the cut")
        .await;
    let arrived = bob
        .recv_until_within(Duration::from_secs(15), |m| match m {
            ServerMsg::Message { message } if message.room == general => Some(message.text.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        arrived.as_deref(),
        Some("the only message after the cut"),
        "the other node found the message in the store"
    );
    // And the nodes publish again afterwards.
    alice.say(general, "a2", "after").await;
    assert_eq!(bob.next_text(general).await.text, "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_room_and_a_channel_made_while_redis_is_down_appear_when_it_is_back() {
    let test =
        "cluster::a_direct_room_and_a_channel_made_while_redis_is_down_appear_when_it_is_back";
    let port = free_addr().port();
    let Some(redis) = OwnRedis::start(test, port).await else {
        return;
    };
    let Some(cluster) = Cluster::start(test, &redis.url(), 2).await else {
        return;
    };
    let mut alice = cluster.client(0, "Alice").await;
    let mut bob = cluster.client(1, "Bob").await;
    wait_presence(&mut alice, &bob.id(), true).await;

    drop(redis);
    alice.send(ClientMsg::OpenDirect { user: bob.id() }).await;
    let (dm, _) = alice.expect_joined().await;
    alice.say(dm, "a1", "are you there?").await;
    alice
        .send(ClientMsg::CreateChannel {
            name: "outage".into(),
            delete_when_empty: false,
        })
        .await;
    alice.expect_joined().await;
    let _redis = OwnRedis::start(test, port).await.expect("redis restarts");

    // Bob's node reloads the channel list once it is back on Redis.
    let listed = bob
        .recv_until_within(Duration::from_secs(15), |m| match m {
            ServerMsg::ChannelAdded { channel } if channel.name == "outage" => Some(()),
            _ => None,
        })
        .await;
    assert!(listed.is_some(), "the channel created meanwhile is listed");

    // Bob's node reconciles his rooms with the database once it is back on Redis.
    let popped = bob
        .recv_until_within(Duration::from_secs(15), |m| match m {
            ServerMsg::Joined { room, .. } if room.id == dm => Some(()),
            _ => None,
        })
        .await;
    assert!(popped.is_some(), "the direct room popped up on Bob's side");
    let history = bob
        .recv_until(|m| match m {
            ServerMsg::History { room, messages, .. } if *room == dm => Some(messages.clone()),
            _ => None,
        })
        .await;
    assert!(history.iter().any(|m| m.text == "are you there?"));
    // And the room is live for him now, both ways.
    bob.say(dm, "b1", "yes").await;
    assert_eq!(alice.next_text(dm).await.text, "yes");
    alice.say(dm, "a2", "good").await;
    assert_eq!(bob.next_text(dm).await.text, "good");
}

/// Accounts span the nodes: every node polls the one mail queue yet an email goes out
/// once, a session made on one node signs in a socket on another, a name registered on
/// one is reserved on all, and signing out on one node closes the session's sockets on
/// the others (4001).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_and_sign_out_span_nodes() {
    use common::http::{post, request};
    use common::mail::{emails_in, is_to, link_token};
    let Some(cluster) =
        Cluster::start("cluster::accounts_and_sign_out_span_nodes", &redis_url(), 2).await
    else {
        return;
    };
    let (node0, node1) = (cluster.addrs[0], cluster.addrs[1]);
    let password = "correct horse battery";
    let signup = post(
        node0,
        "/api/signup",
        &[],
        serde_json::json!({"email": "zoe@example.org", "name": "Zoe", "password": password}),
    )
    .await;
    assert_eq!(signup.status, 202, "{}", signup.body);
    let to_zoe = || -> Vec<String> {
        emails_in(cluster.outbox.path())
            .into_iter()
            .filter(|mail| is_to(mail, "zoe@example.org"))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while to_zoe().is_empty() {
        assert!(Instant::now() < deadline, "no email written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // both nodes polled again
    let mails = to_zoe();
    assert_eq!(
        mails.len(),
        1,
        "one email, though two nodes drain the queue"
    );
    let token = link_token(&mails[0], "verify");
    let verified = post(
        node1,
        "/api/verify",
        &[],
        serde_json::json!({ "token": token }),
    )
    .await;
    assert_eq!(
        verified.status, 200,
        "a link made on node 0 works on node 1"
    );
    let login = post(
        node0,
        "/api/login",
        &[],
        serde_json::json!({"email": "zoe@example.org", "password": password}),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.body);
    let cookie = login.session_cookie();

    let mut zoe = Client::connect_with(node1, &[("Cookie", &cookie)])
        .await
        .expect("upgrade");
    zoe.hello("anything", None, vec![]).await;
    assert_eq!(zoe.me.as_ref().map(|m| m.name.as_str()), Some("Zoe"));
    let mut guest = Client::connect(node0).await;
    assert_eq!(guest.hello_refused("ZOE").await, ErrorCode::NameReserved);

    let logout = request(node0, "POST", "/api/logout", &[("Cookie", &cookie)], None).await;
    assert_eq!(logout.status, 204);
    assert_eq!(
        zoe.closed().await,
        Some(CLOSE_SIGNED_OUT.into()),
        "signed out on node 0, closed on node 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_picture_uploaded_on_one_node_is_seen_and_fetched_on_another() {
    const TEST: &str = "cluster::a_picture_uploaded_on_one_node_is_seen_and_fetched_on_another";
    let Some(store) = s3_store(TEST) else { return };
    let Some(cluster) = Cluster::start_with(TEST, &redis_url(), 3, Some(store)).await else {
        return;
    };
    let mut ann = cluster.client(0, "Ann").await;
    let mut bo = cluster.client(2, "Bo").await;
    let (room, _) = ann.join_channel(DEFAULT_CHANNEL).await;
    bo.join_channel(DEFAULT_CHANNEL).await;

    // A 1000 × 700 PNG: big enough for a thumbnail.
    let picture = image::RgbImage::from_fn(1000, 700, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(picture)
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("encodes");
    let creds = ann.credentials.clone().expect("a guest");
    let auth = format!("Guest {}:{}", creds.user_id.0, creds.secret);
    let answer = request_bytes(
        cluster.addrs[0],
        "POST",
        "/api/uploads?name=shared.png",
        &[("Authorization", auth.as_str())],
        png.get_ref(),
    )
    .await;
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let file: Attachment = answer.json();
    ann.say_with(room, "pic", "from node 0", vec![file.id.clone()])
        .await;

    let got = bo
        .recv_until(|m| match m {
            ServerMsg::Message { message } if !message.attachments.is_empty() => {
                Some(message.attachments.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(got, std::slice::from_ref(&file));
    // Node 2 never saw the upload: it fetches the bytes from the object store.
    for suffix in ["", "/thumb"] {
        let path = format!("/api/files/{}{suffix}", file.id.0);
        let from_two = request_bytes(cluster.addrs[2], "GET", &path, &[], &[]).await;
        assert_eq!(from_two.status, 200, "{path} on node 2");
        let from_zero = request_bytes(cluster.addrs[0], "GET", &path, &[], &[]).await;
        assert_eq!(
            from_two.body, from_zero.body,
            "{path}: the same bytes everywhere"
        );
    }
    let shown = image::load_from_memory(
        &request_bytes(
            cluster.addrs[1],
            "GET",
            &format!("/api/files/{}", file.id.0),
            &[],
            &[],
        )
        .await
        .body,
    )
    .expect("a picture from node 1");
    assert_eq!((shown.width(), shown.height()), (1000, 700));
}

/// Edits, deletions and reactions are room events like messages: made on any node,
/// they reach every node's members in the same order, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_deletes_and_reactions_cross_nodes_in_order() {
    let test = "cluster::edits_deletes_and_reactions_cross_nodes_in_order";
    let Some(cluster) = Cluster::start(test, &redis_url(), 3).await else {
        return;
    };
    let mut ann = cluster.client(0, "Ann").await;
    let mut bob = cluster.client(1, "Bob").await;
    let mut cy = cluster.client(2, "Cy").await;
    ann.send(ClientMsg::CreateChannel {
        name: "across".into(),
        delete_when_empty: false,
    })
    .await;
    let (room, _) = ann.expect_joined().await;
    bob.join_channel("across").await;
    cy.join_channel("across").await;
    let first = ann.say(room, "a-1", "typo hre").await;
    let second = ann.say(room, "a-2", "to be deleted").await;
    let edit = ann
        .change(ClientMsg::Edit {
            room,
            client_id: "e".into(),
            seq: first,
            text: "typo here".into(),
        })
        .await;
    let react_bob = bob
        .change(ClientMsg::React {
            room,
            client_id: "rb".into(),
            seq: first,
            emoji: "👍".into(),
        })
        .await;
    // Cy, on node 2, hears the edit from node 0 and Bob's reaction from node 1, in
    // seq order.
    assert_eq!(
        cy.next_change(room).await,
        (
            edit,
            first,
            Change::Edit {
                text: "typo here".into(),
                mentions: vec![],
            }
        )
    );
    assert_eq!(
        cy.next_change(room).await,
        (
            react_bob,
            first,
            Change::React {
                emoji: "👍".into()
            }
        )
    );
    let react_cy = cy
        .change(ClientMsg::React {
            room,
            client_id: "rc".into(),
            seq: first,
            emoji: "👍".into(),
        })
        .await;
    let delete = ann
        .change(ClientMsg::Delete {
            room,
            client_id: "d".into(),
            seq: second,
        })
        .await;
    // (Cy's own reaction may reach Cy after its ack: through Redis, like the others.)
    let mut next = cy.next_change(room).await;
    if next.0 == react_cy {
        next = cy.next_change(room).await;
    }
    assert_eq!(next, (delete, second, Change::Delete));
    // And a page read on node 1 shows the current state made on all three.
    let (page, _) = bob.history_page(room, delete + 1).await;
    let first_now = page
        .iter()
        .find(|m| m.seq == first)
        .expect("the first message");
    assert_eq!(first_now.text, "typo here");
    assert_eq!(first_now.reactions[0].count, 2);
    assert!(page.iter().any(|m| m.seq == second && m.deleted));
    cy.expect_no_messages(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_positions_mentions_and_typing_cross_nodes() {
    let test = "cluster::read_positions_mentions_and_typing_cross_nodes";
    let Some(cluster) = Cluster::start(test, &redis_url(), 3).await else {
        return;
    };
    let mut ann = cluster.client(0, "Ann").await;
    let mut bob = cluster.client(1, "Bob").await;
    ann.send(ClientMsg::CreateChannel {
        name: "attention".into(),
        delete_when_empty: false,
    })
    .await;
    let (room, _) = ann.expect_joined().await;
    bob.join_channel("attention").await;
    // Bob's second tab, on another node.
    let mut bob_elsewhere = Client::connect(cluster.addrs[2]).await;
    bob_elsewhere
        .hello("Bob", bob.credentials.clone(), vec![])
        .await;

    // Typing on node 0 reaches Bob on node 1 (not stored, through Redis).
    ann.send(ClientMsg::Typing { room, typing: true }).await;
    let typist = bob
        .recv_until(|m| match m {
            ServerMsg::Typing { user, typing, .. } => Some((user.id.clone(), *typing)),
            _ => None,
        })
        .await;
    assert_eq!(typist, (ann.id(), true));

    // A mention resolved on node 0, counted for Bob wherever he is.
    let seq = ann.say(room, "m-1", "@Bob see this").await;
    let message = bob.next_text(room).await;
    assert!(message.mentions(&bob.id()));
    // Read on node 1: the tab on node 2 hears it, with the counts.
    bob.send(ClientMsg::MarkRead { room, seq }).await;
    let state = bob_elsewhere
        .recv_until(|m| match m {
            ServerMsg::Read { room: r, state } if *r == room => Some(*state),
            _ => None,
        })
        .await;
    assert_eq!((state.seq, state.unread, state.mentions), (seq, 0, 0));
    // And a new connection to node 0 starts from it.
    let credentials = bob.credentials.clone();
    let mut bob_later = Client::connect(cluster.addrs[0]).await;
    bob_later.hello("Bob", credentials, vec![]).await;
    let Some(ServerMsg::Ready { rooms, .. }) = &bob_later.ready else {
        panic!("not ready");
    };
    let read = rooms.iter().find(|r| r.id == room).expect("the room").read;
    assert_eq!(read.seq, seq);
}
