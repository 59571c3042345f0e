//! CORS with Ollama's allowed origins (`OLLAMA_ORIGINS` plus the built-in local origins).
//!
//! Sits outside the host check, as upstream orders its middleware. A request without `Origin`,
//! or whose origin is this server's own `Host`, is not cross-origin and passes untouched. A
//! disallowed origin gets a bare 403; an allowed preflight gets 204 with the allow headers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use tower::{Layer, Service};

use crate::body::{status_only, BoxBody};

/// Headers browsers may send (upstream's list, including the OpenAI SDK's `x-stainless-*`).
pub const ALLOW_HEADERS: &str = "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, OpenAI-Beta, x-stainless-arch, x-stainless-async, x-stainless-custom-poll-interval, x-stainless-helper-method, x-stainless-lang, x-stainless-os, x-stainless-package-version, x-stainless-poll-helper, x-stainless-retry-count, x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout";
const ALLOW_METHODS: &str = "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS";

/// The allowed-origin list.
#[derive(Debug, Clone)]
pub struct Origins(Vec<String>);

impl Origins {
    /// `extra` (from `OLLAMA_ORIGINS`, already split) followed by upstream's defaults.
    pub fn new(extra: impl IntoIterator<Item = String>) -> Self {
        let mut v: Vec<String> = extra
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        for host in ["localhost", "127.0.0.1", "0.0.0.0"] {
            v.push(format!("http://{host}"));
            v.push(format!("https://{host}"));
            v.push(format!("http://{host}:*"));
            v.push(format!("https://{host}:*"));
        }
        for s in [
            "app://*",
            "file://*",
            "tauri://*",
            "vscode-webview://*",
            "vscode-file://*",
        ] {
            v.push(s.to_string());
        }
        Origins(v)
    }

    /// Whether `origin` is allowed (wildcards: one `*` matches any run of characters).
    pub fn allows(&self, origin: &str) -> bool {
        const EXTENSIONS: [&str; 4] = [
            "chrome-extension://",
            "safari-extension://",
            "moz-extension://",
            "ms-browser-extension://",
        ];
        if EXTENSIONS.iter().any(|p| origin.starts_with(p)) {
            return true;
        }
        self.0.iter().any(|pat| {
            if pat == "*" {
                return true;
            }
            match pat.split_once('*') {
                Some((pre, post)) => {
                    origin.len() >= pre.len() + post.len()
                        && origin.starts_with(pre)
                        && origin.ends_with(post)
                }
                None => pat == origin,
            }
        })
    }
}

/// Layer adding [`Cors`].
#[derive(Clone)]
pub struct CorsLayer {
    origins: Arc<Origins>,
}

impl CorsLayer {
    /// CORS with these origins.
    pub fn new(origins: Origins) -> Self {
        CorsLayer {
            origins: Arc::new(origins),
        }
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = Cors<S>;
    fn layer(&self, inner: S) -> Cors<S> {
        Cors {
            inner,
            origins: self.origins.clone(),
        }
    }
}

/// The CORS middleware.
#[derive(Clone)]
pub struct Cors<S> {
    inner: S,
    origins: Arc<Origins>,
}

type BoxFut<E> = Pin<Box<dyn Future<Output = Result<Response<BoxBody>, E>> + Send>>;

impl<S, B> Service<Request<B>> for Cors<S>
where
    S: Service<Request<B>, Response = Response<BoxBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<BoxBody>;
    type Error = S::Error;
    type Future = BoxFut<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let Some(origin) = origin else {
            return Box::pin(self.inner.call(req));
        };
        if origin == format!("http://{host}") || origin == format!("https://{host}") {
            return Box::pin(self.inner.call(req));
        }
        if !self.origins.allows(&origin) {
            return Box::pin(async { Ok(status_only(StatusCode::FORBIDDEN)) });
        }
        let allow_origin = HeaderValue::from_str(&origin).ok();
        if req.method() == Method::OPTIONS {
            let mut r = status_only(StatusCode::NO_CONTENT);
            let h = r.headers_mut();
            if let Some(o) = allow_origin {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
            }
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("43200"),
            );
            h.append(header::VARY, HeaderValue::from_static("Origin"));
            return Box::pin(async { Ok(r) });
        }
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut r = fut.await?;
            if let Some(o) = allow_origin {
                r.headers_mut()
                    .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
            }
            r.headers_mut()
                .append(header::VARY, HeaderValue::from_static("Origin"));
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_origins_allow_local_pages_and_apps() {
        let o = Origins::new(Vec::new());
        assert!(o.allows("http://localhost"));
        assert!(o.allows("http://localhost:3000"));
        assert!(o.allows("https://127.0.0.1:8443"));
        assert!(o.allows("vscode-webview://abc"));
        assert!(o.allows("chrome-extension://xyz"));
        assert!(!o.allows("https://evil.example"));
        assert!(!o.allows("http://localhost.evil.example"));
    }

    #[test]
    fn ollama_origins_adds_patterns() {
        let o = Origins::new(vec!["https://*.example.com".to_string()]);
        assert!(o.allows("https://app.example.com"));
        assert!(!o.allows("https://example.org"));
        assert!(Origins::new(vec!["*".to_string()]).allows("https://anything"));
    }
}
