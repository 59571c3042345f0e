//! Executor: walks a parsed tree over a [`Value`], with Go's variable scoping, `range` over
//! slices/maps/ints, `break`/`continue`, `template` calls and `missingkey=zero` lookups.

use crate::funcs;
use crate::parse::{Arg, Branch, Cmd, List, Node, Pipe, Tree};
use crate::value::Value;
use crate::Error;

/// Nested `template` calls allowed before giving up (Go: 100000; a prompt needs a handful).
const MAX_DEPTH: usize = 256;

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct Exec<'t> {
    tree: &'t Tree,
    out: String,
    vars: Vec<(String, Value)>,
    depth: usize,
}

pub(crate) fn execute(tree: &Tree, root: &List, data: &Value) -> Result<String, Error> {
    let mut e = Exec {
        tree,
        out: String::new(),
        vars: vec![("$".into(), data.clone())],
        depth: 0,
    };
    e.list(root, data)?;
    Ok(e.out)
}

impl Exec<'_> {
    fn list(&mut self, list: &List, dot: &Value) -> Result<Flow, Error> {
        for n in list {
            match self.node(n, dot)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    fn scoped(&mut self, list: &List, dot: &Value) -> Result<Flow, Error> {
        let mark = self.vars.len();
        let r = self.list(list, dot);
        self.vars.truncate(mark);
        r
    }

    fn node(&mut self, n: &Node, dot: &Value) -> Result<Flow, Error> {
        match n {
            Node::Text(s) => self.out.push_str(s),
            Node::Action(p) => {
                let v = self.pipe(p, dot)?;
                if p.decl.is_empty() {
                    v.print(&mut self.out);
                }
            }
            Node::If(b) => {
                let mark = self.vars.len();
                let v = self.pipe(&b.pipe, dot)?;
                let f = if v.truthy() {
                    self.scoped(&b.list, dot)?
                } else if let Some(e) = &b.else_list {
                    self.scoped(e, dot)?
                } else {
                    Flow::Normal
                };
                self.vars.truncate(mark);
                return Ok(f);
            }
            Node::With(b) => {
                let mark = self.vars.len();
                let v = self.pipe(&b.pipe, dot)?;
                let f = if v.truthy() {
                    self.scoped(&b.list, &v)?
                } else if let Some(e) = &b.else_list {
                    self.scoped(e, dot)?
                } else {
                    Flow::Normal
                };
                self.vars.truncate(mark);
                return Ok(f);
            }
            Node::Range(b) => return self.range(b, dot),
            Node::Template(name, pipe) => {
                let body = self
                    .tree
                    .defines
                    .get(name)
                    .ok_or_else(|| Error::Exec(format!("no such template \"{name}\"")))?;
                let v = match pipe {
                    Some(p) => self.pipe(p, dot)?,
                    None => Value::Nil,
                };
                if self.depth >= MAX_DEPTH {
                    return Err(Error::Exec("exceeded maximum template depth".into()));
                }
                self.depth += 1;
                let saved = std::mem::replace(&mut self.vars, vec![("$".into(), v.clone())]);
                let r = self.list(body, &v);
                self.vars = saved;
                self.depth -= 1;
                r?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn range(&mut self, b: &Branch, dot: &Value) -> Result<Flow, Error> {
        let mark = self.vars.len();
        // The declared variables are set per iteration, not from the pipeline's result.
        let undeclared = Pipe {
            decl: Vec::new(),
            assign: false,
            cmds: b.pipe.cmds.clone(),
        };
        let v = self.pipe(&undeclared, dot)?;
        let items: Vec<(Value, Value)> = match v {
            Value::List(l) | Value::JsonList(l, _) => l
                .into_iter()
                .enumerate()
                .map(|(i, e)| (Value::Int(i as i64), e))
                .collect(),
            Value::Map(m) | Value::JsonMap(m, _) => {
                m.into_iter().map(|(k, e)| (Value::Str(k), e)).collect()
            }
            Value::Int(n) => (0..n.max(0))
                .map(|i| (Value::Int(i), Value::Int(i)))
                .collect(),
            Value::Nil => Vec::new(),
            other => {
                return Err(Error::Exec(format!(
                    "range can't iterate over {}",
                    other.type_name()
                )))
            }
        };
        if items.is_empty() {
            if let Some(e) = &b.else_list {
                self.scoped(e, dot)?;
            }
            self.vars.truncate(mark);
            return Ok(Flow::Normal);
        }
        for (k, e) in items {
            self.vars.truncate(mark);
            match b.pipe.decl.as_slice() {
                [] => {}
                [one] => self.vars.push((one.clone(), e.clone())),
                [i, el, ..] => {
                    self.vars.push((i.clone(), k));
                    self.vars.push((el.clone(), e.clone()));
                }
            }
            match self.scoped(&b.list, &e)? {
                Flow::Break => break,
                Flow::Continue | Flow::Normal => {}
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value, Error> {
        let mut prev: Option<Value> = None;
        for c in &p.cmds {
            prev = Some(self.cmd(c, dot, prev)?);
        }
        let v = prev.unwrap_or_default();
        if p.assign {
            for name in &p.decl {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => return Err(Error::Exec(format!("undefined variable: {name}"))),
                }
            }
        } else {
            for name in &p.decl {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn cmd(&mut self, c: &Cmd, dot: &Value, piped: Option<Value>) -> Result<Value, Error> {
        let first = &c.args[0];
        if let Arg::Ident(name) = first {
            if name == "and" || name == "or" {
                return self.and_or(name == "and", &c.args[1..], dot, piped);
            }
            let mut args = Vec::with_capacity(c.args.len());
            for a in &c.args[1..] {
                args.push(self.arg(a, dot)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            return funcs::call(name, args);
        }
        if c.args.len() > 1 || piped.is_some() {
            return Err(Error::Exec(format!(
                "can't give argument to non-function {}",
                describe(first)
            )));
        }
        self.arg(first, dot)
    }

    /// `and`/`or` stop evaluating at the first falsy/truthy argument (Go 1.18+).
    fn and_or(
        &mut self,
        and: bool,
        args: &[Arg],
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, Error> {
        if args.is_empty() && piped.is_none() {
            return Err(Error::Exec(format!(
                "wrong number of args for {}: want at least 1 got 0",
                if and { "and" } else { "or" }
            )));
        }
        let mut last = Value::Nil;
        for a in args {
            last = self.arg(a, dot)?;
            if last.truthy() != and {
                return Ok(last);
            }
        }
        if let Some(p) = piped {
            last = p;
        }
        Ok(last)
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value, Error> {
        Ok(match a {
            Arg::Dot => dot.clone(),
            Arg::Nil => Value::Nil,
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Int(i) => Value::Int(*i),
            Arg::Float(f) => Value::Float(*f),
            Arg::Str(s) => Value::Str(s.clone()),
            Arg::Field(path) => walk(dot.clone(), path)?,
            Arg::Var(name, path) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| Error::Exec(format!("undefined variable: {name}")))?;
                walk(v, path)?
            }
            Arg::Ident(name) => funcs::call(name, Vec::new())?,
            Arg::Sub(p, path) => {
                let v = self.pipe(p, dot)?;
                walk(v, path)?
            }
        })
    }
}

fn walk(mut v: Value, path: &[String]) -> Result<Value, Error> {
    for name in path {
        v = v.field(name).ok_or_else(|| {
            Error::Exec(format!(
                "can't evaluate field {name} in type {}",
                v.type_name()
            ))
        })?;
    }
    Ok(v)
}

fn describe(a: &Arg) -> String {
    match a {
        Arg::Field(p) => format!(".{}", p.join(".")),
        Arg::Var(n, p) if p.is_empty() => n.clone(),
        Arg::Var(n, p) => format!("{n}.{}", p.join(".")),
        Arg::Dot => ".".into(),
        other => format!("{other:?}"),
    }
}
