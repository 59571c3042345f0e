//! Model names as Ollama parses them (`[scheme://][host/][namespace/]model[:tag]`).
//!
//! Every request that addresses a stored model (show, copy, delete, create, generate through the
//! [`crate::StoreBackend`]) goes through [`Name::parse`] first, and only a name that
//! [`Name::is_valid`] reaches the filesystem. The part rules (first character `[A-Za-z0-9_]`, no
//! `/`, no leading `.`) are what keeps a name like `../../x` from escaping the manifests directory:
//! [`Name::rel_path`] refuses anything that is not fully qualified.

use std::fmt;
use std::path::PathBuf;

/// Placeholder for a part that a separator promised but that was empty (`ns/` or `:`), chosen,
/// like upstream, so that it can never pass validation.
pub const MISSING_PART: &str = "!MISSING!";

/// The default registry host.
pub const DEFAULT_HOST: &str = "registry.ollama.ai";
/// The default namespace.
pub const DEFAULT_NAMESPACE: &str = "library";
/// The default tag.
pub const DEFAULT_TAG: &str = "latest";
/// The default protocol scheme.
pub const DEFAULT_SCHEME: &str = "https";

/// A structured model name. Not necessarily valid: check [`Name::is_valid`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name {
    /// Registry host, possibly with a port (`registry.ollama.ai`, `localhost:5000`, `hf.co`).
    pub host: String,
    /// Namespace (`library`, a user name).
    pub namespace: String,
    /// Model name.
    pub model: String,
    /// Tag (`latest`, `7b-q4_K_M`).
    pub tag: String,
    /// `https` unless the name started with `scheme://`.
    pub scheme: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Host,
    Namespace,
    Model,
    Tag,
}

impl Name {
    /// Parse `s` and fill missing host, namespace, tag and scheme with the defaults.
    pub fn parse(s: &str) -> Name {
        let mut n = Name::parse_bare(s);
        if n.host.is_empty() {
            n.host = DEFAULT_HOST.to_string();
        }
        if n.namespace.is_empty() {
            n.namespace = DEFAULT_NAMESPACE.to_string();
        }
        if n.tag.is_empty() {
            n.tag = DEFAULT_TAG.to_string();
        }
        if n.scheme.is_empty() {
            n.scheme = DEFAULT_SCHEME.to_string();
        }
        n
    }

    /// Parse `s` without applying defaults.
    pub fn parse_bare(s: &str) -> Name {
        let mut n = Name::default();
        let mut s = s;
        // A tag is only split off when the last ':' comes after the last '/', so `host:5000/m`
        // keeps its port.
        let last_colon = s.rfind(':').map_or(-1, |i| i as isize);
        let last_slash = s.rfind('/').map_or(-1, |i| i as isize);
        if last_colon > last_slash {
            let (before, after) = cut_promised(s, ':');
            s = before;
            n.tag = after.to_string();
        }
        let Some((before, model)) = cut_promised_opt(s, '/') else {
            n.model = s.to_string();
            return n;
        };
        n.model = model.to_string();
        let s = before;
        let Some((before, namespace)) = cut_promised_opt(s, '/') else {
            n.namespace = s.to_string();
            return n;
        };
        n.namespace = namespace.to_string();
        match before.split_once("://") {
            Some((scheme, host)) => {
                n.scheme = scheme.to_string();
                n.host = host.to_string();
            }
            None => n.host = before.to_string(),
        }
        n
    }

    /// Parse the four directory levels below `manifests/` (`host/ns/model/tag`); `None` unless
    /// the result is fully qualified.
    pub fn from_rel_path_parts(parts: &[&str]) -> Option<Name> {
        let [host, namespace, model, tag] = parts else {
            return None;
        };
        let n = Name {
            host: host.to_string(),
            namespace: namespace.to_string(),
            model: model.to_string(),
            tag: tag.to_string(),
            scheme: String::new(),
        };
        n.is_valid().then_some(n)
    }

