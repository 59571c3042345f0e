//! The route table: every (method, path) ollmlx answers, in one place.
//!
//! Like upstream's `GenerateRoutes`, this is the single source of truth. A path that is known
//! with another method answers 405; an unknown path answers 404 `404 page not found`.
//! `docs/api-compat.md` is checked against [`ROUTES`] by a test.

use http::Method;

/// The dialect a route speaks (selects the error envelope and stream framing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Ollama native (`{"error":...}`, NDJSON).
    Ollama,
    /// OpenAI compatible (`{"error":{...}}`, SSE with `data: [DONE]`).
    OpenAi,
    /// Anthropic compatible (`{"type":"error",...}`, SSE with event names).
    Anthropic,
}

/// Every endpoint ollmlx serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET|HEAD /` — liveness text.
    Root,
    /// `GET|HEAD /api/version`.
    Version,
    /// `GET /api/status`.
    Status,
    /// `POST /api/pull`.
    Pull,
    /// `POST /api/push`.
    Push,
    /// `GET|HEAD /api/tags`.
    Tags,
    /// `POST /api/show`.
    Show,
    /// `DELETE /api/delete`.
    Delete,
    /// `POST /api/create`.
    Create,
    /// `POST /api/blobs/:digest`.
    BlobPut(String),
    /// `HEAD /api/blobs/:digest`.
    BlobHead(String),
    /// `POST /api/copy`.
    Copy,
    /// `GET /api/ps`.
    Ps,
    /// `POST /api/generate`.
    Generate,
    /// `POST /api/chat`.
    Chat,
    /// `POST /api/embed`.
    Embed,
    /// `POST /api/embeddings`.
    Embeddings,
    /// `POST /api/me` (cloud account; not offered by ollmlx).
    Me,
    /// `POST /api/signout` and the deprecated key route.
    Signout,
    /// `POST /api/experimental/web_search` / `web_fetch` (cloud; not offered).
    WebExperimental,
    /// `GET /api/experimental/model-recommendations`.
    Recommendations,
    /// `POST /v1/chat/completions`.
    OpenAiChat,
    /// `POST /v1/completions`.
    OpenAiCompletions,
    /// `POST /v1/embeddings`.
    OpenAiEmbeddings,
    /// `GET /v1/models`.
    OpenAiModels,
    /// `GET /v1/models/:model`.
    OpenAiModel(String),
    /// `POST /v1/responses`.
    OpenAiResponses,
    /// `POST /v1/messages`.
    AnthropicMessages,
    /// `GET /metrics`: Prometheus telemetry (an ollmlx extension, not in Ollama's API).
    Metrics,
    /// A table pattern without a handler (never produced by [`ROUTES`]).
    #[doc(hidden)]
    _Reserved,
}

impl Route {
    /// The dialect of this route.
    pub fn dialect(&self) -> Dialect {
        match self {
            Route::OpenAiChat
            | Route::OpenAiCompletions
            | Route::OpenAiEmbeddings
            | Route::OpenAiModels
            | Route::OpenAiModel(_)
            | Route::OpenAiResponses => Dialect::OpenAi,
            Route::AnthropicMessages => Dialect::Anthropic,
            _ => Dialect::Ollama,
        }
    }
}

/// One row of the route table (for docs and the 405 check).
#[derive(Debug, Clone, Copy)]
pub struct RouteRow {
    /// Methods answered (HEAD listed explicitly, as upstream registers it).
    pub methods: &'static [&'static str],
    /// Path pattern (`:param` for one segment).
    pub path: &'static str,
}

