//! Parser: tokens into a tree of text, actions and control structures (`if`, `range`, `with`,
//! `define`, `template`, `block`, `break`, `continue`), as Go's text/template/parse builds it.

use std::collections::HashMap;

use crate::lex::{Tok, Token};
use crate::Error;

/// A sequence of nodes.
pub(crate) type List = Vec<Node>;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template(String, Option<Pipe>),
    Break,
    Continue,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Branch {
    pub pipe: Pipe,
    pub list: List,
    pub else_list: Option<List>,
}

/// `$a, $b := cmd | cmd`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Pipe {
    pub decl: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cmd {
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Dot,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `.A.B` from dot.
    Field(Vec<String>),
    /// `$x.A.B`.
    Var(String, Vec<String>),
    /// A function name.
    Ident(String),
    /// `(pipeline).A.B`.
    Sub(Box<Pipe>, Vec<String>),
}

/// A parsed template set: the main tree plus `define`d ones.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Tree {
    pub root: List,
    pub defines: HashMap<String, List>,
}

pub(crate) fn parse(tokens: Vec<Token>) -> Result<Tree, Error> {
    let mut p = Parser {
        toks: tokens,
        pos: 0,
        defines: HashMap::new(),
        vars: vec![vec!["$".to_string()]],
    };
    let (root, end) = p.list()?;
    if let Some(end) = end {
        return Err(Error::Parse(format!("unexpected {{{{{end}}}}}")));
    }
    Ok(Tree {
        root,
        defines: p.defines,
    })
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    defines: HashMap<String, List>,
    /// Declared variable names per scope (Go rejects undefined variables at parse time).
    vars: Vec<Vec<String>>,
}

