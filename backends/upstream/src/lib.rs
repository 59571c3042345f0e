//! ollmlx-upstream: proxy backends (upstream Ollama, OpenAI-compatible servers).
