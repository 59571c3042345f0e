//! `/set` and `/show` of the `run` REPL ([`super::Repl`]): session parameters, system message,
//! history, word wrap, formats and thinking; what `/show` prints about the model (upstream's
//! wording).

use super::*;

impl Repl {
    pub(super) async fn set(&mut self, client: &Client, line: &str) -> anyhow::Result<Flow> {
        let args: Vec<&str> = line.split_whitespace().collect();
        let Some(&sub) = args.get(1) else {
            self.lines(&self.err, USAGE_SET);
            return Ok(Flow::Continue);
        };
        match sub {
            "history" => self.history = true,
            "nohistory" => self.history = false,
            "wordwrap" => {
                self.opts.word_wrap = true;
                self.out.line("Set 'wordwrap' mode.");
            }
            "nowordwrap" => {
                self.opts.word_wrap = false;
                self.out.line("Set 'nowordwrap' mode.");
            }
            "verbose" => {
                self.opts.verbose = true;
                self.out.line("Set 'verbose' mode.");
            }
            "quiet" => {
                self.opts.verbose = false;
                self.out.line("Set 'quiet' mode.");
            }
            "think" => {
                let level = args.get(2).copied().unwrap_or("");
                self.opts.think = Some(if level.is_empty() {
                    Value::Bool(true)
                } else {
                    Value::String(level.into())
                });
                self.think_set = true;
                self.warn_if_no_thinking(client).await;
                if level.is_empty() {
                    self.out.line("Set 'think' mode.");
                } else {
                    self.out.line(&format!("Set 'think' mode to '{level}'."));
                }
            }
            "nothink" => {
                self.opts.think = Some(Value::Bool(false));
                self.think_set = true;
                self.warn_if_no_thinking(client).await;
                self.out.line("Set 'nothink' mode.");
            }
            "format" => {
                if args.get(2) != Some(&"json") {
                    self.out
                        .line("Invalid or missing format. For 'json' mode use '/set format json'");
                } else {
                    self.opts.format = "json".into();
                    self.out.line("Set format to 'json' mode.");
                }
            }
            "noformat" => {
                self.opts.format.clear();
                self.out.line("Disabled format.");
            }
            "parameter" => {
                if args.len() < 4 {
                    self.lines(&self.err, USAGE_PARAMETERS);
                    return Ok(Flow::Continue);
                }
                let vals: Vec<String> = args[3..].iter().map(|s| s.to_string()).collect();
                match format_param(args[2], &vals) {
                    Err(e) => self.out.line(&format!(
                        "Couldn't set parameter: {}",
                        crate::duration::go_quote(&e.0)
                    )),
                    Ok(v) => {
                        self.out.line(&format!(
                            "Set parameter '{}' to '{}'",
                            args[2],
                            vals.join(", ")
                        ));
                        self.opts.options.insert(args[2].to_string(), v);
                    }
                }
            }
            "system" => {
                if args.len() < 3 {
                    self.lines(&self.err, USAGE_SET);
                    return Ok(Flow::Continue);
                }
                let joined = args[2..].join(" ");
                self.multiline = Multiline::System;
                let text = match joined.strip_prefix("\"\"\"") {
                    None => {
                        self.multiline = Multiline::None;
                        joined.as_str()
                    }
                    Some(rest) => match rest.strip_suffix("\"\"\"") {
                        Some(inner) => {
                            self.multiline = Multiline::None;
                            inner
                        }
                        None => rest,
                    },
                };
                self.sb.push_str(text);
                if self.multiline != Multiline::None {
                    self.use_alt = true;
                    return Ok(Flow::Continue);
                }
                self.opts.system = self.sb.clone();
                let msg = Message {
                    role: "system".into(),
                    content: self.sb.clone(),
                    ..Default::default()
                };
                match self.opts.messages.last_mut() {
                    Some(last) if last.role == "system" => *last = msg,
                    _ => self.opts.messages.push(msg),
                }
                self.out.line("Set system message.");
                self.sb.clear();
            }
            other => self
                .out
                .line(&format!("Unknown command '/set {other}'. Type /? for help")),
        }
        Ok(Flow::Continue)
    }

    pub(super) async fn show(&mut self, client: &Client, line: &str) -> anyhow::Result<()> {
        let args: Vec<&str> = line.split_whitespace().collect();
        let Some(&sub) = args.get(1) else {
            self.lines(&self.err, USAGE_SHOW);
            return Ok(());
        };
        let req = ShowRequest {
            model: self.opts.model.clone(),
            name: self.opts.model.clone(),
            system: self.opts.system.clone(),
            options: Some(self.opts.options.clone()),
            ..Default::default()
        };
        let resp = match client.show(&req).await {
            Ok(r) => r,
            Err(e) => {
                self.out.line("error: couldn't get model");
                return Err(e.into());
            }
        };
        match sub {
            "info" => self.err.put(&show_info(&resp, false)),
            "license" if resp.license.is_empty() => {
                self.out.line("No license was specified for this model.")
            }
            "license" => self.out.line(&resp.license),
            "modelfile" => self.out.line(&resp.modelfile),
            "parameters" => {
                self.out.line("Model defined parameters:");
                if resp.parameters.is_empty() {
                    self.out
                        .line("  No additional parameters were specified for this model.");
                } else {
                    for l in resp.parameters.split('\n') {
                        self.out.line(&format!("  {l}"));
                    }
                }
                self.out.line("");
                if !self.opts.options.is_empty() {
                    self.out.line("User defined parameters:");
                    for (k, v) in &self.opts.options {
                        self.out.line(&format!("  {k:<30} {}", go_value(v)));
                    }
                    self.out.line("");
                }
            }
            "system" => {
                if !self.opts.system.is_empty() {
                    self.out.line(&format!("{}\n", self.opts.system));
                } else if !resp.system.is_empty() {
                    self.out.line(&format!("{}\n", resp.system));
                } else {
                    self.out
                        .line("No system message was specified for this model.");
                }
            }
            "template" if resp.template.is_empty() => self
                .out
                .line("No prompt template was specified for this model."),
            "template" => self.out.line(&resp.template),
            other => self.out.line(&format!(
                "Unknown command '/show {other}'. Type /? for help"
            )),
        }
        Ok(())
    }
}
