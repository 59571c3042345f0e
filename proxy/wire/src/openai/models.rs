//! `GET /v1/models` and `GET /v1/models/{id}`.

use serde::{Deserialize, Serialize};

use crate::ollama::null_default;

/// One model entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    /// Model name with tag.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Always `model`.
    #[serde(default, deserialize_with = "null_default")]
    pub object: String,
    /// Unix seconds of the manifest's modification time.
    #[serde(default, deserialize_with = "null_default")]
    pub created: i64,
    /// The name's namespace (`library` for library models).
    #[serde(default, deserialize_with = "null_default")]
    pub owned_by: String,
}

/// `GET /v1/models`. `data` is `null` (not `[]`) when there are no models, as upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListCompletion {
    /// Always `list`.
    #[serde(default, deserialize_with = "null_default")]
    pub object: String,
    /// The models, or `None` (`null`) when empty.
    #[serde(default)]
    pub data: Option<Vec<Model>>,
}
