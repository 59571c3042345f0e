//! Help and argument errors laid out like upstream's cobra/pflag CLI: `Usage:` with the
//! use line and `[flags]`, `Aliases:`, `Available Commands:` padded to 11, alphabetical
//! `Flags:` with pflag's type names and aligned descriptions, then the
//! `Environment Variables:` block; and cobra's argument-count and unknown-flag errors.

use clap::{ArgAction, Command};

use crate::env::{help_block, CLIENT_HELP_VARS, RUN_HELP_VARS, SERVE_HELP_VARS};

/// Upstream's `Use` line (after the command path) for each command.
fn use_args(name: &str) -> &'static str {
    match name {
        "create" | "show" | "stop" | "pull" | "push" => " MODEL",
        "run" => " MODEL [PROMPT]",
        "cp" => " SOURCE DESTINATION",
        "rm" => " MODEL [MODEL...]",
        _ => "",
    }
}

/// Upstream's positional-argument rule: (minimum, maximum) counts.
fn arity(name: &str) -> (usize, Option<usize>) {
    match name {
        "create" | "show" | "stop" | "pull" | "push" => (1, Some(1)),
        "run" | "rm" => (1, None),
        "cp" => (2, Some(2)),
        "serve" | "signin" | "signout" => (0, Some(0)),
        _ => (0, None),
    }
}

fn env_vars(name: &str) -> &'static [&'static str] {
    match name {
        "serve" => SERVE_HELP_VARS,
        "run" => RUN_HELP_VARS,
        "signin" | "signout" => &[],
        _ => CLIENT_HELP_VARS,
    }
}

/// pflag's `FlagUsages`: sorted by name, `-s, --name type[=default]`, descriptions aligned.
fn flag_usages(cmd: &Command, name: &str) -> String {
    let mut entries: Vec<(String, String)> = Vec::new();
    for a in cmd.get_arguments() {
        if a.is_positional() || a.is_hide_set() {
            continue;
        }
        let Some(long) = a.get_long() else { continue };
        let mut line = match a.get_short() {
            Some(s) => format!("  -{s}, --{long}"),
            None => format!("      --{long}"),
        };
        let takes_value = matches!(a.get_action(), ArgAction::Set | ArgAction::Append);
        let is_bool = !takes_value
            || a.get_value_names()
                .is_none_or(|v| v.iter().all(|n| n.as_str().eq_ignore_ascii_case(long)));
        if !is_bool {
            let ty = a
                .get_value_names()
                .and_then(|v| v.first())
                .map(|v| v.to_string())
                .unwrap_or_else(|| "string".into());
            line.push(' ');
            line.push_str(&ty);
            if a.is_require_equals_set() {
                // Optional-value flags (`--think`) default to "true" when given bare.
                line.push_str("[=\"true\"]");
            }
        }
        let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
        entries.push((line, help));
    }
    entries.push(("  -h, --help".into(), format!("help for {name}")));
    entries.sort_by(|a, b| flag_name(&a.0).cmp(flag_name(&b.0)));
    let width = entries.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (line, help) in entries {
        out.push_str(format!("{line:<width$}   {help}").trim_end());
        out.push('\n');
    }
    out
}

fn flag_name(line: &str) -> &str {
    let after = line.split("--").nth(1).unwrap_or("");
    after.split([' ', '[']).next().unwrap_or("")
}

/// Help text for `ollmlx` (`sub` = None) or one subcommand, as cobra prints it.
pub fn render(root: &Command, sub: Option<&str>) -> String {
    let mut out = String::new();
    let Some(sub) = sub.and_then(|s| find(root, s)) else {
        out.push_str("Large language model runner\n\nUsage:\n  ollmlx [flags]\n  ollmlx [command]\n\nAvailable Commands:\n");
        for c in root.get_subcommands().filter(|c| !c.is_hide_set()) {
            let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
            out.push_str(&format!("  {:<11} {about}\n", c.get_name()));
        }
        out.push_str("  help        Help about any command\n\nFlags:\n");
        out.push_str(&flag_usages(root, "ollmlx"));
        out.push_str("\nUse \"ollmlx [command] --help\" for more information about a command.\n");
        return out;
    };
    let name = sub.get_name();
    if let Some(about) = sub.get_about() {
        out.push_str(&format!("{about}\n\n"));
    }
    out.push_str(&format!(
        "Usage:\n  ollmlx {name}{} [flags]\n",
        use_args(name)
    ));
    let aliases: Vec<&str> = sub.get_visible_aliases().collect();
    if !aliases.is_empty() {
        out.push_str(&format!("\nAliases:\n  {name}, {}\n", aliases.join(", ")));
    }
    out.push_str("\nFlags:\n");
    out.push_str(&flag_usages(sub, name));
    let vars = env_vars(name);
    if !vars.is_empty() {
        out.push('\n');
        out.push_str(&help_block(vars));
    }
    out
}

fn find<'a>(root: &'a Command, name: &str) -> Option<&'a Command> {
    root.get_subcommands()
        .find(|c| c.get_name() == name || c.get_all_aliases().any(|a| a == name))
}

/// What a pre-scan of the arguments asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// Print help for the named command (or the root).
    Help(Option<String>),
    /// Fail with this cobra-worded error.
    Error(String),
    /// Let clap parse normally.
    Parse,
}

