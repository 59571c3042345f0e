//! ollmlx-gotmpl: Ollama's prompt templates, which are Go `text/template` source.
//!
//! Request path: a model's TEMPLATE (Modelfile `TEMPLATE`, or the template layer of a model pulled
//! from an Ollama registry) is rendered here into the prompt string the engine tokenizes, the way
//! Ollama's server renders it before handing the prompt to its runner. Models without a Go TEMPLATE
//! use their Jinja chat template in the engine instead.
//!
//! [`Template`] parses Go template syntax (actions, pipelines, variables, `if`/`range`/`with`/
//! `define`/`template`/`block`, trim markers, comments) and executes it over [`Value`]s with Go's
//! builtins plus Ollama's functions. [`Template::render`] applies Ollama's calling convention:
//! templates that use `.Messages` get the whole conversation; older templates (`.System`,
//! `.Prompt`, `.Response`) are executed once per turn and the last turn is cut at `.Response`.

mod exec;
mod funcs;
mod lex;
mod ollama;
mod parse;
mod value;

pub use ollama::{Message, ToolCall, Values};
pub use value::Value;

/// Template errors: parse errors when the template is read, exec errors when it runs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The source is not a valid template.
    #[error("template: {0}")]
    Parse(String),
    /// Execution failed (missing struct field, bad function arguments, ...).
    #[error("template: {0}")]
    Exec(String),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    tree: parse::Tree,
    raw: String,
    vars: Vec<String>,
}

impl Template {
    /// Parse `src`. Like Ollama, a template that mentions neither `.Messages` nor `.Response` gets
    /// `{{ .Response }}` appended.
    pub fn parse(src: &str) -> Result<Self, Error> {
        let mut tree = parse::parse(lex::lex(src)?)?;
        let vars = identifiers(&tree);
        if !vars.iter().any(|v| v == "messages" || v == "response") {
            tree.root.push(parse::Node::Action(parse::Pipe {
                decl: Vec::new(),
                assign: false,
                cmds: vec![parse::Cmd {
                    args: vec![parse::Arg::Field(vec!["Response".into()])],
                }],
            }));
        }
        Ok(Template {
            tree,
            raw: src.to_string(),
            vars,
        })
    }

    /// The template source as given.
    pub fn source(&self) -> &str {
        &self.raw
    }

    /// Lower-cased field and variable identifiers the template mentions (sorted, unique).
    pub fn vars(&self) -> &[String] {
        &self.vars
    }

    /// Whether the source contains `s` (Ollama's capability checks use this, e.g. `.Tools`).
    pub fn contains(&self, s: &str) -> bool {
        self.raw.contains(s)
    }

    /// Execute over `data` (the `.` of the template).
    pub fn execute(&self, data: &Value) -> Result<String, Error> {
        exec::execute(&self.tree, &self.tree.root, data)
    }
}

/// Identifiers of every field and variable in the tree, as Ollama's `Template.Vars` lists them.
fn identifiers(tree: &parse::Tree) -> Vec<String> {
    use parse::{Arg, Node, Pipe};
    fn pipe(p: &Pipe, out: &mut Vec<String>) {
        for c in &p.cmds {
            for a in &c.args {
                match a {
                    Arg::Field(f) => out.extend(f.iter().cloned()),
                    Arg::Var(v, f) => {
                        out.push(v.clone());
                        out.extend(f.iter().cloned());
                    }
                    Arg::Sub(p, _) => pipe(p, out),
                    _ => {}
                }
            }
        }
    }
    fn list(l: &[Node], out: &mut Vec<String>) {
        for n in l {
            match n {
                Node::Action(p) => pipe(p, out),
                Node::If(b) | Node::Range(b) | Node::With(b) => {
                    pipe(&b.pipe, out);
                    list(&b.list, out);
                    if let Some(e) = &b.else_list {
                        list(e, out);
                    }
                }
                Node::Template(_, Some(p)) => pipe(p, out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    list(&tree.root, &mut out);
    for body in tree.defines.values() {
        list(body, &mut out);
    }
    let mut v: Vec<String> = out.into_iter().map(|s| s.to_lowercase()).collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests;
