//! Small fixed endpoints: `/`, `/api/version`, `/api/status`, and the ollama.com cloud routes
//! ollmlx does not offer.

use http::{Response, StatusCode};
use ollmlx_wire::json::to_vec;
use ollmlx_wire::ollama as wire;

use crate::body::{json, text, BoxBody};
use crate::respond::error_response;
use crate::routes::Route;
use crate::state::AppState;

/// `GET /`: the liveness text clients probe with `HEAD /`.
pub fn root() -> Response<BoxBody> {
    text(StatusCode::OK, "Ollama is running")
}

/// `GET /api/version`.
pub fn version(state: &AppState) -> Response<BoxBody> {
    json(
        StatusCode::OK,
        to_vec(&wire::VersionResponse {
            version: state.version.clone(),
        }),
    )
}

/// `GET /api/status`: ollmlx never talks to ollama.com, so cloud features are always off.
pub fn status(state: &AppState) -> Response<BoxBody> {
    let source = if state.no_cloud_env { "env" } else { "config" };
    json(
        StatusCode::OK,
        to_vec(&wire::StatusResponse {
            cloud: wire::CloudStatus {
                disabled: true,
                source: source.into(),
            },
        }),
    )
}

/// Account and web-search routes proxy ollama.com upstream; ollmlx answers as a server with
/// cloud features disabled does.
pub fn cloud_unavailable(route: &Route) -> Response<BoxBody> {
    error_response(
        route,
        403,
        "ollama cloud is disabled: ollmlx does not connect to ollama.com",
    )
}

/// `GET /api/experimental/model-recommendations`: none (they name cloud models).
pub fn recommendations() -> Response<BoxBody> {
    json(StatusCode::OK, br#"{"recommendations":[]}"#.to_vec())
}
