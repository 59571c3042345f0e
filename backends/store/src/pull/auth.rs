//! Registry authentication: an Ollama-protocol client ([`RegistryClient`]) that answers a `401`
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge by fetching a token from the
//! realm and retrying once with `Authorization: Bearer <token>`.
//!
//! Upstream signs the token request with the user's ed25519 key (`~/.ollama/id_ed25519`);
//! ollmlx has no key, so the request goes out unsigned (`service`, `scope`, `ts`, `nonce` query
//! only). Anonymous pulls of public models work that way; private namespaces do not. As upstream
//! does, a realm on another host than the registry is refused, so a token is never sent
//! cross-origin.

use std::sync::{Arc, Mutex};

use http::{header, HeaderName, Method, Response, StatusCode};
use hyper::body::Incoming;

use super::error::PullError;
use super::http::{query_escape, url_authority, url_host, Http, ReqBody};

/// A parsed `WWW-Authenticate: Bearer …` challenge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub realm: String,
    pub service: String,
    pub scope: String,
}

/// Parse a Bearer challenge the way upstream does (quoted values; a `"` not followed by `,`
/// is part of the value).
pub(crate) fn parse_challenge(h: &str) -> Challenge {
    let s = h.trim();
    let s = s
        .strip_prefix("Bearer ")
        .or_else(|| s.strip_prefix("bearer "))
        .unwrap_or(s);
    let value = |key: &str| -> String {
        let pat = format!("{key}=");
        let Some(i) = s.find(&pat) else {
            return String::new();
        };
        let rest = &s[i + pat.len()..];
        let rest = rest.strip_prefix('"').unwrap_or(rest);
        let b = rest.as_bytes();
        let mut end = 0;
        while end < b.len() {
            if b[end] == b'"' && (end + 1 >= b.len() || b[end + 1] == b',') {
                break;
            }
            if b[end] == b',' && !s[i + pat.len()..].starts_with('"') {
                break;
            }
            end += 1;
        }
        rest[..end].to_string()
    };
    Challenge {
        realm: value("realm"),
        service: value("service"),
        scope: value("scope"),
    }
}

/// Talks to one registry (`scheme://host`), remembering the bearer token it obtained.
#[derive(Clone)]
pub(crate) struct RegistryClient {
    pub http: Http,
    /// `scheme://host[:port]`.
    pub base: String,
    token: Arc<Mutex<Option<String>>>,
}

impl RegistryClient {
    pub(crate) fn new(http: Http, base: String) -> Self {
        RegistryClient {
            http,
            base,
            token: Arc::default(),
        }
    }

    /// The current `Authorization` value, if a token was obtained.
    pub(crate) fn auth_header(&self) -> Option<String> {
        self.token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|t| format!("Bearer {t}"))
    }

    /// Send a request (with the token, if any); on 401 fetch a token and retry once.
    /// 404 ⇒ [`PullError::NotFound`]; other statuses ≥ 400 ⇒ [`PullError::Status`].
    /// `body` builds a fresh body per attempt.
    pub(crate) async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(HeaderName, String)],
        body: &(dyn Fn() -> ReqBody + Send + Sync),
    ) -> Result<Response<Incoming>, PullError> {
        for _ in 0..2 {
            let mut h = headers.to_vec();
            if let Some(a) = self.auth_header() {
                h.push((header::AUTHORIZATION, a));
            }
            let resp = self.http.request(method.clone(), url, &h, body()).await?;
            match resp.status() {
                StatusCode::UNAUTHORIZED => {
                    let ch = resp
                        .headers()
                        .get(header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .map(parse_challenge)
                        .unwrap_or_default();
                    drop(resp);
                    let token = self.fetch_token(&ch, url).await?;
                    *self.token.lock().unwrap_or_else(|p| p.into_inner()) = Some(token);
                }
                StatusCode::NOT_FOUND => return Err(PullError::NotFound),
                s if s.as_u16() >= 400 => return Err(self.http.status_error(resp).await),
                _ => return Ok(resp),
            }
        }
        Err(PullError::Unauthorized)
    }

    /// GET the realm with `service`, `scope`, `ts` and `nonce` (unsigned) and read `{"token"}`.
    async fn fetch_token(&self, ch: &Challenge, request_url: &str) -> Result<String, PullError> {
        if ch.realm.is_empty() {
            return Err(PullError::Unauthorized);
        }
        let realm_host = url_host(&ch.realm);
        let orig_host = url_host(request_url);
        if realm_host != orig_host {
            return Err(PullError::Invalid(format!(
                "realm host {:?} does not match original host {:?}",
                url_authority(&ch.realm),
                url_authority(request_url)
            )));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut q = vec![
            format!("service={}", query_escape(&ch.service)),
            format!("ts={}", now / 1_000_000_000),
            format!("nonce={}", query_escape(&format!("{now:x}"))),
        ];
        for s in ch.scope.split(' ').filter(|s| !s.is_empty()) {
            q.push(format!("scope={}", query_escape(s)));
        }
        q.sort();
        let sep = if ch.realm.contains('?') { '&' } else { '?' };
        let url = format!("{}{sep}{}", ch.realm, q.join("&"));
        let resp = self
            .http
            .request(Method::GET, &url, &[], super::http::empty())
            .await?;
        if resp.status().as_u16() >= 400 {
            return Err(self.http.status_error(resp).await);
        }
        let body = self.http.read_body(resp, 1 << 20).await?;
        #[derive(serde::Deserialize)]
        struct Token {
            #[serde(default)]
            token: String,
        }
        let t: Token = serde_json::from_slice(&body)
            .map_err(|e| PullError::Invalid(format!("token response: {e}")))?;
        if t.token.is_empty() {
            return Err(PullError::Unauthorized);
        }
        Ok(t.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_values_are_extracted() {
        let c = parse_challenge(
            r#"Bearer realm="https://registry.ollama.ai/v2/token",service="registry.ollama.ai",scope="repository:library/m:pull""#,
        );
        assert_eq!(c.realm, "https://registry.ollama.ai/v2/token");
        assert_eq!(c.service, "registry.ollama.ai");
        assert_eq!(c.scope, "repository:library/m:pull");
        assert_eq!(parse_challenge("Basic x"), Challenge::default());
    }
}