/// Look for `-h/--help`, `help [cmd]`, unknown flags and wrong argument counts before clap
/// parses, so their output matches upstream's.
pub fn scan(root: &Command, args: &[String]) -> Scan {
    let mut sub: Option<&Command> = None;
    let mut positionals = 0usize;
    let mut i = 0;
    let mut help = false;
    let mut dashdash = false;
    while i < args.len() {
        let a = args[i].as_str();
        i += 1;
        if dashdash || !a.starts_with('-') || a == "-" {
            match sub {
                None => {
                    if a == "help" {
                        return Scan::Help(args.get(i).cloned());
                    }
                    match find(root, a) {
                        // Nested command trees (`conformance record|replay|diff`) use clap's
                        // own help and errors; upstream has no such commands to mimic.
                        Some(c) if c.has_subcommands() => return Scan::Parse,
                        Some(c) => sub = Some(c),
                        None => return Scan::Parse,
                    }
                }
                Some(_) => positionals += 1,
            }
            continue;
        }
        if a == "--" {
            dashdash = true;
            continue;
        }
        if a == "-h" || a == "--help" {
            help = true;
            continue;
        }
        let cmd = sub.unwrap_or(root);
        let (flag, mut has_value) = match a.split_once('=') {
            Some((f, _)) => (f, true),
            None => (a, false),
        };
        if !flag.starts_with("--") && flag.len() > 2 {
            // `-fModelfile`: the value is attached.
            has_value = true;
        }
        let arg = if let Some(long) = flag.strip_prefix("--") {
            cmd.get_arguments().find(|x| x.get_long() == Some(long))
        } else {
            let c = flag.chars().nth(1).unwrap_or('-');
            cmd.get_arguments().find(|x| x.get_short() == Some(c))
        };
        let Some(arg) = arg else {
            if flag.starts_with("--") {
                return Scan::Error(format!("unknown flag: {flag}"));
            }
            let c = flag.chars().nth(1).unwrap_or('-');
            return Scan::Error(format!("unknown shorthand flag: '{c}' in {a}"));
        };
        let takes_value = matches!(arg.get_action(), ArgAction::Set | ArgAction::Append)
            && !arg.is_require_equals_set();
        if takes_value && !has_value {
            i += 1;
        }
    }
    let name = sub.map(|s| s.get_name().to_string());
    if help {
        return Scan::Help(name);
    }
    if let Some(name) = name {
        let (min, max) = arity(&name);
        if let Some(max) = max.filter(|m| *m == min) {
            if positionals != max {
                return Scan::Error(format!("accepts {max} arg(s), received {positionals}"));
            }
        } else if positionals < min {
            return Scan::Error(format!(
                "requires at least {min} arg(s), only received {positionals}"
            ));
        }
    }
    Scan::Parse
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::Cli;
    use clap::CommandFactory;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn run_help_matches_cobra_layout() {
        let root = Cli::command();
        let h = render(&root, Some("run"));
        assert!(
            h.starts_with("Run a model\n\nUsage:\n  ollmlx run MODEL [PROMPT] [flags]\n\nFlags:\n"),
            "{h}"
        );
        assert!(
            h.contains("      --dimensions int          Truncate output embeddings"),
            "{h}"
        );
        assert!(
            h.contains("  -h, --help                    help for run\n"),
            "{h}"
        );
        assert!(
            h.contains("      --think string[=\"true\"]   Enable thinking mode"),
            "{h}"
        );
        assert!(h.contains("      --verbose                 Show timings for response\n\nEnvironment Variables:\n"), "{h}");
    }

    #[test]
    fn serve_help_shows_aliases() {
        let h = render(&Cli::command(), Some("start"));
        assert!(
            h.starts_with("Start ollmlx\n\nUsage:\n  ollmlx serve [flags]\n\nAliases:\n  serve, start\n\nFlags:\n"),
            "{h}"
        );
        assert!(h.contains("help for serve\n"), "{h}");
        assert!(
            h.contains("\n\nEnvironment Variables:\n      OLLAMA_DEBUG"),
            "{h}"
        );
    }

    #[test]
    fn root_help_lists_commands_padded() {
        let h = render(&Cli::command(), None);
        assert!(h.contains("\n  serve       Start ollmlx\n"), "{h}");
        assert!(
            h.contains("  -v, --version      Show version information\n"),
            "{h}"
        );
    }

    #[test]
    fn scan_finds_help_and_arg_errors() {
        let root = Cli::command();
        assert_eq!(
            scan(&root, &argv("run --help")),
            Scan::Help(Some("run".into()))
        );
        assert_eq!(scan(&root, &argv("help ps")), Scan::Help(Some("ps".into())));
        assert_eq!(
            scan(&root, &argv("show")),
            Scan::Error("accepts 1 arg(s), received 0".into())
        );
        assert_eq!(
            scan(&root, &argv("cp a")),
            Scan::Error("accepts 2 arg(s), received 1".into())
        );
        assert_eq!(
            scan(&root, &argv("run --format json")),
            Scan::Error("requires at least 1 arg(s), only received 0".into())
        );
        assert_eq!(
            scan(&root, &argv("list --bogus")),
            Scan::Error("unknown flag: --bogus".into())
        );
        assert_eq!(
            scan(&root, &argv("run m -x")),
            Scan::Error("unknown shorthand flag: 'x' in -x".into())
        );
        assert_eq!(scan(&root, &argv("run m hi --think=high")), Scan::Parse);
        assert_eq!(scan(&root, &argv("create m -f Modelfile")), Scan::Parse);
    }
}
