//! The ceiling: a minimal tokio-tungstenite broadcast server with rooms — what the
//! hardware and the WebSocket library allow, with no persistence and no presence.
//!
//! Protocol: a client's first text frame is the room name; every later text frame is
//! relayed, as the very same bytes (serialized once), to the room's other members.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use clap::Parser;
use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Command line of the ceiling server.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:19200")]
    listen: SocketAddr,
}

/// Room name → (connection id, outbound queue) of each member.
type Rooms = Arc<Mutex<HashMap<String, Vec<(u64, mpsc::Sender<Message>)>>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(args.listen).await?;
    let rooms: Rooms = Arc::default();
    let mut next_id = 0u64;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        next_id += 1;
        tokio::spawn(serve(stream, next_id, rooms.clone()));
    }
}

async fn serve(stream: tokio::net::TcpStream, id: u64, rooms: Rooms) {
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(8192);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (sink, mut stream) = ws.split();
    let (tx, rx) = mpsc::channel::<Message>(1024);
    let writer = tokio::spawn(natter_bench::fleet::write_queued(sink, rx));
    let mut room: Option<String> = None;
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Text(text) = msg else { continue };
        match &room {
            None => {
                let name = text.as_str().to_string();
                if let Ok(mut rooms) = rooms.lock() {
                    rooms
                        .entry(name.clone())
                        .or_default()
                        .push((id, tx.clone()));
                }
                room = Some(name);
            }
            Some(name) => {
                let frame = Message::Text(text);
                if let Ok(rooms) = rooms.lock() {
                    for (member, queue) in rooms.get(name).into_iter().flatten() {
                        if *member != id {
                            let _ = queue.try_send(frame.clone());
                        }
                    }
                }
            }
        }
    }
    if let (Some(name), Ok(mut rooms)) = (room, rooms.lock()) {
        if let Some(members) = rooms.get_mut(&name) {
            members.retain(|(member, _)| *member != id);
        }
    }
    writer.abort();
}
