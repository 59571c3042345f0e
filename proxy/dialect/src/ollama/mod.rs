//! The Ollama native dialect (`/api/generate`, `/api/chat`, `/api/embed`, `/api/embeddings`).
