//! `natter-echo`: natter's WebSocket layer as a plain echo server on every path, for
//! protocol conformance suites (`cargo xtask autobahn` runs Autobahn's cases against
//! it). Same limits, buffer sizes and close handling as natter's `/ws`.

use std::net::SocketAddr;

use axum::extract::ws::WebSocketUpgrade;
use axum::Router;
use clap::Parser;

/// Command line of the echo server.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let app = Router::new().fallback(|ws: WebSocketUpgrade| async move {
        natter_server::connection::ws::configure(ws).on_upgrade(natter_server::connection::ws::echo)
    });
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("natter-echo listening on ws://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
