//! `OLLAMA_HOST` parsed exactly as upstream's `envconfig.Host` does: scheme, host, port
//! (default 11434, 80/443 for an explicit http/https URL without one) and base path, with
//! Go's host:port splitting and IP formatting.

use std::fmt;
use std::net::IpAddr;

use super::parse_go_int;

/// Parsed `OLLAMA_HOST`: scheme, host, port and an optional base path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostUrl {
    /// `http` or `https` (or whatever scheme the user wrote).
    pub scheme: String,
    /// Host without brackets (`127.0.0.1`, `::1`, `example.com`, or empty for `:1234`).
    pub host: String,
    /// Port, kept as written (validated to 0..=65535).
    pub port: String,
    /// Base path without its leading slash (`ollama` for `https://example.com/ollama`).
    pub path: String,
}

impl HostUrl {
    /// `host:port` as Go's `net.JoinHostPort` writes it (`[::1]:11434` for IPv6).
    pub fn host_port(&self) -> String {
        join_host_port(&self.host, &self.port)
    }

    /// The same address with unspecified bind addresses (`0.0.0.0`, `::`) replaced by loopback,
    /// as clients must connect to it (upstream `ConnectableHost`).
    pub fn connectable(&self) -> HostUrl {
        let mut u = self.clone();
        if let Ok(ip) = u.host.parse::<IpAddr>() {
            if ip.is_unspecified() {
                u.host = match ip {
                    IpAddr::V4(_) => "127.0.0.1".into(),
                    IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => "127.0.0.1".into(),
                    IpAddr::V6(_) => "::1".into(),
                };
            }
        }
        u
    }

    /// Base URL plus an API path (`/api/tags`), joined like Go's `URL.JoinPath`.
    pub fn join(&self, path: &str) -> String {
        let base = self.path.trim_end_matches('/');
        let path = path.trim_start_matches('/');
        if base.is_empty() {
            format!("{}://{}/{}", self.scheme, self.host_port(), path)
        } else {
            format!("{}://{}/{}/{}", self.scheme, self.host_port(), base, path)
        }
    }
}

impl fmt::Display for HostUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host_port())?;
        if !self.path.is_empty() {
            if !self.path.starts_with('/') {
                f.write_str("/")?;
            }
            f.write_str(&self.path)?;
        }
        Ok(())
    }
}

/// Parse an `OLLAMA_HOST` value (already `Var`-trimmed) per upstream's rules.
pub fn parse_host(value: &str) -> HostUrl {
    let s = value.trim();
    let mut default_port = "11434";
    let (scheme, hostport) = match s.split_once("://") {
        None if s == "ollama.com" => ("https", "ollama.com:443"),
        None => ("http", s),
        Some((scheme, rest)) => {
            if scheme == "http" {
                default_port = "80";
            } else if scheme == "https" {
                default_port = "443";
            }
            (scheme, rest)
        }
    };
    let (hostport, path) = hostport.split_once('/').unwrap_or((hostport, ""));
    let (mut host, mut port) = match split_host_port(hostport) {
        Some((h, p)) => (h.to_string(), p.to_string()),
        None => {
            let trimmed = hostport.trim_matches(|c| c == '[' || c == ']');
            let host = if let Ok(ip) = trimmed.parse::<IpAddr>() {
                go_ip_string(ip)
            } else if !hostport.is_empty() {
                hostport.to_string()
            } else {
                "127.0.0.1".to_string()
            };
            (host, default_port.to_string())
        }
    };
    let port_ok = matches!(parse_go_int(&port), Some(n) if (0..=65535).contains(&n));
    if !port_ok {
        port = default_port.to_string();
    }
    if host.starts_with('[') && host.ends_with(']') {
        host = host[1..host.len() - 1].to_string();
    }
    HostUrl {
        scheme: scheme.to_string(),
        host,
        port,
        path: path.to_string(),
    }
}

fn go_ip_string(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// Go's `net.SplitHostPort`; `None` where Go returns an error.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = after.strip_prefix(':')?;
        (host, port)
    } else {
        let i = s.rfind(':')?;
        let host = &s[..i];
        if host.contains(':') {
            return None;
        }
        (host, &s[i + 1..])
    };
    if host.contains(['[', ']']) || port.contains(['[', ']']) {
        return None;
    }
    Some((host, port))
}

fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
