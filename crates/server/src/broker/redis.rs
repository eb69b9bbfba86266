//! The cluster broker: Redis pub/sub for fan-out, Redis keys for presence and names.
//!
//! Chosen with `--redis-url`. Every node publishes its events on one channel
//! (`<prefix>:events`) and delivers what the others publish to its own connections.
//! Pub/sub is at-most-once — a message published while a node is disconnected is
//! simply gone — so nothing here is the only copy of anything:
//! - room messages are stored before they are published; a node that misses one
//!   notices the gap in the seqs (or catches up after reconnecting) and reads the store;
//! - each node keeps the people online on it in a hash (`<prefix>:node:<id>:users`)
//!   beside its heartbeat key (`<prefix>:node:<id>:alive`, expiring after
//!   [`NODE_TTL`]); a node that (re)connects reads every live node's hash and
//!   republishes its own, and a node whose heartbeat expired is treated as gone — its
//!   users go offline after the grace period unless they reconnect elsewhere;
//! - display names are reserved with `<prefix>:name:<key>` keys holding the user id,
//!   refreshed by each node that has the user and expiring [`NAME_TTL`] after the last
//!   one stopped, so a crashed node cannot hold a name for ever.
//!
//! A published event is a line of JSON ([`Header`]) and, for deliveries, the frame's
//! bytes after the newline, so the frame is not escaped a second time.
//!
//! Why one long file: pub/sub, the presence hashes with their heartbeats, name
//! reservations and the reconnect loop share one connection state and one failure
//! story; split apart, each piece would have to re-explain when Redis is gone.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use natter_protocol::{Seq, UserId, UserSummary};
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{upgrade, Broker, BrokerError, CatchUp, ClusterSink, Delivery, Effect, NodeId, Target};

/// How often a node renews its heartbeat, name reservations and checks on the others.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A node whose heartbeat is older than this is gone.
pub const NODE_TTL: Duration = Duration::from_secs(3);
/// Every this many heartbeats a node compares its rooms with the store (see
/// [`ClusterSink::sweep`]): a message lost with nothing after it shows up within 5 s.
const SWEEP_EVERY: u32 = 5;
/// How long a name stays reserved after the last node that had its holder stopped
/// renewing it (normally it is released at once when the holder goes offline).
pub const NAME_TTL: Duration = Duration::from_secs(10);
/// Events waiting for Redis before new ones are dropped (and recovered from the store).
const OUTGOING_QUEUE: usize = 65_536;
/// Most events sent to Redis in one pipeline.
const PIPELINE: usize = 512;
/// A command (or pipeline) Redis has not answered in this long has failed: a
/// partitioned Redis must not hold up name reservations or heartbeats for ever.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// Grants each name key (KEYS) to its user (ARGV, in the same order) unless another
/// user holds it, for ARGV[#ARGV] milliseconds. Returns how many were granted.
const CLAIM_SCRIPT: &str = r"
local granted = 0
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if not holder or holder == ARGV[i] then
    redis.call('SET', key, ARGV[i], 'PX', ARGV[#ARGV])
    granted = granted + 1
  end
end
return granted";

/// Deletes a name key (KEYS[1]) only if it still belongs to ARGV[1].
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// The JSON line in front of every published event.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Header {
    /// A [`Delivery`]; the frame follows the newline.
    Delivery {
        node: NodeId,
        target: Target,
        #[serde(default)]
        seq: Option<Seq>,
        #[serde(default)]
        effect: Option<Effect>,
        #[serde(default)]
        catch_up: Option<CatchUp>,
        /// When it was published (the publishing node's wall clock, ms), for
        /// `natter_redis_lag_seconds`.
        #[serde(default)]
        sent_ms: Option<i64>,
    },
    /// `user` is online on `node` under `name`, or no longer there.
    Presence {
        node: NodeId,
        user: UserId,
        name: Option<String>,
    },
    /// Everyone online on `node` (after it (re)connected).
    Snapshot {
        node: NodeId,
        users: Vec<UserSummary>,
    },
}

/// Redis key and channel names under one prefix, so several clusters can share a Redis.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
    events: String,
    nodes: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
            events: format!("{prefix}:events"),
            nodes: format!("{prefix}:nodes"),
        }
    }

    fn alive(&self, node: &str) -> String {
        format!("{}:node:{node}:alive", self.prefix)
    }

    fn users(&self, node: &str) -> String {
        format!("{}:node:{node}:users", self.prefix)
    }

    fn name(&self, key: &str) -> String {
        format!("{}:name:{key}", self.prefix)
    }
}

