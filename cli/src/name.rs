//! Model names (`[host/][namespace/]model[:tag]`) as upstream's `types/model` parses them,
//! for client-side validation (`create`) and display (`push`).

/// Default registry host.
pub const DEFAULT_HOST: &str = "registry.ollama.ai";
/// Default namespace.
pub const DEFAULT_NAMESPACE: &str = "library";
/// Default tag.
pub const DEFAULT_TAG: &str = "latest";

const MISSING: &str = "!MISSING!";

/// A parsed model name with defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// Registry host.
    pub host: String,
    /// Namespace (user or `library`).
    pub namespace: String,
    /// Model.
    pub model: String,
    /// Tag.
    pub tag: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Host,
    Namespace,
    Model,
    Tag,
}

fn cut_promised(s: &str, sep: char) -> Option<(&str, &str)> {
    let i = s.rfind(sep)?;
    let (before, after) = (&s[..i], &s[i + 1..]);
    Some((
        if before.is_empty() { MISSING } else { before },
        if after.is_empty() { MISSING } else { after },
    ))
}

impl Name {
    /// Parse with defaults (upstream `model.ParseName`).
    pub fn parse(s: &str) -> Name {
        let mut n = Name {
            host: String::new(),
            namespace: String::new(),
            model: String::new(),
            tag: String::new(),
        };
        let mut s = s;
        if s.rfind(':').map(|i| i as i64).unwrap_or(-1)
            > s.rfind('/').map(|i| i as i64).unwrap_or(-1)
        {
            if let Some((before, tag)) = cut_promised(s, ':') {
                s = before;
                n.tag = tag.into();
            }
        }
        match cut_promised(s, '/') {
            None => n.model = s.into(),
            Some((rest, model)) => {
                n.model = model.into();
                match cut_promised(rest, '/') {
                    None => n.namespace = rest.into(),
                    Some((rest, ns)) => {
                        n.namespace = ns.into();
                        n.host = match rest.split_once("://") {
                            Some((_, host)) => host.into(),
                            None => rest.into(),
                        };
                    }
                }
            }
        }
        if n.host.is_empty() {
            n.host = DEFAULT_HOST.into();
        }
        if n.namespace.is_empty() {
            n.namespace = DEFAULT_NAMESPACE.into();
        }
        if n.tag.is_empty() {
            n.tag = DEFAULT_TAG.into();
        }
        n
    }

    /// Every part present and well-formed (upstream `Name.IsValid`).
    pub fn is_valid(&self) -> bool {
        valid_part(Part::Host, &self.host)
            && valid_part(Part::Namespace, &self.namespace)
            && valid_part(Part::Model, &self.model)
            && valid_part(Part::Tag, &self.tag)
    }

    /// `host/namespace/model:tag`.
    pub fn full(&self) -> String {
        format!(
            "{}/{}/{}:{}",
            self.host, self.namespace, self.model, self.tag
        )
    }

    /// Shortest display form: host and `library` omitted when default, tag always shown.
    pub fn display_shortest(&self) -> String {
        let mut s = String::new();
        if !self.host.eq_ignore_ascii_case(DEFAULT_HOST) {
            s.push_str(&format!("{}/{}/", self.host, self.namespace));
        } else if !self.namespace.eq_ignore_ascii_case(DEFAULT_NAMESPACE) {
            s.push_str(&format!("{}/", self.namespace));
        }
        s.push_str(&format!("{}:{}", self.model, self.tag));
        s
    }
}

fn valid_part(kind: Part, s: &str) -> bool {
    let max = if kind == Part::Host { 350 } else { 80 };
    if s.is_empty() || s.len() > max {
        return false;
    }
    s.bytes().enumerate().all(|(i, b)| {
        let alnum = b.is_ascii_alphanumeric() || b == b'_';
        if i == 0 {
            return alnum;
        }
        match b {
            b'-' => true,
            b'.' => kind != Part::Namespace,
            b':' => kind == Part::Host,
            _ => alnum,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parts_with_defaults() {
        let n = Name::parse("llama3.2");
        assert_eq!(n.full(), "registry.ollama.ai/library/llama3.2:latest");
        let n = Name::parse("host:5000/ns/m:7b");
        assert_eq!(n.full(), "host:5000/ns/m:7b");
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
}