    /// Whether host, namespace, model and tag are all present and valid.
    pub fn is_valid(&self) -> bool {
        is_valid_part(Part::Host, &self.host)
            && is_valid_part(Part::Namespace, &self.namespace)
            && is_valid_part(Part::Model, &self.model)
            && is_valid_part(Part::Tag, &self.tag)
    }

    /// `host/namespace/model/tag` as a relative path, or `None` for an invalid name (which is
    /// what makes path traversal through a name impossible).
    pub fn rel_path(&self) -> Option<PathBuf> {
        if !self.is_valid() {
            return None;
        }
        let mut p = PathBuf::from(&self.host);
        p.push(&self.namespace);
        p.push(&self.model);
        p.push(&self.tag);
        Some(p)
    }

    /// Shortest display form: `model:tag`, `ns/model:tag`, or `host/ns/model:tag`.
    pub fn display_shortest(&self) -> String {
        let mut out = String::new();
        if !self.host.eq_ignore_ascii_case(DEFAULT_HOST) {
            out.push_str(&self.host);
            out.push('/');
            out.push_str(&self.namespace);
            out.push('/');
        } else if !self.namespace.eq_ignore_ascii_case(DEFAULT_NAMESPACE) {
            out.push_str(&self.namespace);
            out.push('/');
        }
        out.push_str(&self.model);
        out.push(':');
        out.push_str(&self.tag);
        out
    }

    /// `namespace/model`, as used in registry URLs.
    pub fn namespace_model(&self) -> String {
        format!("{}/{}", self.namespace, self.model)
    }

    /// Case-insensitive equality of host, namespace, model and tag.
    pub fn eq_fold(&self, other: &Name) -> bool {
        self.host.eq_ignore_ascii_case(&other.host)
            && self.namespace.eq_ignore_ascii_case(&other.namespace)
            && self.model.eq_ignore_ascii_case(&other.model)
            && self.tag.eq_ignore_ascii_case(&other.tag)
    }

    /// Rewrite each part to the casing used by an existing name that matches it
    /// case-insensitively (upstream's `getExistingName`), so `Llama3:LATEST` finds
    /// `llama3:latest`. A full case-insensitive match wins; otherwise parts are matched one by
    /// one, first match in `existing` order.
    pub fn canonicalize<'a>(&self, existing: impl IntoIterator<Item = &'a Name>) -> Name {
        let existing: Vec<&Name> = existing.into_iter().collect();
        if let Some(e) = existing.iter().find(|e| e.eq_fold(self)) {
            return Name {
                scheme: self.scheme.clone(),
                ..(*e).clone()
            };
        }
        let mut n = self.clone();
        let pick = |mine: &str, f: fn(&Name) -> &str| -> Option<String> {
            existing
                .iter()
                .map(|e| f(e))
                .find(|p| p.eq_ignore_ascii_case(mine))
                .map(str::to_string)
        };
        if let Some(h) = pick(&self.host, |e| &e.host) {
            n.host = h;
        }
        if let Some(ns) = pick(&self.namespace, |e| &e.namespace) {
            n.namespace = ns;
        }
        if let Some(m) = pick(&self.model, |e| &e.model) {
            n.model = m;
        }
        if let Some(t) = pick(&self.tag, |e| &e.tag) {
            n.tag = t;
        }
        n
    }

    /// Whether this name points at Hugging Face (`hf.co/...` or `huggingface.co/...`).
    pub fn is_hugging_face(&self) -> bool {
        self.host.eq_ignore_ascii_case("hf.co") || self.host.eq_ignore_ascii_case("huggingface.co")
    }
}

impl fmt::Display for Name {
    /// `host/namespace/model:tag`, omitting empty parts (upstream's `Name.String`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.host.is_empty() {
            write!(f, "{}/", self.host)?;
        }
        if !self.namespace.is_empty() {
            write!(f, "{}/", self.namespace)?;
        }
        f.write_str(&self.model)?;
        if !self.tag.is_empty() {
            write!(f, ":{}", self.tag)?;
        }
        Ok(())
    }
}