/// An event on its way to Redis.
enum Outgoing {
    /// Publish these bytes.
    Event(Vec<u8>),
    /// Record a local presence change in this node's hash, then publish it.
    Presence {
        user: UserId,
        name: Option<String>,
        event: Vec<u8>,
    },
}

/// [`Broker`] over Redis; see the module docs.
pub struct RedisBroker {
    shared: Arc<Shared>,
    /// Taken by the publisher task when the hub subscribes.
    outgoing_rx: Mutex<Option<mpsc::Receiver<Outgoing>>>,
}

struct Shared {
    /// This node's id.
    node: NodeId,
    keys: Keys,
    client: redis::Client,
    /// The command connection while Redis is reachable.
    commands: RwLock<Option<MultiplexedConnection>>,
    /// Events waiting for the publisher task.
    outgoing: mpsc::Sender<Outgoing>,
    /// The local hub.
    sink: RwLock<Option<Weak<dyn ClusterSink>>>,
    /// Other nodes this one has heard of, checked on every heartbeat.
    peers: Mutex<HashSet<NodeId>>,
}

impl RedisBroker {
    /// Connects to Redis at `url` (failing at once if it does not answer, so a wrong
    /// URL is found at start-up), with keys and channel under `prefix`. Later outages
    /// are survived: the broker reconnects and catches up.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, BrokerError> {
        let client = redis::Client::open(url)?;
        let mut probe = command_connection(&client).await?;
        redis::cmd("PING").query_async::<String>(&mut probe).await?;
        let (outgoing, outgoing_rx) = mpsc::channel(OUTGOING_QUEUE);
        let node = hex::encode(rand::random::<[u8; 6]>());
        tracing::info!(node, "joining the cluster through Redis");
        Ok(RedisBroker {
            shared: Arc::new(Shared {
                node,
                keys: Keys::new(prefix),
                client,
                commands: RwLock::new(None),
                outgoing,
                sink: RwLock::new(None),
                peers: Mutex::new(HashSet::new()),
            }),
            outgoing_rx: Mutex::new(Some(outgoing_rx)),
        })
    }

    fn queue(&self, event: Outgoing) {
        if self.shared.outgoing.try_send(event).is_err() {
            tracing::warn!("Redis is behind; an event was dropped (other nodes recover messages from the store)");
        }
    }
}

#[async_trait]
impl Broker for RedisBroker {
    fn node(&self) -> &str {
        &self.shared.node
    }

    fn subscribe(&self, sink: Weak<dyn ClusterSink>) {
        if let Ok(mut slot) = self.shared.sink.write() {
            *slot = Some(sink);
        }
        let Some(outgoing) = self.outgoing_rx.lock().ok().and_then(|mut rx| rx.take()) else {
            return;
        };
        tokio::spawn(publish_loop(Arc::downgrade(&self.shared), outgoing));
        tokio::spawn(listen_loop(Arc::downgrade(&self.shared)));
        tokio::spawn(heartbeat_loop(Arc::downgrade(&self.shared)));
    }

    fn publish(&self, delivery: Delivery) {
        if let Some(sink) = upgrade(&self.shared.sink) {
            sink.deliver(&delivery);
        }
        let header = Header::Delivery {
            node: self.shared.node.clone(),
            target: delivery.target,
            seq: delivery.seq,
            effect: delivery.effect,
            catch_up: delivery.catch_up,
            sent_ms: Some(crate::clock::now_ms()),
        };
        self.queue(Outgoing::Event(encode(&header, delivery.frame.as_str())));
    }

