//! `ollmlx-mock-serve [ADDR]`: the full ollmlx server over the scripted backend.
//!
//! Test tooling only: the Python/JS client suites start it, read the `listening on` line from
//! stdout, and point the official clients at it.

use std::sync::Arc;

use ollmlx_server::{serve, AppState, BackendRouter, HostPolicy, Origins, StackConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    println!("listening on http://{local}");
    let state = Arc::new(AppState::new(BackendRouter::new(vec![Arc::new(
        ollmlx_conformance::scripted::backend(),
    )])));
    let cfg = StackConfig {
        origins: Origins::new(Vec::new()),
        hosts: HostPolicy::for_bind(local, String::new(), Vec::new()),
    };
    serve(listener, state, cfg, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
