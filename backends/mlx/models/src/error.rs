//! Errors of model loading and the forward pass.

/// Everything loading or running a model can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// An MLX operation failed.
    #[error("mlx: {0}")]
    Mlx(#[from] mlx_rs::error::Exception),
    /// The GGUF container could not be read.
    #[error("gguf: {0}")]
    Gguf(#[from] mlx_rs::io::GgufError),
    /// A safetensors file could not be read.
    #[error("safetensors: {0}")]
    SafeTensors(#[from] mlx_rs::error::IoError),
    /// Converting an MLX array to host data failed.
    #[error("mlx conversion: {0}")]
    Conversion(#[from] mlx_rs::error::ConversionError),
    /// Reading a host array failed.
    #[error("mlx data: {0}")]
    AsSlice(#[from] mlx_rs::error::AsSliceError),
    /// A weight the architecture needs is absent.
    #[error("missing tensor {0}")]
    MissingTensor(String),
    /// A metadata key / config field the architecture needs is absent or malformed.
    #[error("missing or invalid config value {0}")]
    MissingConfig(String),
    /// No implementation for this architecture string.
    #[error("unsupported model architecture {0:?}")]
    UnsupportedArchitecture(String),
    /// A file could not be read.
    #[error("reading {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A LoRA adapter that cannot be applied to this model.
    #[error("adapter: {0}")]
    Adapter(String),
    /// Anything else (bad shapes, unsupported quantization...).
    #[error("{0}")]
    Invalid(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, ModelError>;