    fn announce(&self, user: &UserId, name: Option<&str>) {
        let header = Header::Presence {
            node: self.shared.node.clone(),
            user: user.clone(),
            name: name.map(str::to_string),
        };
        self.queue(Outgoing::Presence {
            user: user.clone(),
            name: name.map(str::to_string),
            event: encode(&header, ""),
        });
    }

    async fn claim_name(&self, user: &UserId, key: &str) -> Result<bool, BrokerError> {
        let mut conn = self.shared.connection()?;
        let granted: i64 = redis::Script::new(CLAIM_SCRIPT)
            .key(self.shared.keys.name(key))
            .arg(&user.0)
            .arg(NAME_TTL.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        Ok(granted == 1)
    }

    fn release_name(&self, user: &UserId, key: &str) {
        let Ok(mut conn) = self.shared.connection() else {
            return; // it expires on its own
        };
        let name = self.shared.keys.name(key);
        let user = user.0.clone();
        tokio::spawn(async move {
            let released: Result<i64, _> = redis::Script::new(RELEASE_SCRIPT)
                .key(name)
                .arg(user)
                .invoke_async(&mut conn)
                .await;
            if let Err(err) = released {
                tracing::debug!(%err, "could not release a name; it expires on its own");
            }
        });
    }
}

impl Shared {
    fn connection(&self) -> Result<MultiplexedConnection, BrokerError> {
        self.commands
            .read()
            .ok()
            .and_then(|c| c.clone())
            .ok_or(BrokerError::Unavailable)
    }

    fn set_connection(&self, conn: Option<MultiplexedConnection>) {
        if let Ok(mut slot) = self.commands.write() {
            *slot = conn;
        }
    }

    /// After a failed command: if the connection itself broke (while the subscription,
    /// which would reconnect everything, stayed up), opens a new one, so one broken
    /// socket cannot silence this node's events for good.
    async fn command_failed(&self, err: &redis::RedisError) {
        if !(err.is_io_error()
            || err.is_connection_dropped()
            || err.is_timeout()
            || err.is_unrecoverable_error())
        {
            return;
        }
        match command_connection(&self.client).await {
            Ok(conn) => self.set_connection(Some(conn)),
            Err(err) => {
                tracing::warn!(%err, "Redis is unreachable; events are dropped until it is back")
            }
        }
    }

    fn sink(&self) -> Option<Arc<dyn ClusterSink>> {
        upgrade(&self.sink)
    }

    /// Handles one event from the channel.
    fn receive(&self, payload: &[u8]) {
        let (header, frame) = match payload.iter().position(|b| *b == b'\n') {
            Some(at) => (&payload[..at], &payload[at + 1..]),
            None => (payload, &payload[payload.len()..]),
        };
        let header: Header = match serde_json::from_slice(header) {
            Ok(header) => header,
            Err(err) => {
                tracing::warn!(%err, "ignoring an event on the Redis channel that is not natter's");
                return;
            }
        };
        let node = match &header {
            Header::Delivery { node, .. }
            | Header::Presence { node, .. }
            | Header::Snapshot { node, .. } => node,
        };
        if *node == self.node {
            return; // delivered locally when it was published
        }
        if let Ok(mut peers) = self.peers.lock() {
            peers.insert(node.clone());
        }
        let Some(sink) = self.sink() else { return };
        match header {
            Header::Delivery {
                target,
                seq,
                effect,
                catch_up,
                sent_ms,
                ..
            } => {
                if let Some(sent_ms) = sent_ms {
                    let lag_ms = (crate::clock::now_ms() - sent_ms).max(0);
                    metrics::histogram!(crate::telemetry::REDIS_LAG_SECONDS)
                        .record(lag_ms as f64 / 1000.0);
                }
                let Ok(frame) = std::str::from_utf8(frame) else {
                    tracing::warn!("ignoring a delivery whose frame is not UTF-8");
                    return;
                };
                sink.deliver(&Delivery {
                    target,
                    except: None,
                    seq,
                    effect,
                    catch_up,
                    frame: Utf8Bytes::from(frame.to_string()),
                });
            }
            Header::Presence { node, user, name } => sink.presence(&node, &user, name.as_deref()),
            Header::Snapshot { node, users } => sink.node_snapshot(&node, users),
        }
    }

