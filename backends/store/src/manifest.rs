//! The on-disk manifest and config blob formats (upstream's `manifest.Manifest`, `Layer` and
//! `model.ConfigV2`), plus the layer media types.
//!
//! Sits under [`crate::store::Store`]: every list/show/copy/delete/create reads or writes these.
//! Locally written manifests and configs are encoded the way Go's `json.Encoder` does (struct
//! field order, HTML escaping, trailing newline) so digests match upstream's for the same content;
//! pulled manifests are stored byte-for-byte and never re-encoded.

use serde::{Deserialize, Serialize};

/// Manifest media type (`mediaType` of the manifest itself).
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Config blob (ConfigV2 JSON).
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// GGUF model weights.
pub const MEDIA_TYPE_MODEL: &str = "application/vnd.ollama.image.model";
/// Vision/audio projector (mmproj GGUF).
pub const MEDIA_TYPE_PROJECTOR: &str = "application/vnd.ollama.image.projector";
/// LoRA adapter.
pub const MEDIA_TYPE_ADAPTER: &str = "application/vnd.ollama.image.adapter";
/// Draft model for speculative decoding.
pub const MEDIA_TYPE_DRAFT: &str = "application/vnd.ollama.image.draft";
/// Go prompt template.
pub const MEDIA_TYPE_TEMPLATE: &str = "application/vnd.ollama.image.template";
/// Legacy name of the template layer.
pub const MEDIA_TYPE_PROMPT: &str = "application/vnd.ollama.image.prompt";
/// System prompt text.
pub const MEDIA_TYPE_SYSTEM: &str = "application/vnd.ollama.image.system";
/// JSON object of default options.
pub const MEDIA_TYPE_PARAMS: &str = "application/vnd.ollama.image.params";
/// JSON array of preset messages.
pub const MEDIA_TYPE_MESSAGES: &str = "application/vnd.ollama.image.messages";
/// License text (repeatable).
pub const MEDIA_TYPE_LICENSE: &str = "application/vnd.ollama.image.license";
/// One safetensors blob of an MLX model (`name` set).
pub const MEDIA_TYPE_TENSOR: &str = "application/vnd.ollama.image.tensor";
/// A JSON config file of an MLX model (`config.json`, `tokenizer.json`, ...; `name` set).
pub const MEDIA_TYPE_JSON: &str = "application/vnd.ollama.image.json";
/// Deprecated embeddings layer (ignored).
pub const MEDIA_TYPE_EMBED: &str = "application/vnd.ollama.image.embed";

/// One layer (or the config) of a manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// What the blob holds.
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// `sha256:<hex>`.
    #[serde(default)]
    pub digest: String,
    /// Blob size in bytes.
    #[serde(default)]
    pub size: i64,
    /// Short name of the model this layer was inherited from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// File name inside the model (MLX `.tensor` / `.json` layers).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// A manifest (`manifests/<host>/<ns>/<model>/<tag>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always 2.
    #[serde(rename = "schemaVersion", default)]
    pub schema_version: i64,
    /// [`MEDIA_TYPE_MANIFEST`].
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// The config blob.
    #[serde(default)]
    pub config: Layer,
    /// All other layers, in order.
    #[serde(default)]
    pub layers: Vec<Layer>,
}

impl Manifest {
    /// A schema-2 manifest with the given config and layers.
    pub fn new(config: Layer, layers: Vec<Layer>) -> Self {
        Manifest {
            schema_version: 2,
            media_type: MEDIA_TYPE_MANIFEST.to_string(),
            config,
            layers,
        }
    }

    /// Sum of layer and config sizes (what `/api/tags` reports).
    pub fn total_size(&self) -> i64 {
        self.layers.iter().map(|l| l.size).sum::<i64>() + self.config.size
    }

    /// Every digest this manifest references (config included, empty digests skipped).
    pub fn digests(&self) -> impl Iterator<Item = &str> {
        self.layers
            .iter()
            .chain(std::iter::once(&self.config))
            .map(|l| l.digest.as_str())
            .filter(|d| !d.is_empty())
    }

