//! `GET /v1/models` and `GET /v1/models/{id}` bodies from the native model listing.

use ollmlx_wire::json::to_line;
use ollmlx_wire::ollama::ListModel;
use ollmlx_wire::openai::models::{ListCompletion, Model};

/// The namespace of a model name (`library` unless the name has `ns/model` or `host/ns/model`).
pub fn namespace_of(name: &str) -> String {
    // The tag only counts after the last '/', and a digest after '@'.
    let name = name.split('@').next().unwrap_or(name);
    let parts: Vec<&str> = name.split('/').collect();
    match parts.len() {
        0 | 1 => "library".into(),
        2 => parts[0].to_string(),
        n => parts[n - 2].to_string(),
    }
}

fn to_model(id: &str, m: &ListModel) -> Model {
    Model {
        id: id.to_string(),
        object: "model".into(),
        created: m.modified_at.unix(),
        owned_by: namespace_of(id),
    }
}

/// `GET /v1/models` body; `data` is `null` when there are no models.
pub fn models_body(models: &[ListModel]) -> Vec<u8> {
    let data: Vec<Model> = models
        .iter()
        .map(|m| {
            let id = if m.model.is_empty() {
                &m.name
            } else {
                &m.model
            };
            to_model(id, m)
        })
        .collect();
    to_line(&ListCompletion {
        object: "list".into(),
        data: (!data.is_empty()).then_some(data),
    })
}

/// `GET /v1/models/{id}` body: `id` exactly as given in the path.
pub fn model_body(id: &str, m: &ListModel) -> Vec<u8> {
    to_line(&to_model(id, m))
}
