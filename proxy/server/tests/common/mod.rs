//! Shared helpers for the in-process stack tests: build the full stack over the mock backend
//! and drive it with `oneshot`.

#![allow(dead_code)]

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use ollmlx_infer::DynBackend;
use ollmlx_mock::{MockBackend, MockModel};
use ollmlx_server::body::BoxBody;
use ollmlx_server::{build, AppState, BackendRouter, HostPolicy, Origins, StackConfig};
use tower::ServiceExt;

pub fn config() -> StackConfig {
    StackConfig {
        origins: Origins::new(Vec::new()),
        hosts: HostPolicy::for_bind(
            "127.0.0.1:11434".parse().unwrap(),
            "testhost".into(),
            vec![],
        ),
    }
}

pub fn mock() -> MockBackend {
    MockBackend::new(vec![
        MockModel::echo("mock:latest"),
        MockModel::echo("other:7b"),
    ])
}

pub fn state(backend: DynBackend) -> Arc<AppState> {
    Arc::new(AppState::new(BackendRouter::new(vec![backend])))
}

pub async fn send(state: Arc<AppState>, req: Request<Full<Bytes>>) -> Response<BoxBody> {
    build::<Full<Bytes>>(state, config())
        .oneshot(req)
        .await
        .unwrap()
}

pub fn req(method: &str, path: &str, body: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost:11434")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

pub async fn body_string(r: Response<BoxBody>) -> String {
    let b = r.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(b.to_vec()).unwrap()
}

pub fn content_type(r: &Response<BoxBody>) -> String {
    r.headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}
