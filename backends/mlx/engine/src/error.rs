//! Engine errors (mapped onto `ollmlx_infer::BackendError` by the backend crate).

/// Everything the engine can fail with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// Loading or running the model failed.
    #[error("{0}")]
    Model(String),
    /// Building or using the tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Rendering the chat template failed.
    #[error("chat template: {0}")]
    Template(String),
    /// The request is invalid (empty prompt, bad option...).
    #[error("{0}")]
    InvalidRequest(String),
    /// The model cannot do what was asked (e.g. thinking on a model without it).
    #[error("{0}")]
    Unsupported(String),
    /// The prompt does not fit the context window.
    #[error("{0}")]
    ContextLength(String),
    /// The model does not fit the memory budget (Ollama's "model requires more system memory").
    #[error(transparent)]
    Memory(#[from] crate::budget::BudgetError),
    /// The request queue is full.
    #[error("engine queue is full")]
    Overloaded,
    /// The engine thread has stopped.
    #[error("the MLX engine thread is not running")]
    Stopped,
}

impl From<ollmlx_models::ModelError> for EngineError {
    fn from(e: ollmlx_models::ModelError) -> Self {
        EngineError::Model(e.to_string())
    }
}

impl From<mlx_rs::error::Exception> for EngineError {
    fn from(e: mlx_rs::error::Exception) -> Self {
        EngineError::Model(format!("mlx: {e}"))
    }
}