    /// After (re)connecting: renews this node's heartbeat, rewrites its users hash and
    /// name reservations (Redis may have restarted empty), publishes its snapshot and
    /// reads every other live node's.
    async fn rejoin(&self, conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        let Some(sink) = self.sink() else {
            return Ok(());
        };
        let users = sink.local_users();
        let users_key = self.keys.users(&self.node);
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("DEL").arg(&users_key).ignore();
        if !users.is_empty() {
            let mut hset = redis::cmd("HSET");
            hset.arg(&users_key);
            for user in &users {
                hset.arg(&user.id.0).arg(&user.name);
            }
            pipe.add_command(hset).ignore();
        }
        pipe.cmd("SADD")
            .arg(&self.keys.nodes)
            .arg(&self.node)
            .ignore();
        self.renew(&mut pipe, &users);
        let snapshot = Header::Snapshot {
            node: self.node.clone(),
            users,
        };
        pipe.cmd("PUBLISH")
            .arg(&self.keys.events)
            .arg(encode(&snapshot, ""))
            .ignore();
        pipe.query_async::<()>(conn).await?;

        let nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&self.keys.nodes)
            .query_async(conn)
            .await?;
        for node in nodes.into_iter().filter(|n| *n != self.node) {
            let alive: bool = redis::cmd("EXISTS")
                .arg(self.keys.alive(&node))
                .query_async(conn)
                .await?;
            if !alive {
                redis::cmd("SREM")
                    .arg(&self.keys.nodes)
                    .arg(&node)
                    .query_async::<()>(conn)
                    .await?;
                continue;
            }
            let users: Vec<(String, String)> = redis::cmd("HGETALL")
                .arg(self.keys.users(&node))
                .query_async(conn)
                .await?;
            let users = users
                .into_iter()
                .map(|(id, name)| UserSummary {
                    id: UserId(id),
                    name,
                })
                .collect();
            sink.node_snapshot(&node, users);
            if let Ok(mut peers) = self.peers.lock() {
                peers.insert(node);
            }
        }
        Ok(())
    }

    /// Adds the renewal of this node's heartbeat, users hash and name reservations.
    fn renew(&self, pipe: &mut redis::Pipeline, users: &[UserSummary]) {
        pipe.cmd("SET")
            .arg(self.keys.alive(&self.node))
            .arg(1)
            .arg("PX")
            .arg(NODE_TTL.as_millis() as u64)
            .ignore();
        pipe.cmd("PEXPIRE")
            .arg(self.keys.users(&self.node))
            .arg(NODE_TTL.as_millis() as u64)
            .ignore();
        if !users.is_empty() {
            let mut claim = redis::cmd("EVAL");
            claim.arg(CLAIM_SCRIPT).arg(users.len());
            for user in users {
                claim.arg(
                    self.keys
                        .name(&natter_protocol::validate::name_key(&user.name)),
                );
            }
            for user in users {
                claim.arg(&user.id.0);
            }
            claim.arg(NAME_TTL.as_millis() as u64);
            pipe.add_command(claim).ignore();
        }
    }

    /// One heartbeat: renew this node's keys; report peers whose heartbeat expired.
    async fn beat(&self, conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        let Some(sink) = self.sink() else {
            return Ok(());
        };
        let mut pipe = redis::pipe();
        self.renew(&mut pipe, &sink.local_users());
        pipe.query_async::<()>(conn).await?;
        let peers: Vec<NodeId> = self
            .peers
            .lock()
            .map(|p| p.iter().cloned().collect())
            .unwrap_or_default();
        for peer in peers {
            let alive: bool = redis::cmd("EXISTS")
                .arg(self.keys.alive(&peer))
                .query_async(conn)
                .await?;
            if !alive {
                tracing::info!(node = peer, "a node stopped answering");
                if let Ok(mut known) = self.peers.lock() {
                    known.remove(&peer);
                }
                redis::cmd("SREM")
                    .arg(&self.keys.nodes)
                    .arg(&peer)
                    .query_async::<()>(conn)
                    .await?;
                sink.node_gone(&peer);
            }
        }
        Ok(())
    }
}

