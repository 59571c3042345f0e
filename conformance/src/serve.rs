//! Start the full ollmlx server stack in-process on `127.0.0.1:0` over any backend router
//! (scripted, mirrored, or an upstream proxy), for tests and the conformance tooling.

use std::sync::Arc;

use ollmlx_infer::DynBackend;
use ollmlx_server::{AppState, BackendRouter, HostPolicy, Origins, StackConfig};
use tokio::sync::oneshot;

/// A running in-process server; it shuts down when dropped.
pub struct Running {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.abort();
    }
}

/// Serve `backends` (first = default) on a fresh loopback port.
pub async fn start(backends: Vec<DynBackend>) -> std::io::Result<Running> {
    start_router(BackendRouter::new(backends)).await
}

/// Serve a prepared router on a fresh loopback port.
pub async fn start_router(router: BackendRouter) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let local = listener.local_addr()?;
    let state = Arc::new(AppState::new(router));
    let cfg = StackConfig {
        origins: Origins::new(Vec::new()),
        hosts: HostPolicy::for_bind(local, String::new(), Vec::new()),
    };
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(ollmlx_server::serve(listener, state, cfg, async move {
        let _ = rx.await;
    }));
    Ok(Running {
        url: format!("http://{local}"),
        stop: Some(tx),
        task,
    })
}