/// Every route, as registered upstream.
pub const ROUTES: &[RouteRow] = &[
    RouteRow {
        methods: &["HEAD", "GET"],
        path: "/",
    },
    RouteRow {
        methods: &["HEAD", "GET"],
        path: "/api/version",
    },
    RouteRow {
        methods: &["GET"],
        path: "/api/status",
    },
    RouteRow {
        methods: &["POST"],
        path: "/api/pull",
    },
    RouteRow {
        methods: &["POST"],
        path: "/api/push",
    },
    RouteRow {
        methods: &["HEAD", "GET"],
        path: "/api/tags",
    },
    RouteRow {
        methods: &["POST"],
        path: "/api/show",
    },
    RouteRow {
        methods: &["DELETE"],
        path: "/api/delete",
    },
    RouteRow {
        methods: &["POST"],
        path: "/api/me",
    },
    RouteRow {
        methods: &["POST"],
        path: "/api/signout",
    },
    RouteRow {
        methods: &["DELETE"],
        path: "/api/user/keys/:encodedKey",
    },
    RouteRow {
        methods: &["POST"],
        path: "/api/create",
    },
    RouteRow {
        methods: &["POST", "HEAD"],
        path: "/api/blobs/:digest",
    },
    RouteRow {
        methods: &["POST"],
        path: "/api/copy",
    },
    RouteRow {
        methods: &["POST"],
        path: "/api/experimental/web_search",
    },
    RouteRow {
        methods: &["POST"],
        path: "/api/experimental/web_fetch",
    },
    RouteRow {
        methods: &["GET"],
        path: "/api/experimental/model-recommendations",
    },
    RouteRow {
        methods: &["GET"],
        path: "/api/ps",
    },
    RouteRow {
        methods: &["POST"],
        path: "/api/generate",
    },
    RouteRow {
        methods: &["POST"],
        path: "/api/chat",
    },
    RouteRow {
        methods: &["POST"],
        path: "/api/embed",
    },
    RouteRow {
        methods: &["POST"],
        path: "/api/embeddings",
    },
    RouteRow {
        methods: &["POST"],
        path: "/v1/chat/completions",
    },
    RouteRow {
        methods: &["POST"],
        path: "/v1/completions",
    },
    RouteRow {
        methods: &["POST"],
        path: "/v1/embeddings",
    },
    RouteRow {
        methods: &["GET"],
        path: "/v1/models",
    },
    RouteRow {
        methods: &["GET"],
        path: "/v1/models/:model",
    },
    RouteRow {
        methods: &["POST"],
        path: "/v1/responses",
    },
    RouteRow {
        methods: &["POST"],
        path: "/v1/messages",
    },
    RouteRow {
        methods: &["GET"],
        path: "/metrics",
    },
];

/// Result of matching a request against the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// A route.
    Found(Route),
    /// The path exists with other methods (405).
    MethodNotAllowed,
    /// No such path (404).
    NotFound,
    /// The path matches after removing a trailing slash (upstream redirects).
    Redirect(String),
}

/// Match a method and path.
pub fn match_route(method: &Method, path: &str) -> Match {
    let m = method.as_str();
    for row in ROUTES {
        if let Some(param) = path_matches(row.path, path) {
            if row.methods.contains(&m) {
                return Match::Found(route_for(row.path, m, param));
            }
            return Match::MethodNotAllowed;
        }
    }
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        if ROUTES
            .iter()
            .any(|r| path_matches(r.path, trimmed).is_some())
        {
            return Match::Redirect(trimmed.to_string());
        }
    }
    Match::NotFound
}

