//! Model listing and management bodies: tags, ps, show, copy, delete, version, status.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{Message, ModelDetails};
use super::de::null_default;
use crate::time::Timestamp;

/// `GET /api/version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionResponse {
    /// Numeric semver (clients gate on it).
    pub version: String,
}

/// `GET /api/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    /// Cloud feature state.
    pub cloud: CloudStatus,
}

/// Whether cloud features are disabled, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudStatus {
    /// True when cloud features are off.
    pub disabled: bool,
    /// `none`, `env`, `config` or `both`.
    pub source: String,
}

/// `GET /api/tags`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListResponse {
    /// Local models, newest first (`[]` when none).
    pub models: Vec<ListModel>,
}

/// One entry of `/api/tags`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListModel {
    /// Shortest display name with tag, e.g. `llama3.2:latest`.
    pub name: String,
    /// Same as `name`.
    pub model: String,
    /// Upstream model for remote stubs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_model: String,
    /// Upstream host for remote stubs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_host: String,
    /// Manifest modification time.
    pub modified_at: Timestamp,
    /// Total bytes of all layers.
    pub size: u64,
    /// Hex sha256 of the manifest (no `sha256:` prefix).
    pub digest: String,
    /// Family, size, quantization.
    pub details: ModelDetails,
    /// What the model can do (`completion`, `tools`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
}

/// `GET /api/ps`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessResponse {
    /// Loaded models (`[]` when none).
    pub models: Vec<ProcessModel>,
}

/// One entry of `/api/ps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessModel {
    /// Display name with tag.
    pub name: String,
    /// Same as `name`.
    pub model: String,
    /// Bytes in memory.
    pub size: u64,
    /// Manifest digest (hex).
    pub digest: String,
    /// Family, size, quantization.
    pub details: ModelDetails,
    /// When the keep-alive timer unloads it.
    pub expires_at: Timestamp,
    /// Bytes on the accelerator.
    pub size_vram: u64,
    /// Effective context length.
    pub context_length: u64,
}

/// Body of `POST /api/show`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShowRequest {
    /// Model name.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// Overrides the system prompt shown.
    #[serde(default, deserialize_with = "null_default")]
    pub system: String,
    /// Deprecated, ignored.
    #[serde(default, deserialize_with = "null_default")]
    pub template: String,
    /// Include large arrays and tensors.
    #[serde(default, deserialize_with = "null_default")]
    pub verbose: bool,
    /// Merged into the generated Modelfile's parameters.
    #[serde(default)]
    pub options: Option<Map<String, Value>>,
    /// Deprecated alias of `model`.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
}

impl ShowRequest {
    /// `model`, falling back to the deprecated `name`.
    pub fn model_name(&self) -> &str {
        if self.model.is_empty() {
            &self.name
        } else {
            &self.model
        }
    }
}

/// Response of `POST /api/show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShowResponse {
    /// All LICENSE layers joined by newlines.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub license: String,
    /// A Modelfile that recreates the model.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub modelfile: String,
    /// Parameters as padded text, one per line.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parameters: String,
    /// Prompt template.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub template: String,
    /// System prompt.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub system: String,
    /// Renderer name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub renderer: String,
    /// Parser name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parser: String,
    /// Family, size, quantization (always present).
    #[serde(default)]
    pub details: ModelDetails,
    /// Preset messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    /// Upstream model for remote stubs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_model: String,
    /// Upstream host for remote stubs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_host: String,
    /// Architecture metadata (always present, `{}` at least); keys sorted like Go maps.
    #[serde(default)]
    pub model_info: Map<String, Value>,
    /// Vision projector metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projector_info: Option<Map<String, Value>>,
    /// Tensor list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tensors: Vec<Tensor>,
    /// What the model can do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Manifest modification time.
    pub modified_at: Timestamp,
    /// Minimum server version required.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub requires: String,
}

/// A tensor's name, type and shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tensor {
    /// Tensor name.
    pub name: String,
    /// Element type, e.g. `Q4_K`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Dimensions.
    pub shape: Vec<u64>,
}

/// Body of `POST /api/copy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyRequest {
    /// Existing model.
    #[serde(default, deserialize_with = "null_default")]
    pub source: String,
    /// New name.
    #[serde(default, deserialize_with = "null_default")]
    pub destination: String,
}

/// Body of `DELETE /api/delete`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRequest {
    /// Model name.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// Deprecated alias of `model`.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
}

impl DeleteRequest {
    /// `model`, falling back to the deprecated `name`.
    pub fn model_name(&self) -> &str {
        if self.model.is_empty() {
            &self.name
        } else {
            &self.model
        }
    }
}
