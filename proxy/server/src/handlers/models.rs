//! Model listing and management: tags, ps, show, copy, delete, and the OpenAI model routes.

use http::{HeaderMap, Response, StatusCode};
use ollmlx_dialect::{decode_json, openai};
use ollmlx_wire::json::to_vec;
use ollmlx_wire::ollama as wire;

use crate::body::{json, status_only, with_type, BoxBody};
use crate::respond::{backend_error, error_response};
use crate::routes::Route;
use crate::state::AppState;

/// `GET /api/tags` (`{"models":[]}` when empty, never null).
pub async fn tags(state: &AppState) -> Response<BoxBody> {
    match state.router.list_models().await {
        Ok(models) => json(StatusCode::OK, to_vec(&wire::ListResponse { models })),
        Err(e) => backend_error(&Route::Tags, &e),
    }
}

/// `GET /api/ps`.
pub async fn ps(state: &AppState) -> Response<BoxBody> {
    match state.router.loaded().await {
        Ok(models) => json(StatusCode::OK, to_vec(&wire::ProcessResponse { models })),
        Err(e) => backend_error(&Route::Ps, &e),
    }
}

/// `POST /api/show`.
pub async fn show(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Response<BoxBody> {
    let route = Route::Show;
    let req: wire::ShowRequest = match decode_json(body, "ShowRequest") {
        Ok(r) => r,
        Err(e) => return error_response(&route, e.status, &e.message),
    };
    let name = req.model_name().to_string();
    if name.is_empty() {
        return error_response(&route, 400, "model is required");
    }
    let backend = match state.router.route(&name).await {
        Ok(b) => b,
        Err(e) => return backend_error(&route, &e),
    };
    match backend.show(req).await {
        Ok(mut resp) => {
            // Copilot shows `general.basename` as the model's display name.
            let ua = headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if ua.starts_with("GitHubCopilotChat/") {
                resp.model_info
                    .insert("general.basename".into(), name.clone().into());
                resp.model_info.sort_keys();
            }
            json(StatusCode::OK, to_vec(&resp))
        }
        Err(e) => backend_error(&route, &e),
    }
}

/// `POST /api/copy`.
pub async fn copy(state: &AppState, body: &[u8]) -> Response<BoxBody> {
    let route = Route::Copy;
    let req: wire::CopyRequest = match decode_json(body, "CopyRequest") {
        Ok(r) => r,
        Err(e) => return error_response(&route, e.status, &e.message),
    };
    if req.source.is_empty() || req.source.contains("..") {
        return error_response(
            &route,
            400,
            &format!("source \"{}\" is invalid", req.source),
        );
    }
    if req.destination.is_empty() || req.destination.contains("..") {
        return error_response(
            &route,
            400,
            &format!("destination \"{}\" is invalid", req.destination),
        );
    }
    let backend = match state.router.route(&req.source).await {
        Ok(b) => b,
        Err(e) => return backend_error(&route, &e),
    };
    let destination = req.destination.clone();
    let result = backend.copy(req).await;
    state.router.forget(&destination);
    match result {
        Ok(()) => status_only(StatusCode::OK),
        Err(e) => backend_error(&route, &e),
    }
}

/// `DELETE /api/delete`.
pub async fn delete(state: &AppState, body: &[u8]) -> Response<BoxBody> {
    let route = Route::Delete;
    let req: wire::DeleteRequest = match decode_json(body, "DeleteRequest") {
        Ok(r) => r,
        Err(e) => return error_response(&route, e.status, &e.message),
    };
    let name = req.model_name().to_string();
    if name.is_empty() {
        return error_response(&route, 400, "model is required");
    }
    let backend = match state.router.route(&name).await {
        Ok(b) => b,
        Err(e) => return backend_error(&route, &e),
    };
    let result = backend.delete(name.clone()).await;
    state.router.forget(&name);
    match result {
        Ok(()) => status_only(StatusCode::OK),
        Err(e) => backend_error(&route, &e),
    }
}

/// `GET /v1/models`.
pub async fn openai_models(state: &AppState) -> Response<BoxBody> {
    match state.router.list_models().await {
        Ok(models) => with_type(
            StatusCode::OK,
            "application/json",
            openai::models_body(&models),
        ),
        Err(e) => backend_error(&Route::OpenAiModels, &e),
    }
}

/// `GET /v1/models/:model`.
pub async fn openai_model(state: &AppState, route: &Route, id: &str) -> Response<BoxBody> {
    let models = match state.router.list_models().await {
        Ok(m) => m,
        Err(e) => return backend_error(route, &e),
    };
    let want = crate::respond::with_tag(id).to_ascii_lowercase();
    match models.iter().find(|m| m.name.to_ascii_lowercase() == want) {
        Some(m) => with_type(
            StatusCode::OK,
            "application/json",
            openai::model_body(id, m),
        ),
        None => error_response(
            route,
            404,
            &format!("model '{}' not found", crate::respond::with_tag(id)),
        ),
    }
}
