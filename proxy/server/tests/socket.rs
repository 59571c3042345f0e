//! Socket-level tests: the real accept loop on 127.0.0.1:0.

use std::sync::Arc;
use std::time::Duration;

use ollmlx_mock::{MockBackend, MockModel};
use ollmlx_server::{serve, AppState, BackendRouter, HostPolicy, Origins, StackConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start(
    backend: MockBackend,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(AppState::new(BackendRouter::new(vec![Arc::new(backend)])));
    let cfg = StackConfig {
        origins: Origins::new(Vec::new()),
        hosts: HostPolicy::for_bind(addr, String::new(), vec![]),
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let h = tokio::spawn(async move {
        serve(listener, state, cfg, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (addr, tx, h)
}

async fn raw(addr: std::net::SocketAddr, req: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn server_keeps_serving_after_a_client_disconnects_mid_stream() {
    let backend = MockBackend::new(vec![MockModel::echo("mock:latest")])
        .with_delay(Duration::from_millis(20));
    let counters = backend.counters.clone();
    let (addr, _stop, _h) = start(backend).await;
    let body = r#"{"model":"mock","messages":[{"role":"user","content":"a b c d e f g h"}]}"#;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /api/chat HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200 OK"));
    drop(s);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        counters.cancelled.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    let resp = raw(
        addr,
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.ends_with("Ollama is running"), "{resp}");
}

#[tokio::test]
async fn body_without_content_type_is_accepted() {
    let (addr, _stop, _h) = start(MockBackend::new(vec![MockModel::echo("mock:latest")])).await;
    let body = r#"{"model":"mock","stream":false,"prompt":"hi"}"#;
    let req = format!("POST /api/generate HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let resp = raw(addr, &req).await;
    assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
    assert!(resp.contains(r#""response":"hi""#));
}

#[tokio::test]
async fn graceful_shutdown_lets_an_in_flight_stream_finish() {
    let backend = MockBackend::new(vec![MockModel::echo("mock:latest")])
        .with_delay(Duration::from_millis(30));
    let (addr, stop, h) = start(backend).await;
    let body = r#"{"model":"mock","messages":[{"role":"user","content":"one two three"}]}"#;
    let req = format!("POST /api/chat HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let pending = tokio::spawn(async move { raw(addr, &req).await });
    tokio::time::sleep(Duration::from_millis(40)).await;
    stop.send(()).unwrap();
    let resp = pending.await.unwrap();
    assert!(resp.contains(r#""done":true"#), "{resp}");
    tokio::time::timeout(Duration::from_secs(5), h)
        .await
        .unwrap()
        .unwrap();
}
