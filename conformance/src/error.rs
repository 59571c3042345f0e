//! Typed errors of the conformance library.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while reading cassettes or talking to a server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A recording could not be parsed.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// Serializing a cassette or report.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A URL given on the command line is not usable.
    #[error("invalid URL {url:?}: {message}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The server could not be reached.
    #[error("cannot reach {url}: {message}")]
    Unreachable {
        /// The base URL.
        url: String,
        /// The connection error.
        message: String,
    },
    /// The server did not answer in time.
    #[error("{url}: no complete answer within {secs:.1}s")]
    Timeout {
        /// The request URL.
        url: String,
        /// The limit in seconds.
        secs: f64,
    },
    /// The connection failed after the request was sent.
    #[error("{url}: {message}")]
    Http {
        /// The request URL.
        url: String,
        /// The error.
        message: String,
    },
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A parse error in `path`.
    pub fn format(path: &Path, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}
