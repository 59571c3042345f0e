//! Progress-streaming operations: pull, push, create.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::Message;
use super::de::null_default;
use super::{is_false, is_zero};

/// One progress object (`{"status":"pulling manifest"}`, ..., `{"status":"success"}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressResponse {
    /// What is happening.
    #[serde(default)]
    pub status: String,
    /// Blob being transferred.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// Bytes in total.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: i64,
    /// Bytes done.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub completed: i64,
}

impl ProgressResponse {
    /// A status-only progress object.
    pub fn status(s: impl Into<String>) -> Self {
        ProgressResponse {
            status: s.into(),
            ..Default::default()
        }
    }
}

/// Body of `POST /api/pull`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    /// Model name.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// Allow plain-http registries.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub insecure: bool,
    /// Ignored.
    #[serde(default, deserialize_with = "null_default")]
    pub username: String,
    /// Ignored.
    #[serde(default, deserialize_with = "null_default")]
    pub password: String,
    /// Stream progress (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Deprecated alias of `model`.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
}

impl PullRequest {
    /// `model`, falling back to the deprecated `name`.
    pub fn model_name(&self) -> &str {
        if self.model.is_empty() {
            &self.name
        } else {
            &self.model
        }
    }
}

/// Body of `POST /api/push` (same shape as pull).
pub type PushRequest = PullRequest;

/// Body of `POST /api/create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateRequest {
    /// Name of the new model.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// Stream progress (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Quantize to this level.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub quantize: String,
    /// Quantize the draft model to this level.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub draft_quantize: String,
    /// Base model name.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub from: String,
    /// Remote host for remote stubs.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub remote_host: String,
    /// File name -> blob digest.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Map::is_empty"
    )]
    pub files: Map<String, Value>,
    /// Draft model files.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Map::is_empty"
    )]
    pub draft_files: Map<String, Value>,
    /// Adapter files.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Map::is_empty"
    )]
    pub adapters: Map<String, Value>,
    /// Prompt template.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub template: String,
    /// License text (string or array of strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<Value>,
    /// System prompt.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub system: String,
    /// Default options.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Map::is_empty"
    )]
    pub parameters: Map<String, Value>,
    /// Preset messages.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub messages: Vec<Message>,
    /// Renderer name.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub renderer: String,
    /// Parser name.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub parser: String,
    /// Minimum server version.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub requires: String,
    /// Model info overrides.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Map::is_empty"
    )]
    pub info: Map<String, Value>,
    /// Deprecated alias of `model`.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Deprecated alias of `quantize`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub quantization: String,
}

impl CreateRequest {
    /// `model`, falling back to the deprecated `name`.
    pub fn model_name(&self) -> &str {
        if self.model.is_empty() {
            &self.name
        } else {
            &self.model
        }
    }
}
