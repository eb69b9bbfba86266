//! Test harness: a real natter server on 127.0.0.1:0 with a temporary SQLite file, and
//! tokio-tungstenite clients speaking the real protocol.

#![allow(dead_code, missing_docs)] // each test binary uses a different part of this

pub mod http;
pub mod mail;
pub mod process;
pub mod resuming;
pub mod services;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use natter_protocol::*;
use natter_server::Config;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for an expected frame before failing.
pub const WAIT: Duration = Duration::from_secs(5);

pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Starts a server on a fresh port over the SQLite file at `db`.
    pub async fn start(db: &Path) -> TestServer {
        Self::start_with(Config::for_tests(sqlite_url(db))).await
    }

    /// Starts a server on a given address (to restart one where clients expect it).
    pub async fn start_on(addr: SocketAddr, db: &Path) -> TestServer {
        let mut config = Config::for_tests(sqlite_url(db));
        config.listen = addr;
        Self::start_with(config).await
    }

    /// Starts a server with `config`, on `config.listen`.
    pub async fn start_with(config: Config) -> TestServer {
        let listener = TcpListener::bind(config.listen).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            natter_server::run(listener, config, async {
                let _ = stopped.await;
            })
            .await
            .expect("server ran");
        });
        TestServer {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Graceful shutdown, waiting until the server has stopped.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .expect("server stops in time")
            .expect("server task");
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// A connected client that said hello as `name` and got `ready`.
    pub async fn user(&self, name: &str) -> Client {
        let mut client = self.client().await;
        client.hello(name, None, vec![]).await;
        client
    }
}

pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// A temporary directory with a database path inside.
pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("natter.db");
    (dir, path)
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub me: Option<UserSummary>,
    pub credentials: Option<GuestCredentials>,
    pub ready: Option<ServerMsg>,
}

impl Client {
    /// A client over an open WebSocket that has not said hello yet.
    fn over(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Client {
        Client {
            ws,
            me: None,
            credentials: None,
            ready: None,
        }
    }

    pub async fn connect(addr: SocketAddr) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .expect("websocket connects");
        Client::over(ws)
    }

