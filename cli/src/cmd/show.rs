//! `ollmlx show MODEL`: the `Model`, `Capabilities`, `Projector`, `Parameters`,
//! `Metadata`/`Tensors` (verbose) and `System`/`License` sections, or one raw field.

use ollmlx_wire::ollama::{ShowRequest, ShowResponse};
use serde_json::{Map, Value};

use super::ShowArgs;
use crate::client::Client;
use crate::format::{display_width, human_number, Table};

/// Go's `%g` for a float64 (shortest digits; exponent form below 1e-4 or from 1e6 up).
pub fn go_g(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// Go's `%v` of a JSON value.
fn go_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.as_f64().map(go_g).unwrap_or_else(|| n.to_string()),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_v).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_v(&o[*k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

fn metadata_value(v: &Value) -> String {
    match v {
        Value::Bool(_) | Value::String(_) | Value::Number(_) => go_v(v),
        Value::Array(items) => {
            const TARGET: usize = 10;
            let mut shown = 0;
            let mut total = 1;
            for (i, item) in items.iter().enumerate() {
                let mut w = display_width(&go_v(item));
                if i > 0 {
                    w += 2;
                }
                if total + w > TARGET && i > 0 {
                    break;
                }
                total += w;
                shown += 1;
            }
            if shown < items.len() {
                let head = go_v(&Value::Array(items[..shown].to_vec()));
                format!(
                    "{} ...+{} more]",
                    head.strip_suffix(']').unwrap_or(&head),
                    items.len() - shown
                )
            } else {
                go_v(v)
            }
        }
        Value::Object(_) => "map[string]interface {}".into(),
        Value::Null => "<nil>".into(),
    }
}

fn number(m: &Map<String, Value>, key: &str) -> Option<f64> {
    m.get(key).and_then(Value::as_f64)
}

fn head(s: &str, n: usize) -> Vec<Vec<String>> {
    let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut rows: Vec<Vec<String>> = lines
        .iter()
        .take(n)
        .map(|l| vec![String::new(), l.to_string()])
        .collect();
    if lines.len() > n {
        rows.push(vec![String::new(), "...".into()]);
    }
    rows
}

fn section(out: &mut String, title: &str, rows: Vec<Vec<String>>) {
    out.push_str(&format!("  {title}\n"));
    let mut t = Table::new();
    if matches!(title, "Template" | "System" | "License") {
        t = t.col_width(100);
    }
    for r in rows {
        t.row(&r);
    }
    out.push_str(&t.render());
    out.push('\n');
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|s| s.to_string()).collect()
}

/// Render upstream's `showInfo` sections.
pub fn show_info(resp: &ShowResponse, verbose: bool) -> String {
    let mut out = String::new();
    let info = &resp.model_info;
    let mut rows = Vec::new();
    if !resp.remote_host.is_empty() {
        rows.push(row(&["", "Remote model", &resp.remote_model]));
        rows.push(row(&["", "Remote URL", &resp.remote_host]));
    }
    if !info.is_empty() {
        let arch = info
            .get("general.architecture")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !arch.is_empty() {
            rows.push(row(&["", "architecture", arch]));
        }
        let params = if !resp.details.parameter_size.is_empty() {
            resp.details.parameter_size.clone()
        } else {
            number(info, "general.parameter_count")
                .map(|f| human_number(f as u64))
                .unwrap_or_default()
        };
        if !params.is_empty() {
            rows.push(row(&["", "parameters", &params]));
        }
        if let Some(f) = number(info, &format!("{arch}.context_length")) {
            rows.push(row(&["", "context length", &format!("{f}")]));
        }
        if let Some(f) = number(info, &format!("{arch}.embedding_length")) {
            rows.push(row(&["", "embedding length", &format!("{f}")]));
        }
    } else {
        rows.push(row(&["", "architecture", &resp.details.family]));
        rows.push(row(&["", "parameters", &resp.details.parameter_size]));
    }
    rows.push(row(&["", "quantization", &resp.details.quantization_level]));
    if !resp.requires.is_empty() {
        rows.push(row(&["", "requires", &resp.requires]));
    }
    section(&mut out, "Model", rows);

    if !resp.capabilities.is_empty() {
        let rows = resp.capabilities.iter().map(|c| row(&["", c])).collect();
        section(&mut out, "Capabilities", rows);
    }

    if let Some(p) = &resp.projector_info {
        let mut rows = Vec::new();
        let arch = p
            .get("general.architecture")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !arch.is_empty() {
            rows.push(row(&["", "architecture", arch]));
        }
        if let Some(f) = number(p, "general.parameter_count") {
            rows.push(row(&["", "parameters", &human_number(f as u64)]));
        }
        let projector = |suffix: &str| {
            ["vision", "audio"]
                .iter()
                .find_map(|m| number(p, &format!("{arch}.{m}.{suffix}")))
        };
        if let Some(f) = projector("embedding_length") {
            rows.push(row(&["", "embedding length", &format!("{f}")]));
        }
        if let Some(f) = projector("projection_dim") {
            rows.push(row(&["", "dimensions", &format!("{f}")]));
        }
        section(&mut out, "Projector", rows);
    }

    if !resp.parameters.is_empty() {
        let rows = resp
            .parameters
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let mut r = vec![String::new()];
                r.extend(l.split_whitespace().map(str::to_string));
                r
            })
            .collect();
        section(&mut out, "Parameters", rows);
    }

    if !info.is_empty() && verbose {
        let mut keys: Vec<&String> = info.keys().collect();
        keys.sort();
        let rows = keys
            .into_iter()
            .map(|k| row(&["", k, &metadata_value(&info[k])]))
            .collect();
        section(&mut out, "Metadata", rows);
    }

    if !resp.tensors.is_empty() && verbose {
        let rows = resp
            .tensors
            .iter()
            .map(|t| {
                let shape: Vec<String> = t.shape.iter().map(u64::to_string).collect();
                row(&["", &t.name, &t.kind, &format!("[{}]", shape.join(" "))])
            })
            .collect();
        section(&mut out, "Tensors", rows);
    }

    if !resp.system.is_empty() {
        section(&mut out, "System", head(&resp.system, 2));
    }
    if !resp.license.is_empty() {
        section(&mut out, "License", head(&resp.license, 2));
    }
    out
}

/// Run `show MODEL [--license|--modelfile|--parameters|--system|--template] [-v]`.
pub async fn run(client: &Client, a: ShowArgs) -> anyhow::Result<()> {
    let flags = [
        (a.license, "license"),
        (a.modelfile, "modelfile"),
        (a.parameters, "parameters"),
        (a.system, "system"),
        (a.template, "template"),
    ];
    let set: Vec<&str> = flags
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
    if set.len() > 1 {
        anyhow::bail!(
            "only one of '--license', '--modelfile', '--parameters', '--system', or '--template' can be specified"
        );
    }
    let resp = client
        .show(&ShowRequest {
            model: a.model.clone(),
            name: a.model.clone(),
            verbose: a.verbose,
            ..Default::default()
        })
        .await?;
    if resp.capabilities.iter().any(|c| c == "image") {
        anyhow::bail!("image generation models are not currently supported");
    }
    match set.first() {
        Some(&"license") => println!("{}", resp.license),
        Some(&"modelfile") => println!("{}", resp.modelfile),
        Some(&"parameters") => println!("{}", resp.parameters),
        Some(&"system") => print!("{}", resp.system),
        Some(&"template") => print!("{}", resp.template),
        _ => print!("{}", show_info(&resp, a.verbose)),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
