//! Route handlers: one async function per endpoint family, called by the app service after
//! routing. Each takes the decoded parts it needs and returns a complete response; failures
//! go through `respond` so every error has upstream's status and wording.

pub mod generate;
pub mod manage;
pub mod misc;
pub mod models;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Response};

use crate::body::BoxBody;
use crate::routes::Route;
use crate::state::AppState;

/// Dispatch a matched route (body already collected).
pub async fn dispatch(
    state: Arc<AppState>,
    route: Route,
    headers: &HeaderMap,
    body: Bytes,
    is_head: bool,
) -> Response<BoxBody> {
    match route {
        Route::Root => misc::root(),
        Route::Version => misc::version(&state),
        Route::Status => misc::status(&state),
        Route::Me | Route::Signout | Route::WebExperimental => misc::cloud_unavailable(&route),
        Route::Recommendations => misc::recommendations(),
        Route::Tags => models::tags(&state).await,
        Route::Ps => models::ps(&state).await,
        Route::Show => models::show(&state, headers, &body).await,
        Route::Copy => models::copy(&state, &body).await,
        Route::Delete => models::delete(&state, &body).await,
        Route::OpenAiModels => models::openai_models(&state).await,
        Route::OpenAiModel(ref id) => models::openai_model(&state, &route, id).await,
        Route::Pull | Route::Push | Route::Create => manage::progress(&state, &route, &body).await,
        Route::BlobHead(ref d) => manage::blob_head(&state, &route, d).await,
        Route::BlobPut(_) => unreachable_blob_put(),
        Route::Embed | Route::Embeddings | Route::OpenAiEmbeddings => {
            generate::embed(&state, &route, &body).await
        }
        Route::Generate
        | Route::Chat
        | Route::OpenAiChat
        | Route::OpenAiCompletions
        | Route::OpenAiResponses
        | Route::AnthropicMessages => generate::generate(&state, &route, &body).await,
        Route::Metrics => crate::metrics::handle(&state).await,
        Route::_Reserved => crate::body::text(http::StatusCode::NOT_FOUND, "404 page not found"),
    }
    .strip_body_if(is_head)
}

/// Blob uploads stream their body and are handled before collection; reaching here is a bug
/// in the app service, answered as a 500 rather than a panic.
fn unreachable_blob_put() -> Response<BoxBody> {
    crate::respond::error_response(
        &Route::BlobPut(String::new()),
        500,
        "blob upload was not streamed",
    )
}

/// HEAD responses keep headers and drop the body.
trait StripBody {
    fn strip_body_if(self, head: bool) -> Self;
}

impl StripBody for Response<BoxBody> {
    fn strip_body_if(self, head: bool) -> Self {
        if !head {
            return self;
        }
        let (parts, _) = self.into_parts();
        Response::from_parts(parts, crate::body::empty())
    }
}