/// Whether `path` matches `pattern`; returns the `:param` value (empty when none).
fn path_matches(pattern: &str, path: &str) -> Option<String> {
    let ps: Vec<&str> = pattern.split('/').collect();
    let xs: Vec<&str> = path.split('/').collect();
    if ps.len() != xs.len() {
        return None;
    }
    let mut param = String::new();
    for (p, x) in ps.iter().zip(&xs) {
        if p.starts_with(':') {
            if x.is_empty() {
                return None;
            }
            param = percent_decode(x);
        } else if p != x {
            return None;
        }
    }
    Some(param)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route_for(pattern: &str, method: &str, param: String) -> Route {
    match (pattern, method) {
        ("/", _) => Route::Root,
        ("/api/version", _) => Route::Version,
        ("/api/status", _) => Route::Status,
        ("/api/pull", _) => Route::Pull,
        ("/api/push", _) => Route::Push,
        ("/api/tags", _) => Route::Tags,
        ("/api/show", _) => Route::Show,
        ("/api/delete", _) => Route::Delete,
        ("/api/me", _) => Route::Me,
        ("/api/signout", _) | ("/api/user/keys/:encodedKey", _) => Route::Signout,
        ("/api/create", _) => Route::Create,
        ("/api/blobs/:digest", "HEAD") => Route::BlobHead(param),
        ("/api/blobs/:digest", _) => Route::BlobPut(param),
        ("/api/copy", _) => Route::Copy,
        ("/api/experimental/model-recommendations", _) => Route::Recommendations,
        ("/api/experimental/web_search", _) | ("/api/experimental/web_fetch", _) => {
            Route::WebExperimental
        }
        ("/api/ps", _) => Route::Ps,
        ("/api/generate", _) => Route::Generate,
        ("/api/chat", _) => Route::Chat,
        ("/api/embed", _) => Route::Embed,
        ("/api/embeddings", _) => Route::Embeddings,
        ("/v1/chat/completions", _) => Route::OpenAiChat,
        ("/v1/completions", _) => Route::OpenAiCompletions,
        ("/v1/embeddings", _) => Route::OpenAiEmbeddings,
        ("/v1/models", _) => Route::OpenAiModels,
        ("/v1/models/:model", _) => Route::OpenAiModel(param),
        ("/v1/responses", _) => Route::OpenAiResponses,
        ("/v1/messages", _) => Route::AnthropicMessages,
        ("/metrics", _) => Route::Metrics,
        _ => Route::_Reserved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_on_post_route_is_method_not_allowed() {
        assert_eq!(
            match_route(&Method::GET, "/api/show"),
            Match::MethodNotAllowed
        );
    }

    #[test]
    fn unknown_path_is_not_found() {
        assert_eq!(match_route(&Method::GET, "/api/nope"), Match::NotFound);
    }

    #[test]
    fn head_is_served_where_upstream_registers_it() {
        assert_eq!(match_route(&Method::HEAD, "/"), Match::Found(Route::Root));
        assert_eq!(
            match_route(&Method::HEAD, "/api/tags"),
            Match::Found(Route::Tags)
        );
        assert_eq!(
            match_route(&Method::HEAD, "/api/ps"),
            Match::MethodNotAllowed
        );
    }

    #[test]
    fn params_are_captured_and_single_segment() {
        assert_eq!(
            match_route(&Method::GET, "/v1/models/llama3.2:latest"),
            Match::Found(Route::OpenAiModel("llama3.2:latest".into()))
        );
        assert_eq!(
            match_route(&Method::GET, "/v1/models/ns/model"),
            Match::NotFound
        );
        assert_eq!(
            match_route(&Method::HEAD, "/api/blobs/sha256:abc"),
            Match::Found(Route::BlobHead("sha256:abc".into()))
        );
    }

    #[test]
    fn trailing_slash_redirects() {
        assert_eq!(
            match_route(&Method::GET, "/api/tags/"),
            Match::Redirect("/api/tags".into())
        );
    }
}

#[cfg(test)]
mod doc_tests {
    use super::ROUTES;

    #[test]
    fn api_compat_doc_lists_every_route() {
        let doc = include_str!("../../../docs/api-compat.md");
        let rows: Vec<(String, String)> = doc
            .lines()
            .filter(|l| l.starts_with("| ") && l.contains('`') && !l.starts_with("| methods"))
            .filter_map(|l| {
                let cols: Vec<&str> = l.split('|').map(str::trim).collect();
                Some((
                    cols.get(1)?.to_string(),
                    cols.get(2)?.trim_matches('`').to_string(),
                ))
            })
            .collect();
        for r in ROUTES {
            let methods = r.methods.join(", ");
            assert!(
                rows.iter().any(|(m, p)| p == r.path && *m == methods),
                "docs/api-compat.md lacks a row `| {methods} | `{}` |`",
                r.path
            );
        }
        assert_eq!(
            rows.len(),
            ROUTES.len(),
            "docs/api-compat.md lists routes the server does not serve"
        );
    }
}
