//! A small HTTP/1.1 client (hyper-util) that sends a cassette's request to a server and
//! captures the answer as a cassette response, bounded in time.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

use crate::cassette::{relevant_headers, Request, Response, RESPONSE_HEADERS};
use crate::error::Error;

/// Default bound for one request, body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A client for one base URL.
#[derive(Clone)]
pub struct Client {
    base: String,
    inner: HyperClient<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

/// Check and canonicalize a base URL: `host:port` gains `http://`, a trailing `/` is dropped.
pub fn base_url(url: &str) -> Result<String, Error> {
    let url = url.trim();
    let url = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let url = match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", rest.trim_end_matches('/')),
        None => url,
    };
    let bad = |m: &str| Error::Url {
        url: url.clone(),
        message: m.to_string(),
    };
    if !url.starts_with("http://") {
        return Err(bad("only http:// is supported"));
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(url)
}

impl Client {
    /// A client for `base` (see [`base_url`]) with a per-request `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, Error> {
        let base = base_url(base)?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        let inner = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(5))
            .build(connector);
        Ok(Client {
            base,
            inner,
            timeout,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Send `req` and read the whole answer (within the timeout).
    pub async fn send(&self, req: &Request) -> Result<Response, Error> {
        let url = format!("{}{}", self.base, req.path);
        let secs = self.timeout.as_secs_f64();
        match tokio::time::timeout(self.timeout, self.send_inner(&url, req)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout { url, secs }),
        }
    }

    async fn send_inner(&self, url: &str, req: &Request) -> Result<Response, Error> {
        let mut b = http::Request::builder()
            .method(req.method.as_str())
            .uri(url);
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let http_req = b
            .body(Full::new(Bytes::from(req.body.clone())))
            .map_err(|e| Error::Http {
                url: url.to_string(),
                message: format!("bad request: {e}"),
            })?;
        let resp = self.inner.request(http_req).await.map_err(|e| {
            if e.is_connect() {
                Error::Unreachable {
                    url: self.base.clone(),
                    message: source_chain(&e),
                }
            } else {
                Error::Http {
                    url: url.to_string(),
                    message: source_chain(&e),
                }
            }
        })?;
        let status = resp.status().as_u16();
        let headers = relevant_headers(
            resp.headers()
                .iter()
                .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v))),
            RESPONSE_HEADERS,
        );
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::Http {
                url: url.to_string(),
                message: format!("reading body: {e}"),
            })?
            .to_bytes();
        let text = String::from_utf8_lossy(&body).into_owned();
        Ok(Response::from_body(status, headers, text))
    }

    /// Send `req` and return the raw status, content type and body bytes (proxy byte checks).
    pub async fn send_raw(&self, req: &Request) -> Result<(u16, String, Bytes), Error> {
        let r = self.send(req).await?;
        let ct = r.header("content-type").unwrap_or_default().to_string();
        Ok((r.status, ct, Bytes::from(r.body_text())))
    }
}

fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_canonicalized_and_https_is_refused() {
        assert_eq!(base_url("127.0.0.1:1/").unwrap(), "http://127.0.0.1:1");
        assert!(base_url("https://x").is_err());
        assert!(base_url("http://").is_err());
    }

    #[tokio::test]
    async fn an_unreachable_target_is_a_clear_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let c = Client::new(&addr.to_string(), Duration::from_secs(5)).unwrap();
        let err = c
            .send(&Request {
                method: "GET".into(),
                path: "/".into(),
                ..Request::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unreachable { .. }), "{err}");
        assert!(err
            .to_string()
            .starts_with("cannot reach http://127.0.0.1:"));
    }
}