/// A connection for commands, with [`REDIS_TIMEOUT`] on connecting and on every answer.
async fn command_connection(client: &redis::Client) -> redis::RedisResult<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(REDIS_TIMEOUT)
        .set_response_timeout(REDIS_TIMEOUT);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// A header line, a newline, and the frame.
fn encode(header: &Header, frame: &str) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(header).unwrap_or_default();
    bytes.push(b'\n');
    bytes.extend_from_slice(frame.as_bytes());
    bytes
}

/// Sends queued events to Redis, many per round trip. While Redis is unreachable they
/// are dropped: the other nodes catch up from the store when it is back.
async fn publish_loop(shared: Weak<Shared>, mut queue: mpsc::Receiver<Outgoing>) {
    let mut batch = Vec::with_capacity(PIPELINE);
    loop {
        if queue.recv_many(&mut batch, PIPELINE).await == 0 {
            return;
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let Ok(mut conn) = shared.connection() else {
            batch.clear();
            continue;
        };
        let mut pipe = redis::pipe();
        let users_key = shared.keys.users(&shared.node);
        for event in batch.drain(..) {
            let bytes = match event {
                Outgoing::Event(bytes) => bytes,
                Outgoing::Presence { user, name, event } => {
                    match name {
                        Some(name) => pipe.cmd("HSET").arg(&users_key).arg(&user.0).arg(name),
                        None => pipe.cmd("HDEL").arg(&users_key).arg(&user.0),
                    };
                    pipe.ignore();
                    event
                }
            };
            pipe.cmd("PUBLISH")
                .arg(&shared.keys.events)
                .arg(bytes)
                .ignore();
        }
        if let Err(err) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!(%err, "publishing to Redis failed; other nodes will catch up from the store");
            shared.command_failed(&err).await;
        }
    }
}

/// Keeps a subscription to the events channel, reconnecting after Redis goes away.
/// Holds the broker weakly: it ends once the server has dropped it.
async fn listen_loop(shared: Weak<Shared>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match listen(&shared).await {
            Ok(true) => return,
            Ok(false) => {
                tracing::warn!("the connection to Redis closed; reconnecting");
                backoff = Duration::from_millis(100);
            }
            Err(err) => tracing::warn!(%err, "Redis is unreachable; retrying"),
        }
        match shared.upgrade() {
            Some(shared) => shared.set_connection(None),
            None => return,
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// One subscription, until Redis closes it: subscribe, rejoin, catch up, then deliver.
/// True when the broker is gone (the server stopped).
async fn listen(weak: &Weak<Shared>) -> redis::RedisResult<bool> {
    let Some(shared) = weak.upgrade() else {
        return Ok(true);
    };
    let mut pubsub = shared.client.get_async_pubsub().await?;
    pubsub.subscribe(&shared.keys.events).await?;
    let mut conn = command_connection(&shared.client).await?;
    shared.rejoin(&mut conn).await?;
    shared.set_connection(Some(conn));
    tracing::info!(node = shared.node, "subscribed to the cluster's events");
    // Whatever was published while this node was not listening is in the store.
    if let Some(sink) = shared.sink() {
        sink.reconnected();
    }
    drop(shared);
    let mut messages = pubsub.into_on_message();
    while let Some(message) = messages.next().await {
        let Some(shared) = weak.upgrade() else {
            return Ok(true);
        };
        shared.receive(message.get_payload_bytes());
    }
    Ok(false)
}

/// Renews this node's keys and checks on the others every [`HEARTBEAT`].
async fn heartbeat_loop(shared: Weak<Shared>) {
    let mut every = tokio::time::interval(HEARTBEAT);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for beat in 1u32.. {
        every.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if beat % SWEEP_EVERY == 0 {
            if let Some(sink) = shared.sink() {
                sink.sweep();
            }
        }
        let Ok(mut conn) = shared.connection() else {
            continue;
        };
        if let Err(err) = shared.beat(&mut conn).await {
            tracing::warn!(%err, "heartbeat to Redis failed");
            shared.command_failed(&err).await;
        }
    }
}