    /// Connects over a socket with a tiny receive buffer, so a test that stops reading
    /// closes the TCP window after a few KiB (the server's writes then stop making
    /// progress), as a peer that stopped reading would.
    pub async fn connect_small_window(addr: SocketAddr) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("receive buffer");
        let stream = socket.connect(addr).await.expect("tcp connects");
        let (ws, _) = tokio_tungstenite::client_async(
            format!("ws://{addr}/ws"),
            MaybeTlsStream::Plain(stream),
        )
        .await
        .expect("websocket connects");
        Client::over(ws)
    }

    /// Connects with extra upgrade headers (`Cookie`, `Origin`); `Err` is the HTTP
    /// status of a refused upgrade.
    pub async fn connect_with(addr: SocketAddr, headers: &[(&str, &str)]) -> Result<Client, u16> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
        let mut request = format!("ws://{addr}/ws")
            .into_client_request()
            .expect("a request");
        for (name, value) in headers {
            request.headers_mut().insert(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => Ok(Client::over(ws)),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(err) => panic!("websocket upgrade failed: {err}"),
        }
    }

    pub fn id(&self) -> UserId {
        self.me.as_ref().expect("said hello").id.clone()
    }

    pub async fn send(&mut self, msg: ClientMsg) {
        self.send_frame(msg.into()).await;
    }

    pub async fn send_frame(&mut self, frame: ClientFrame) {
        self.send_raw(Message::text(frame.to_json())).await;
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).await.expect("send");
    }

    /// Sends a frame, reporting failure (the server may have closed the socket).
    pub async fn try_send_raw(
        &mut self,
        msg: Message,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.ws.send(msg).await
    }

    /// The next frame of any kind, or `None` when the connection ended or `wait` passed.
    pub async fn next_raw(&mut self, wait: Duration) -> Option<Message> {
        match tokio::time::timeout(wait, self.ws.next()).await {
            Ok(Some(Ok(msg))) => Some(msg),
            _ => None,
        }
    }

    /// The next server message (skipping pings); panics after [`WAIT`].
    pub async fn recv(&mut self) -> ServerMsg {
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame arrives in time")
                .expect("socket still open")
                .expect("frame reads");
            match next {
                Message::Text(text) => {
                    return serde_json::from_str(text.as_str()).expect("server frames parse")
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Skips messages until one matches `pick`, returning what `pick` extracted.
    pub async fn recv_until<T>(&mut self, mut pick: impl FnMut(&ServerMsg) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected message did not arrive"
            );
            let msg = self.recv().await;
            if let Some(found) = pick(&msg) {
                return found;
            }
        }
    }

    /// Like [`Client::recv_until`] with a wait of one's own: `None` if nothing picked
    /// arrived within `wait`.
    pub async fn recv_until_within<T>(
        &mut self,
        wait: Duration,
        mut pick: impl FnMut(&ServerMsg) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(tokio::time::Instant::now())?;
            let frame = self.next_raw(left).await?;
            if let Ok(msg) = serde_json::from_str::<ServerMsg>(frame.to_text().unwrap_or_default())
            {
                if let Some(found) = pick(&msg) {
                    return Some(found);
                }
            }
        }
    }

    /// Asserts that no frame other than presence changes (and pings) arrives within
    /// `quiet`: presence frames come on their own schedule.
    pub async fn expect_no_messages(&mut self, quiet: Duration) {
        let deadline = tokio::time::Instant::now() + quiet;
        while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            if let Message::Text(text) = &msg {
                let parsed: ServerMsg =
                    serde_json::from_str(text.as_str()).expect("server frames parse");
                assert!(
                    matches!(parsed, ServerMsg::Presence { .. }),
                    "expected no messages, got {parsed:?}"
                );
            }
        }
    }

    /// Asserts nothing but pings arrives within `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        if let Ok(Some(Ok(msg))) = tokio::time::timeout(quiet, self.ws.next()).await {
            if !matches!(msg, Message::Ping(_) | Message::Pong(_)) {
                panic!("expected silence, got {msg:?}");
            }
        }
    }

    /// Waits for the server to close the connection; returns the close code.
    pub async fn closed(&mut self) -> Option<CloseCode> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("closes in time")
            {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Says hello as a new guest called `name` and returns the error it is refused with.
    pub async fn hello_refused(&mut self, name: &str) -> ErrorCode {
        self.send(ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            name: name.into(),
            credentials: None,
            resume: vec![],
        })
        .await;
        self.expect_error().await.0
    }

    /// Says hello and returns the history frames that follow `ready`: one for each room
    /// with messages after the resume point (a room with nothing new sends none).
    pub async fn hello(
        &mut self,
        name: &str,
        credentials: Option<GuestCredentials>,
        resume: Vec<ResumePosition>,
    ) -> Vec<ServerMsg> {
        self.send(ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            name: name.into(),
            credentials,
            resume: resume.clone(),
        })
        .await;
        let ready = self.recv().await;
        let ServerMsg::Ready {
            me,
            credentials,
            rooms,
            ..
        } = &ready
        else {
            panic!("expected ready, got {ready:?}");
        };
        self.me = Some(me.clone());
        self.credentials = credentials.clone();
        let resumed_at = |room: RoomId| resume.iter().find(|p| p.room == room).map_or(0, |p| p.seq);
        let room_count = rooms
            .iter()
            .filter(|r| r.latest_seq > resumed_at(r.id))
            .count();
        self.ready = Some(ready.clone());
        let mut histories = Vec::new();
        while histories.len() < room_count {
            let msg = self.recv().await;
            if matches!(msg, ServerMsg::History { .. }) {
                histories.push(msg);
            }
        }
        histories
    }

    /// Joins a channel by name; returns its id and the history that came with it.
    pub async fn join_channel(&mut self, name: &str) -> (RoomId, Vec<ChatMessage>) {
        self.send(ClientMsg::JoinChannel { name: name.into() })
            .await;
        self.expect_joined().await
    }

    /// Waits for `joined` and the history after it.
    pub async fn expect_joined(&mut self) -> (RoomId, Vec<ChatMessage>) {
        let room = self
            .recv_until(|m| match m {
                ServerMsg::Joined { room, .. } => Some(room.id),
                _ => None,
            })
            .await;
        let messages = self
            .recv_until(|m| match m {
                ServerMsg::History {
                    room: r, messages, ..
                } if *r == room => Some(messages.clone()),
                _ => None,
            })
            .await;
        (room, messages)
    }

    /// Asks for the page of `room` before `before`; returns it and `more_before`.
    pub async fn history_page(&mut self, room: RoomId, before: Seq) -> (Vec<ChatMessage>, bool) {
        self.send(ClientMsg::History {
            room,
            before,
            limit: HISTORY_PAGE,
        })
        .await;
        self.recv_until(|m| match m {
            ServerMsg::History {
                room: r,
                messages,
                more_before,
                ..
            } if *r == room => Some((messages.clone(), *more_before)),
            _ => None,
        })
        .await
    }

    /// Sends text and waits for its ack; returns the seq.
    pub async fn say(&mut self, room: RoomId, client_id: &str, text: &str) -> Seq {
        self.say_with(room, client_id, text, Vec::new()).await
    }

    /// Sends a message with files and waits for its ack; returns its seq.
    pub async fn say_with(
        &mut self,
        room: RoomId,
        client_id: &str,
        text: &str,
        attachments: Vec<FileId>,
    ) -> Seq {
        self.send(ClientMsg::Send {
            reply_to: None,
            room,
            client_id: client_id.into(),
            text: text.into(),
            attachments,
        })
        .await;
        self.recv_until(|m| match m {
            ServerMsg::Ack {
                client_id: c, seq, ..
            } if c == client_id => Some(*seq),
            ServerMsg::Error { .. } => panic!("send failed: {m:?}"),
            _ => None,
        })
        .await
    }

    /// Waits for a chat message (not a notice) in `room`.
    pub async fn next_text(&mut self, room: RoomId) -> ChatMessage {
        self.recv_until(|m| match m {
            ServerMsg::Message { message }
                if message.room == room && message.kind == MessageKind::Text =>
            {
                Some(message.clone())
            }
            _ => None,
        })
        .await
    }

    /// Sends a change (edit, delete, react, unreact) and waits for its ack; returns
    /// its seq. Panics on an error.
    pub async fn change(&mut self, msg: ClientMsg) -> Seq {
        let client_id = match &msg {
            ClientMsg::Edit { client_id, .. }
            | ClientMsg::Delete { client_id, .. }
            | ClientMsg::React { client_id, .. }
            | ClientMsg::Unreact { client_id, .. } => client_id.clone(),
            other => panic!("not a change: {other:?}"),
        };
        self.send(msg).await;
        self.recv_until(|m| match m {
            ServerMsg::Ack {
                client_id: c, seq, ..
            } if *c == client_id => Some(*seq),
            ServerMsg::Error { .. } => panic!("change failed: {m:?}"),
            _ => None,
        })
        .await
    }

    /// Waits for a `changed` frame in `room`; returns its seq, target and change.
    pub async fn next_change(&mut self, room: RoomId) -> (Seq, Seq, Change) {
        self.recv_until(|m| match m {
            ServerMsg::Changed {
                room: r,
                seq,
                target,
                change,
                ..
            } if *r == room => Some((*seq, *target, change.clone())),
            _ => None,
        })
        .await
    }

    /// Waits for an error frame; returns its code and ref.
    pub async fn expect_error(&mut self) -> (ErrorCode, Option<String>) {
        self.recv_until(|m| match m {
            ServerMsg::Error {
                code, request_ref, ..
            } => Some((*code, request_ref.clone())),
            _ => None,
        })
        .await
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