    /// Layers of one media type, in order.
    pub fn layers_of<'a>(&'a self, media_type: &'a str) -> impl Iterator<Item = &'a Layer> + 'a {
        self.layers
            .iter()
            .filter(move |l| l.media_type == media_type)
    }

    /// The bytes upstream writes for a locally created manifest (`json.Encoder`: newline-terminated).
    pub fn to_bytes(&self) -> Vec<u8> {
        ollmlx_wire::json::to_line(self)
    }

    /// Whether this is an MLX (safetensors tensor) model.
    pub fn has_tensor_layers(&self) -> bool {
        self.layers
            .iter()
            .any(|l| l.media_type == MEDIA_TYPE_TENSOR)
    }
}

/// The config blob (`model.ConfigV2`), in upstream's field order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigV2 {
    /// `gguf` or `safetensors`.
    #[serde(default)]
    pub model_format: String,
    /// Architecture family (`llama`).
    #[serde(default)]
    pub model_family: String,
    /// All families; `null` when none (Go nil slice).
    #[serde(default)]
    pub model_families: Option<Vec<String>>,
    /// Parameter size string (`7.6B`), shown as parameter_size.
    #[serde(default)]
    pub model_type: String,
    /// Quantization (`Q4_K_M`), shown as quantization_level.
    #[serde(default)]
    pub file_type: String,
    /// Renderer name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub renderer: String,
    /// Parser name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parser: String,
    /// Minimum server version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub requires: String,
    /// Remote stub host.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_host: String,
    /// Remote stub model.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_model: String,
    /// Declared capabilities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Context length override.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub context_length: i64,
    /// Embedding length override.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub embedding_length: i64,
    /// Base name (remote stubs).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base_name: String,
    /// Draft model description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<Draft>,
    /// Always `amd64` (required by the OCI spec, meaningless here).
    #[serde(default)]
    pub architecture: String,
    /// Always `linux`.
    #[serde(default)]
    pub os: String,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl ConfigV2 {
    /// A fresh config as upstream's create starts it (`os: linux`, `architecture: amd64`).
    pub fn new() -> Self {
        ConfigV2 {
            os: "linux".to_string(),
            architecture: "amd64".to_string(),
            ..Default::default()
        }
    }

    /// Config bytes as Go's `json.Encoder` writes them.
    pub fn to_bytes(&self) -> Vec<u8> {
        ollmlx_wire::json::to_line(self)
    }

    /// Whether this is an MLX/safetensors model.
    pub fn is_mlx(&self) -> bool {
        self.model_format == "safetensors"
    }
}

/// A draft model stored alongside the main model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    /// Weight format.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model_format: String,
    /// Architecture.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub architecture: String,
    /// Tensor name prefix inside the main weights.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tensor_prefix: String,
    /// Config file name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_encodes_like_go_json_encoder() {
        let m = Manifest::new(
            Layer {
                media_type: MEDIA_TYPE_CONFIG.into(),
                digest: "sha256:aa".into(),
                size: 3,
                ..Default::default()
            },
            vec![Layer {
                media_type: MEDIA_TYPE_MODEL.into(),
                digest: "sha256:bb".into(),
                size: 10,
                from: "base:latest".into(),
                name: String::new(),
            }],
        );
        let s = String::from_utf8(m.to_bytes()).unwrap();
        assert_eq!(
            s,
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\
             \"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"sha256:aa\",\"size\":3},\
             \"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:bb\",\"size\":10,\"from\":\"base:latest\"}]}\n"
        );
        assert_eq!(m.total_size(), 13);
    }

    #[test]
    fn config_encodes_in_upstream_field_order_with_null_families() {
        let c = ConfigV2::new();
        let s = String::from_utf8(c.to_bytes()).unwrap();
        assert_eq!(
            s,
            "{\"model_format\":\"\",\"model_family\":\"\",\"model_families\":null,\"model_type\":\"\",\"file_type\":\"\",\"architecture\":\"amd64\",\"os\":\"linux\"}\n"
        );
    }

    #[test]
    fn manifest_decoding_ignores_unknown_fields() {
        let m: Manifest = serde_json::from_str(
            r#"{"schemaVersion":2,"mediaType":"x","config":{"mediaType":"c","digest":"d","size":1,"annotations":{}},"layers":[],"extra":1}"#,
        )
        .unwrap();
        assert_eq!(m.config.size, 1);
    }
}
