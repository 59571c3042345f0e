//! Progress-streaming operations (pull, push, create) and blob existence checks.
//!
//! Progress streams as NDJSON; with `"stream": false` only the last progress object is returned
//! (normally `{"status":"success"}`), as upstream's `waitForStream` does. Errors after the stream
//! started become a trailing `{"error":...}` line.

use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use ollmlx_dialect::decode_json;
use ollmlx_infer::{BackendError, ManageRequest};
use ollmlx_wire::json::{to_line, to_vec};
use ollmlx_wire::ollama as wire;

use crate::body::{json, status_only, BoxBody, BoxError};
use crate::respond::{backend_error, error_response};
use crate::routes::Route;
use crate::state::AppState;

/// `POST /api/pull`, `/api/push`, `/api/create`.
pub async fn progress(state: &AppState, route: &Route, body: &[u8]) -> Response<BoxBody> {
    let (req, model, stream) = match decode_manage(route, body) {
        Ok(x) => x,
        Err((status, msg)) => return error_response(route, status, &msg),
    };
    let backend = match state.router.route(&model).await {
        Ok(b) => b,
        Err(e) => return backend_error(route, &e),
    };
    // A pull or create may make the model appear on this backend: ask again next time.
    state.router.forget(&model);
    let mut progress = match backend.manage(req).await {
        Ok(p) => p,
        Err(e) => return backend_error(route, &e),
    };
    if !stream {
        let mut last: Option<wire::ProgressResponse> = None;
        while let Some(item) = progress.next().await {
            match item {
                Ok(p) => last = Some(p),
                Err(e) => return backend_error(route, &e),
            }
        }
        return match last {
            Some(p) => {
                let mut r = json(StatusCode::OK, to_vec(&p));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                r
            }
            None => error_response(route, 500, "unknown error"),
        };
    }
    let body = progress.map(|item| -> Result<http_body::Frame<Bytes>, BoxError> {
        let line = match item {
            Ok(p) => to_line(&p),
            Err(e) => to_line(&wire::ErrorResponse::new(error_text(&e))),
        };
        Ok(http_body::Frame::data(Bytes::from(line)))
    });
    let mut r = Response::new(StreamBody::new(body).boxed_unsync());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    r
}

fn error_text(e: &BackendError) -> String {
    e.to_string()
}

type Decoded = (ManageRequest, String, bool);

fn decode_manage(route: &Route, body: &[u8]) -> Result<Decoded, (u16, String)> {
    let err = |e: ollmlx_dialect::DecodeError| (e.status, e.message);
    match route {
        Route::Pull => {
            let r: wire::PullRequest = decode_json(body, "PullRequest").map_err(err)?;
            let name = r.model_name().to_string();
            if name.is_empty() || !plausible_name(&name) {
                return Err((400, "invalid model name".into()));
            }
            let stream = r.stream.unwrap_or(true);
            Ok((ManageRequest::Pull(r), name, stream))
        }
        Route::Push => {
            let r: wire::PushRequest = decode_json(body, "PushRequest").map_err(err)?;
            let name = r.model_name().to_string();
            if name.is_empty() {
                return Err((400, "model is required".into()));
            }
            let stream = r.stream.unwrap_or(true);
            Ok((ManageRequest::Push(r), name, stream))
        }
        _ => {
            let r: wire::CreateRequest = decode_json(body, "CreateRequest").map_err(err)?;
            let name = r.model_name().to_string();
            if name.is_empty() || !plausible_name(&name) {
                return Err((400, "invalid model name".into()));
            }
            for (file, digest) in r.files.iter().chain(r.adapters.iter()) {
                if file.starts_with('/') || file.split('/').any(|p| p == ".." || p.is_empty()) {
                    return Err((400, "file path must be relative".into()));
                }
                if digest.as_str().map(str::is_empty).unwrap_or(true) {
                    return Err((400, "invalid digest format".into()));
                }
            }
            let stream = r.stream.unwrap_or(true);
            Ok((ManageRequest::Create(Box::new(r)), name, stream))
        }
    }
}

/// A cheap pre-check so obviously hostile names never reach a backend (the store re-validates
/// with the full grammar).
fn plausible_name(name: &str) -> bool {
    !name.contains("..")
        && !name.contains('\\')
        && !name.starts_with('/')
        && !name.chars().any(char::is_whitespace)
}

/// Whether `d` is a well-formed blob digest (`sha256:<64 hex>` or `sha256-<64 hex>`).
pub fn valid_digest(d: &str) -> bool {
    let rest = d
        .strip_prefix("sha256:")
        .or_else(|| d.strip_prefix("sha256-"));
    matches!(rest, Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `HEAD /api/blobs/:digest`.
pub async fn blob_head(state: &AppState, route: &Route, digest: &str) -> Response<BoxBody> {
    if !valid_digest(digest) {
        return error_response(route, 400, "invalid digest format");
    }
    let Some(backend) = state.router.default_backend() else {
        return error_response(route, 404, &format!("blob \"{digest}\" not found"));
    };
    match backend.blob_exists(digest.to_string()).await {
        Ok(true) => status_only(StatusCode::OK),
        Ok(false) => error_response(route, 404, &format!("blob \"{digest}\" not found")),
        Err(e) => backend_error(route, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_need_sha256_and_64_hex() {
        assert!(valid_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(valid_digest(&format!("sha256-{}", "A".repeat(64))));
        assert!(!valid_digest("sha256:abc"));
        assert!(!valid_digest(&format!("md5:{}", "a".repeat(64))));
    }

    #[test]
    fn create_rejects_absolute_and_traversing_file_paths() {
        let body = br#"{"model":"m","files":{"../x.gguf":"sha256:00"}}"#;
        assert_eq!(
            decode_manage(&Route::Create, body).err().unwrap(),
            (400, "file path must be relative".into())
        );
        let body = br#"{"model":"m","files":{"x.gguf":""}}"#;
        assert_eq!(
            decode_manage(&Route::Create, body).err().unwrap(),
            (400, "invalid digest format".into())
        );
    }

    #[test]
    fn pull_rejects_empty_and_traversing_names() {
        assert_eq!(
            decode_manage(&Route::Pull, br#"{"model":""}"#)
                .err()
                .unwrap()
                .1,
            "invalid model name"
        );
        assert_eq!(
            decode_manage(&Route::Pull, br#"{"model":"../../x"}"#)
                .err()
                .unwrap()
                .1,
            "invalid model name"
        );
        assert!(decode_manage(&Route::Pull, br#"{"name":"llama3.2"}"#).is_ok());
    }
}