/// What ended a list: `end`, `else` (with what follows it on the same action).
enum End {
    End,
    Else,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            End::End => "end",
            End::Else => "else",
        })
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn peek_spaced(&self) -> bool {
        self.toks.get(self.pos).is_none_or(|t| t.spaced)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.tok.clone());
        self.pos += 1;
        t
    }

    fn expect_close(&mut self, what: &str) -> Result<(), Error> {
        match self.next() {
            Some(Tok::Close) => Ok(()),
            other => Err(Error::Parse(format!(
                "unexpected {other:?} in {what}; expected }}}}"
            ))),
        }
    }

    /// Nodes until EOF (returns None) or an `end`/`else` action (consumed up to after the keyword).
    fn list(&mut self) -> Result<(List, Option<End>), Error> {
        let mut out = Vec::new();
        while let Some(t) = self.next() {
            match t {
                Tok::Text(s) => out.push(Node::Text(s)),
                Tok::Open => match self.peek().cloned() {
                    Some(Tok::Ident(k)) if k == "end" => {
                        self.pos += 1;
                        self.expect_close("end")?;
                        return Ok((out, Some(End::End)));
                    }
                    Some(Tok::Ident(k)) if k == "else" => {
                        self.pos += 1;
                        return Ok((out, Some(End::Else)));
                    }
                    Some(Tok::Ident(k)) if matches!(k.as_str(), "if" | "range" | "with") => {
                        self.pos += 1;
                        let n = self.branch(&k)?;
                        out.push(n);
                    }
                    Some(Tok::Ident(k)) if k == "define" => {
                        self.pos += 1;
                        self.define()?;
                    }
                    Some(Tok::Ident(k)) if k == "block" => {
                        self.pos += 1;
                        let name = self.template_name()?;
                        let pipe = self.pipe("block")?;
                        let (body, end) = self.scoped_list()?;
                        if !matches!(end, Some(End::End)) {
                            return Err(Error::Parse("unexpected EOF in block".into()));
                        }
                        self.defines.insert(name.clone(), body);
                        out.push(Node::Template(name, Some(pipe)));
                    }
                    Some(Tok::Ident(k)) if k == "template" => {
                        self.pos += 1;
                        let name = self.template_name()?;
                        if self.peek() == Some(&Tok::Close) {
                            self.pos += 1;
                            out.push(Node::Template(name, None));
                        } else {
                            let pipe = self.pipe("template")?;
                            out.push(Node::Template(name, Some(pipe)));
                        }
                    }
                    Some(Tok::Ident(k)) if k == "break" || k == "continue" => {
                        self.pos += 1;
                        self.expect_close(&k)?;
                        out.push(if k == "break" {
                            Node::Break
                        } else {
                            Node::Continue
                        });
                    }
                    _ => {
                        let pipe = self.pipe("command")?;
                        if !pipe.decl.is_empty() && !pipe.assign {
                            let scope = self.vars.last_mut().expect("scope");
                            scope.extend(pipe.decl.iter().cloned());
                        }
                        out.push(Node::Action(pipe));
                    }
                },
                other => return Err(Error::Parse(format!("unexpected {other:?}"))),
            }
        }
        Ok((out, None))
    }

    fn scoped_list(&mut self) -> Result<(List, Option<End>), Error> {
        self.vars.push(Vec::new());
        let r = self.list();
        self.vars.pop();
        r
    }

    fn template_name(&mut self) -> Result<String, Error> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            other => Err(Error::Parse(format!(
                "unexpected {other:?} in template clause"
            ))),
        }
    }

    fn define(&mut self) -> Result<(), Error> {
        let name = self.template_name()?;
        self.expect_close("define clause")?;
        let saved = std::mem::replace(&mut self.vars, vec![vec!["$".to_string()]]);
        let r = self.list();
        self.vars = saved;
        let (body, end) = r?;
        if !matches!(end, Some(End::End)) {
            return Err(Error::Parse("unexpected EOF in define clause".into()));
        }
        self.defines.insert(name, body);
        Ok(())
    }

    /// After `if`/`range`/`with` (keyword consumed): pipeline, body, optional else chain, end.
    fn branch(&mut self, kind: &str) -> Result<Node, Error> {
        self.vars.push(Vec::new());
        let r = self.branch_inner(kind);
        self.vars.pop();
        r
    }

    fn branch_inner(&mut self, kind: &str) -> Result<Node, Error> {
        let pipe = self.pipe(kind)?;
        if !pipe.decl.is_empty() && !pipe.assign {
            self.vars
                .last_mut()
                .expect("scope")
                .extend(pipe.decl.iter().cloned());
        }
        let (list, end) = self.scoped_list()?;
        let else_list = match end {
            Some(End::End) => None,
            Some(End::Else) => {
                // `{{ else if ... }}` / `{{ else with ... }}` chain into a nested branch that
                // shares this one's `end`.
                match self.peek().cloned() {
                    Some(Tok::Ident(k)) if (k == "if" || k == "with") && kind != "range" => {
                        self.pos += 1;
                        Some(vec![self.branch(&k)?])
                    }
                    _ => {
                        self.expect_close("else")?;
                        let (l, end) = self.scoped_list()?;
                        match end {
                            Some(End::End) => Some(l),
                            Some(End::Else) => {
                                return Err(Error::Parse(format!(
                                    "expected end; found {{{{else}}}} in {kind}"
                                )))
                            }
                            None => return Err(Error::Parse(format!("unexpected EOF in {kind}"))),
                        }
                    }
                }
            }
            None => return Err(Error::Parse(format!("unexpected EOF in {kind}"))),
        };
        let b = Branch {
            pipe,
            list,
            else_list,
        };
        Ok(match kind {
            "if" => Node::If(b),
            "range" => Node::Range(b),
            _ => Node::With(b),
        })
    }

    /// A pipeline up to `}}` (consumed).
    fn pipe(&mut self, ctx: &str) -> Result<Pipe, Error> {
        let mut pipe = Pipe::default();
        // Declarations: `$x :=`, `$x =`, `$i, $e :=`.
        let save = self.pos;
        let mut names = Vec::new();
        loop {
            match self.peek().cloned() {
                Some(Tok::Var(v)) => {
                    self.pos += 1;
                    names.push(v);
                    match self.peek() {
                        Some(Tok::Comma) => {
                            self.pos += 1;
                            continue;
                        }
                        Some(Tok::Declare) => {
                            self.pos += 1;
                            pipe.decl = names;
                            break;
                        }
                        Some(Tok::Assign) => {
                            self.pos += 1;
                            pipe.decl = names;
                            pipe.assign = true;
                            break;
                        }
                        _ => {
                            self.pos = save;
                            break;
                        }
                    }
                }
                _ => {
                    self.pos = save;
                    break;
                }
            }
        }
        if pipe.assign {
            for v in &pipe.decl {
                self.check_var(v)?;
            }
        }
        loop {
            let cmd = self.command(ctx)?;
            pipe.cmds.push(cmd);
            match self.next() {
                Some(Tok::Pipe) => continue,
                Some(Tok::Close) if ctx != "paren" => break,
                Some(Tok::RParen) if ctx == "paren" => break,
                other => {
                    return Err(Error::Parse(format!("unexpected {other:?} in {ctx}")));
                }
            }
        }
        if pipe.cmds.is_empty() || pipe.cmds.iter().any(|c| c.args.is_empty()) {
            return Err(Error::Parse(format!("missing value for {ctx}")));
        }
        Ok(pipe)
    }

    fn check_var(&self, name: &str) -> Result<(), Error> {
        if self.vars.iter().rev().any(|s| s.iter().any(|v| v == name)) {
            Ok(())
        } else {
            Err(Error::Parse(format!("undefined variable \"{name}\"")))
        }
    }

    fn command(&mut self, ctx: &str) -> Result<Cmd, Error> {
        let mut args = Vec::new();
        loop {
            match self.peek() {
                None => return Err(Error::Parse(format!("unclosed action in {ctx}"))),
                Some(Tok::Close) | Some(Tok::Pipe) | Some(Tok::RParen) => break,
                _ => {}
            }
            let arg = self.operand()?;
            args.push(arg);
        }
        if args.is_empty() {
            return Err(Error::Parse(format!("missing value for {ctx}")));
        }
        Ok(Cmd { args })
    }

    fn fields(&mut self) -> Vec<String> {
        let mut f = Vec::new();
        while let Some(Tok::Field(name)) = self.peek().cloned() {
            if self.peek_spaced() {
                break;
            }
            self.pos += 1;
            f.push(name);
        }
        f
    }

    fn operand(&mut self) -> Result<Arg, Error> {
        let t = self
            .next()
            .ok_or_else(|| Error::Parse("unexpected EOF".into()))?;
        Ok(match t {
            Tok::Dot => Arg::Dot,
            Tok::Field(name) => {
                let mut f = vec![name];
                f.extend(self.fields());
                Arg::Field(f)
            }
            Tok::Var(v) => {
                self.check_var(&v)?;
                Arg::Var(v, self.fields())
            }
            Tok::Str(s) => Arg::Str(s),
            Tok::Char(c) => Arg::Int(c as i64),
            Tok::Num(n, true) => Arg::Int(n as i64),
            Tok::Num(n, false) => Arg::Float(n),
            Tok::Ident(i) => match i.as_str() {
                "nil" => Arg::Nil,
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                _ => Arg::Ident(i),
            },
            Tok::LParen => {
                let p = self.pipe("paren")?;
                Arg::Sub(Box::new(p), self.fields())
            }
            other => return Err(Error::Parse(format!("unexpected {other:?} in operand"))),
        })
    }
}