/// Cut at the last `sep`; empty sides become [`MISSING_PART`].
fn cut_promised(s: &str, sep: char) -> (&str, &str) {
    match s.rfind(sep) {
        Some(i) => {
            let before = &s[..i];
            let after = &s[i + sep.len_utf8()..];
            (
                if before.is_empty() {
                    MISSING_PART
                } else {
                    before
                },
                if after.is_empty() {
                    MISSING_PART
                } else {
                    after
                },
            )
        }
        None => (s, ""),
    }
}

fn cut_promised_opt(s: &str, sep: char) -> Option<(&str, &str)> {
    s.contains(sep).then(|| cut_promised(s, sep))
}

fn is_valid_part(kind: Part, s: &str) -> bool {
    let max = if kind == Part::Host { 350 } else { 80 };
    if s.is_empty() || s.len() > max {
        return false;
    }
    for (i, c) in s.char_indices() {
        if i == 0 {
            if !is_alnum_underscore(c) {
                return false;
            }
            continue;
        }
        match c {
            '_' | '-' => {}
            '.' if kind == Part::Namespace => return false,
            '.' => {}
            ':' if kind != Part::Host => return false,
            ':' => {}
            c if is_alnum_underscore(c) => {}
            _ => return false,
        }
    }
    true
}

fn is_alnum_underscore(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(host: &str, ns: &str, model: &str, tag: &str) -> Name {
        Name {
            host: host.into(),
            namespace: ns.into(),
            model: model.into(),
            tag: tag.into(),
            scheme: String::new(),
        }
    }

    #[test]
    fn parse_bare_splits_parts_like_upstream() {
        let cases: &[(&str, Name)] = &[
            ("mistral", n("", "", "mistral", "")),
            ("mistral:7b", n("", "", "mistral", "7b")),
            ("user/mistral:7b", n("", "user", "mistral", "7b")),
            (
                "example.com/user/mistral:7b",
                n("example.com", "user", "mistral", "7b"),
            ),
            (
                "localhost:5000/user/mistral",
                n("localhost:5000", "user", "mistral", ""),
            ),
            (
                "localhost:5000/user/mistral:t",
                n("localhost:5000", "user", "mistral", "t"),
            ),
            ("a/b/c/d", n("a/b", "c", "d", "")),
            ("/m", n("", MISSING_PART, "m", "")),
            ("m:", n("", "", "m", MISSING_PART)),
            (":t", n("", "", MISSING_PART, "t")),
            (
                "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M",
                n("hf.co", "bartowski", "SmolLM2-135M-Instruct-GGUF", "Q4_K_M"),
            ),
        ];
        for (s, want) in cases {
            let got = Name::parse_bare(s);
            assert_eq!(
                (&got.host, &got.namespace, &got.model, &got.tag),
                (&want.host, &want.namespace, &want.model, &want.tag),
                "{s}"
            );
        }
    }

    #[test]
    fn parse_applies_defaults_and_scheme() {
        let got = Name::parse("mistral");
        assert_eq!(got.to_string(), "registry.ollama.ai/library/mistral:latest");
        assert_eq!(got.scheme, "https");
        let got = Name::parse("http://localhost:5000/ns/m:t");
        assert_eq!(got.scheme, "http");
        assert_eq!(got.host, "localhost:5000");
        assert!(got.is_valid());
    }

    #[test]
    fn parse_fills_defaults_and_keeps_ports_and_strips_schemes() {
        let n = Name::parse("llama3.2");
        assert_eq!(n.to_string(), "registry.ollama.ai/library/llama3.2:latest");
        let n = Name::parse("host:5000/ns/m:7b");
        assert_eq!(n.to_string(), "host:5000/ns/m:7b");
        assert_eq!(n.display_shortest(), "host:5000/ns/m:7b");
        assert_eq!(Name::parse("me/m").display_shortest(), "me/m:latest");
        assert_eq!(Name::parse("https://h.example/ns/m:t").host, "h.example");
    }

    #[test]
    fn validates_like_upstream() {
        assert!(Name::parse("llama3.2:1b").is_valid());
        assert!(Name::parse("my_model-x").is_valid());
        assert!(!Name::parse("-bad").is_valid());
        assert!(!Name::parse("ns.dot/m").is_valid());
        assert!(!Name::parse("m:").is_valid());
        assert!(!Name::parse("/m").is_valid());
        assert!(!Name::parse("bad name").is_valid());
        assert!(!Name::parse(&"x".repeat(81)).is_valid());
    }

    #[test]
    fn validity_follows_part_rules() {
        let valid = [
            "mistral",
            "llama3.2:1b",
            "user/model:tag",
            "_x/y_:z_",
            "host.com:8080/ns/m:t",
            "hf.co/user/Repo-Name.GGUF:Q4_K_M",
            &"a".repeat(80),
        ];
        for s in valid {
            assert!(Name::parse(s).is_valid(), "{s} should be valid");
        }
        let long_model = "a".repeat(81);
        let long_host = format!("{}/ns/m", "h".repeat(351));
        let invalid = [
            "",
            ":",
            "/",
            "../../x",
            "..",
            "./x",
            "x/../y",
            "ns.dot/m",
            "m:t:u",
            "-m",
            "m@sha256:abc",
            "m:.t",
            "m/",
            "héllo",
            "a b",
            "m:t/x",
            long_model.as_str(),
            long_host.as_str(),
        ];
        for s in invalid {
            assert!(!Name::parse(s).is_valid(), "{s:?} should be invalid");
            assert!(
                Name::parse(s).rel_path().is_none(),
                "{s:?} must not map to a path"
            );
        }
    }

    #[test]
    fn traversal_names_never_produce_paths() {
        for s in [
            "../../etc/passwd",
            "..%2f/x",
            "a/../../b:c",
            "/abs/path",
            "a\\b",
        ] {
            assert!(Name::parse(s).rel_path().is_none(), "{s}");
        }
        let p = Name::parse("llama3").rel_path().unwrap();
        assert_eq!(p, PathBuf::from("registry.ollama.ai/library/llama3/latest"));
    }

    #[test]
    fn display_shortest_omits_default_host_and_namespace() {
        let cases = [
            ("llama3.2", "llama3.2:latest"),
            ("user/m:t", "user/m:t"),
            ("example.com/library/m", "example.com/library/m:latest"),
            ("REGISTRY.ollama.ai/LIBRARY/m:x", "m:x"),
            ("hf.co/u/r:Q4_K_M", "hf.co/u/r:Q4_K_M"),
        ];
        for (s, want) in cases {
            assert_eq!(Name::parse(s).display_shortest(), want, "{s}");
        }
    }

    #[test]
    fn canonicalize_adopts_existing_casing() {
        let existing = [Name::parse("Llama3:Latest"), Name::parse("other/m:t")];
        let got = Name::parse("LLAMA3:latest").canonicalize(existing.iter());
        assert_eq!(got.display_shortest(), "Llama3:Latest");
        // a new tag on an existing model keeps the model's stored casing and its own tag
        let got = Name::parse("llama3:new").canonicalize(existing.iter());
        assert_eq!(got.display_shortest(), "Llama3:new");
        let got = Name::parse("brand:new").canonicalize(existing.iter());
        assert_eq!(got.display_shortest(), "brand:new");
    }

    #[test]
    fn from_rel_path_parts_requires_full_qualification() {
        assert!(Name::from_rel_path_parts(&["h", "n", "m", "t"]).is_some());
        assert!(Name::from_rel_path_parts(&["h", "n", "m"]).is_none());
        assert!(Name::from_rel_path_parts(&["h", "n.x", "m", "t"]).is_none());
    }
}
