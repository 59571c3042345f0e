//! Every `OLLAMA_*` environment variable, parsed exactly as upstream's `envconfig` does.
//!
//! [`Env`] is a snapshot taken once ([`Env::from_process`]) or from any lookup function
//! ([`Env::from_lookup`], used by tests). Both the CLI (which host to talk to) and the server
//! (where to bind, keep-alive, queue sizes, origins, ...) read their settings from it.
//!
//! Parsing rules (upstream `envconfig/config.go`):
//! * [`Env::var`] trims whitespace, then surrounding `"`/`'` (once, not recursively re-trimmed).
//! * Booleans use Go's `strconv.ParseBool`; an unparsable non-empty value counts as `true`.
//! * Unsigned integers fall back to the default when unparsable.
//! * Keep-alive and load timeout accept a Go duration or integer seconds; negatives mean forever.

use std::collections::HashMap;

use std::path::PathBuf;
use std::time::Duration;

use crate::duration::{parse_go_duration, SECOND};

/// The duration upstream uses for "forever" (`time.Duration(math.MaxInt64)`).
pub const FOREVER: Duration = Duration::from_nanos(i64::MAX as u64);

/// One documented environment variable: its name and upstream's description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVarDoc {
    /// Variable name, e.g. `OLLAMA_HOST`.
    pub name: &'static str,
    /// Description as upstream words it (product name adapted).
    pub description: &'static str,
}

/// Descriptions of every documented variable (upstream `envconfig.AsMap`).
pub const ENV_DOCS: &[EnvVarDoc] = &[
    doc(
        "OLLAMA_DEBUG",
        "Show additional debug information (e.g. OLLAMA_DEBUG=1)",
    ),
    doc(
        "OLLAMA_DEBUG_LOG_REQUESTS",
        "Log inference request bodies and replay curl commands to a temp directory",
    ),
    doc(
        "OLLAMA_GO_TEMPLATE",
        "Enable Modelfile TEMPLATE based rendering when available",
    ),
    doc("OLLAMA_FLASH_ATTENTION", "Enabled flash attention"),
    doc(
        "OLLAMA_KV_CACHE_TYPE",
        "Quantization type for the K/V cache (default: f16)",
    ),
    doc(
        "OLLAMA_GPU_OVERHEAD",
        "Reserve a portion of VRAM per GPU (bytes)",
    ),
    doc("OLLAMA_IGPU_ENABLE", "Enable integrated GPUs"),
    doc(
        "LLAMA_ARG_FIT",
        "Enable llama.cpp automatic fit of unset memory options (default \"on\")",
    ),
    doc(
        "LLAMA_ARG_FIT_TARGET",
        "Target free VRAM margin per device for llama.cpp fit (MiB)",
    ),
    doc(
        "OLLAMA_HOST",
        "IP Address for the ollmlx server (default 127.0.0.1:11434)",
    ),
    doc(
        "OLLAMA_KEEP_ALIVE",
        "The duration that models stay loaded in memory (default \"5m\")",
    ),
    doc(
        "OLLAMA_LLM_LIBRARY",
        "Set LLM library to bypass autodetection",
    ),
    doc(
        "OLLAMA_LOAD_TIMEOUT",
        "How long to allow model loads to stall before giving up (default \"5m\")",
    ),
    doc(
        "OLLAMA_MAX_LOADED_MODELS",
        "Maximum number of loaded models per GPU",
    ),
    doc(
        "OLLAMA_MAX_TRANSFER_STREAMS",
        "Maximum parallel transfer streams for safetensors model pulls/pushes (default 4)",
    ),
    doc("OLLAMA_MAX_QUEUE", "Maximum number of queued requests"),
    doc("OLLAMA_MODELS", "The path to the models directory"),
    doc(
        "OLLAMA_NO_CLOUD",
        "Disable ollmlx cloud features (remote inference and web search)",
    ),
    doc("OLLAMA_NOHISTORY", "Do not preserve readline history"),
    doc("OLLAMA_NOPRUNE", "Do not prune model blobs on startup"),
    doc("OLLAMA_NUM_PARALLEL", "Maximum number of parallel requests"),
    doc(
        "OLLAMA_ORIGINS",
        "A comma separated list of allowed origins",
    ),
    doc(
        "OLLAMA_SCHED_SPREAD",
        "Always schedule model across all GPUs",
    ),
    doc(
        "OLLAMA_CONTEXT_LENGTH",
        "Context length to use unless otherwise specified (default: 4k/32k/256k based on VRAM)",
    ),
    doc(
        "OLLAMA_EDITOR",
        "Path to editor for interactive prompt editing (Ctrl+G)",
    ),
    doc(
        "OLLAMA_REMOTES",
        "Allowed hosts for remote models (default \"ollama.com\")",
    ),
    doc("HTTP_PROXY", "HTTP proxy"),
    doc("HTTPS_PROXY", "HTTPS proxy"),
    doc("NO_PROXY", "No proxy"),
];

const fn doc(name: &'static str, description: &'static str) -> EnvVarDoc {
    EnvVarDoc { name, description }
}

/// Variables listed by `serve --help`, in upstream's order.
pub const SERVE_HELP_VARS: &[&str] = &[
    "OLLAMA_DEBUG",
    "OLLAMA_HOST",
    "OLLAMA_CONTEXT_LENGTH",
    "OLLAMA_KEEP_ALIVE",
    "OLLAMA_MAX_LOADED_MODELS",
    "OLLAMA_MAX_TRANSFER_STREAMS",
    "OLLAMA_MAX_QUEUE",
    "OLLAMA_MODELS",
    "OLLAMA_NUM_PARALLEL",
    "OLLAMA_NO_CLOUD",
    "OLLAMA_NOPRUNE",
    "OLLAMA_ORIGINS",
    "OLLAMA_SCHED_SPREAD",
    "OLLAMA_FLASH_ATTENTION",
    "OLLAMA_KV_CACHE_TYPE",
    "OLLAMA_LLM_LIBRARY",
    "OLLAMA_GPU_OVERHEAD",
    "OLLAMA_IGPU_ENABLE",
    "LLAMA_ARG_FIT",
    "LLAMA_ARG_FIT_TARGET",
    "OLLAMA_LOAD_TIMEOUT",
];

/// Variables listed by `run --help`.
pub const RUN_HELP_VARS: &[&str] = &["OLLAMA_EDITOR", "OLLAMA_HOST", "OLLAMA_NOHISTORY"];

/// Variables listed by every other command's help.
pub const CLIENT_HELP_VARS: &[&str] = &["OLLAMA_HOST"];

/// The `Environment Variables:` help block for the given names, each line formatted as
/// upstream's `"      %-27s   %s\n"`.
pub fn help_block(names: &[&str]) -> String {
    let mut out = String::from("Environment Variables:\n");
    for name in names {
        let desc = ENV_DOCS
            .iter()
            .find(|d| d.name == *name)
            .map(|d| d.description)
            .unwrap_or("");
        out.push_str(&format!("      {name:<27}   {desc}\n"));
    }
    out
}

/// A snapshot of the environment with every setting parsed to its upstream meaning.
#[derive(Debug, Clone)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// Snapshot the process environment.
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// Build from explicit `(name, value)` pairs (tests, embedding).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The raw value as set, untrimmed (`None` when unset).
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// Upstream `Var`: the value with whitespace, then surrounding quotes, trimmed.
    pub fn var(&self, key: &str) -> String {
        let v = self.raw(key).unwrap_or("");
        v.trim().trim_matches(|c| c == '"' || c == '\'').to_string()
    }

    /// Upstream `BoolWithDefault`: unset/empty → `default`; unparsable → `true`.
    pub fn bool_with_default(&self, key: &str, default: bool) -> bool {
        let s = self.var(key);
        if s.is_empty() {
            return default;
        }
        parse_go_bool(&s).unwrap_or(true)
    }

    /// Upstream `Bool`: [`Env::bool_with_default`] with `false`.
    pub fn bool(&self, key: &str) -> bool {
        self.bool_with_default(key, false)
    }

    /// A tri-state bool: `None` when unset (upstream shows these as "auto").
    pub fn opt_bool(&self, key: &str) -> Option<bool> {
        let s = self.var(key);
        (!s.is_empty()).then(|| parse_go_bool(&s).unwrap_or(true))
    }

    /// Upstream `Uint`: a base-10 unsigned integer, or `default` when unset or invalid.
    pub fn uint(&self, key: &str, default: u64) -> u64 {
        let s = self.var(key);
        if s.is_empty() {
            return default;
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().unwrap_or(default)
        } else {
            default
        }
    }

    /// `OLLAMA_HOST` parsed per upstream `envconfig.Host` (the server binds here).
    pub fn host(&self) -> HostUrl {
        parse_host(&self.var("OLLAMA_HOST"))
    }

    /// Where clients connect: [`Env::host`] with `0.0.0.0`/`::` mapped to loopback.
    pub fn connectable_host(&self) -> HostUrl {
        self.host().connectable()
    }

    /// `OLLAMA_ORIGINS` plus upstream's built-in origins, in upstream's order.
    pub fn allowed_origins(&self) -> Vec<String> {
        let mut origins: Vec<String> = Vec::new();
        let s = self.var("OLLAMA_ORIGINS");
        if !s.is_empty() {
            origins.extend(s.split(',').map(str::to_string));
        }
        for o in ["localhost", "127.0.0.1", "0.0.0.0"] {
            origins.push(format!("http://{o}"));
            origins.push(format!("https://{o}"));
            origins.push(format!("http://{o}:*"));
            origins.push(format!("https://{o}:*"));
        }
        for o in [
            "app://*",
            "file://*",
            "tauri://*",
            "vscode-webview://*",
            "vscode-file://*",
        ] {
            origins.push(o.to_string());
        }
        origins
    }

    /// The user's home directory (`HOME`, or `USERPROFILE` on Windows).
    pub fn home_dir(&self) -> Option<PathBuf> {
        let h = self.raw("HOME").or_else(|| self.raw("USERPROFILE"))?;
        (!h.is_empty()).then(|| PathBuf::from(h))
    }

    /// `OLLAMA_MODELS`, default `$HOME/.ollama/models`.
    pub fn models(&self) -> PathBuf {
        let s = self.var("OLLAMA_MODELS");
        if !s.is_empty() {
            return PathBuf::from(s);
        }
        self.home_dir()
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".ollama")
            .join("models")
    }

    /// `OLLAMA_KEEP_ALIVE`: default 5m; Go duration or integer seconds; negative = [`FOREVER`].
    pub fn keep_alive(&self) -> Duration {
        duration_setting(&self.var("OLLAMA_KEEP_ALIVE"), false)
    }

    /// `OLLAMA_LOAD_TIMEOUT`: default 5m; zero or negative = [`FOREVER`].
    pub fn load_timeout(&self) -> Duration {
        duration_setting(&self.var("OLLAMA_LOAD_TIMEOUT"), true)
    }

    /// `OLLAMA_CONTEXT_LENGTH` (0 = pick by available memory).
    pub fn context_length(&self) -> u64 {
        self.uint("OLLAMA_CONTEXT_LENGTH", 0)
    }

    /// `OLLAMA_NUM_PARALLEL` (default 1).
    pub fn num_parallel(&self) -> u64 {
        self.uint("OLLAMA_NUM_PARALLEL", 1)
    }

    /// `OLLMLX_MEMORY_LIMIT` (ollmlx only): the engine's memory budget in bytes, plain or with a
    /// unit (`8GiB`, `512MB`); `None` when unset or unparsable (the device's memory is used).
    pub fn memory_limit(&self) -> Option<u64> {
        ollmlx_mlx::budget::parse_bytes(&self.var("OLLMLX_MEMORY_LIMIT")).filter(|&n| n > 0)
    }

    /// `OLLMLX_PROMPT_LOOKUP` (ollmlx only): speculative decoding with prompt-lookup drafts for
    /// requests that name no draft model. Unset: temperature-0 requests (whose output it does
    /// not change); true: every request; false: none.
    pub fn prompt_lookup(&self) -> ollmlx_mlx::LookupPolicy {
        match self.opt_bool("OLLMLX_PROMPT_LOOKUP") {
            None => ollmlx_mlx::LookupPolicy::Greedy,
            Some(true) => ollmlx_mlx::LookupPolicy::All,
            Some(false) => ollmlx_mlx::LookupPolicy::Off,
        }
    }

    /// `OLLMLX_BATCH_WINDOW_MS` (ollmlx only): how long an idle engine that batches
    /// (`OLLAMA_NUM_PARALLEL` > 1) waits for the rest of a burst of requests so that their
    /// prompts are prefilled together; default 3 ms, 0 turns it off.
    pub fn batch_window(&self) -> Duration {
        Duration::from_millis(self.uint("OLLMLX_BATCH_WINDOW_MS", 3))
    }

    /// `OLLAMA_MAX_LOADED_MODELS` (0 = automatic).
    pub fn max_loaded_models(&self) -> u64 {
        self.uint("OLLAMA_MAX_LOADED_MODELS", 0)
    }

    /// `OLLAMA_MAX_QUEUE` (default 512).
    pub fn max_queue(&self) -> u64 {
        self.uint("OLLAMA_MAX_QUEUE", 512)
    }

    /// `OLLAMA_MAX_TRANSFER_STREAMS` (default 4).
    pub fn max_transfer_streams(&self) -> u64 {
        self.uint("OLLAMA_MAX_TRANSFER_STREAMS", 4)
    }

    /// `OLLAMA_GPU_OVERHEAD` in bytes (default 0).
    pub fn gpu_overhead(&self) -> u64 {
        self.uint("OLLAMA_GPU_OVERHEAD", 0)
    }

    /// `OLLAMA_DEBUG` as a slog level: 0 INFO, -4 DEBUG (`1`/true), -8 TRACE (`2`), 4 WARN (`-1`).
    pub fn log_level(&self) -> i64 {
        let s = self.var("OLLAMA_DEBUG");
        if s.is_empty() {
            return 0;
        }
        if parse_go_bool(&s) == Some(true) {
            return -4;
        }
        match parse_go_int(&s) {
            Some(i) if i != 0 => i.saturating_mul(-4),
            _ => 0,
        }
    }

    /// `OLLAMA_DEBUG_LOG_REQUESTS`.
    pub fn debug_log_requests(&self) -> bool {
        self.bool("OLLAMA_DEBUG_LOG_REQUESTS")
    }

    /// `OLLAMA_FLASH_ATTENTION`: `None` = auto.
    pub fn flash_attention(&self) -> Option<bool> {
        self.opt_bool("OLLAMA_FLASH_ATTENTION")
    }

    /// `OLLAMA_KV_CACHE_TYPE` (empty = f16).
    pub fn kv_cache_type(&self) -> String {
        self.var("OLLAMA_KV_CACHE_TYPE")
    }

    /// `OLLAMA_SCHED_SPREAD`.
    pub fn sched_spread(&self) -> bool {
        self.bool("OLLAMA_SCHED_SPREAD")
    }

    /// `OLLAMA_LLM_LIBRARY`.
    pub fn llm_library(&self) -> String {
        self.var("OLLAMA_LLM_LIBRARY")
    }

    /// `OLLAMA_IGPU_ENABLE`: `None` when unset.
    pub fn igpu_enable(&self) -> Option<bool> {
        self.opt_bool("OLLAMA_IGPU_ENABLE")
    }

    /// `OLLAMA_VULKAN` (default true).
    pub fn vulkan(&self) -> bool {
        self.bool_with_default("OLLAMA_VULKAN", true)
    }

    /// `OLLAMA_NOPRUNE`.
    pub fn no_prune(&self) -> bool {
        self.bool("OLLAMA_NOPRUNE")
    }

    /// `OLLAMA_NOHISTORY`.
    pub fn no_history(&self) -> bool {
        self.bool("OLLAMA_NOHISTORY")
    }

    /// `OLLAMA_NO_CLOUD` (the environment part only).
    pub fn no_cloud_env(&self) -> bool {
        self.bool("OLLAMA_NO_CLOUD")
    }

    /// Whether `~/.ollama/server.json` says `{"disable_ollama_cloud": true}`.
    pub fn no_cloud_config(&self) -> bool {
        let Some(home) = self.home_dir() else {
            return false;
        };
        let Ok(data) = std::fs::read(home.join(".ollama").join("server.json")) else {
            return false;
        };
        serde_json::from_slice::<serde_json::Value>(&data)
            .ok()
            .and_then(|v| v.get("disable_ollama_cloud")?.as_bool())
            .unwrap_or(false)
    }

    /// Cloud features disabled by the environment or the config file.
    pub fn no_cloud(&self) -> bool {
        self.no_cloud_env() || self.no_cloud_config()
    }

    /// `none`, `env`, `config` or `both` (as `/api/status` reports).
    pub fn no_cloud_source(&self) -> &'static str {
        match (self.no_cloud_env(), self.no_cloud_config()) {
            (true, true) => "both",
            (true, false) => "env",
            (false, true) => "config",
            (false, false) => "none",
        }
    }

    /// `OLLAMA_REMOTES` (default `["ollama.com"]`).
    pub fn remotes(&self) -> Vec<String> {
        let raw = self.var("OLLAMA_REMOTES");
        let raw = raw.trim();
        if raw.is_empty() {
            vec!["ollama.com".into()]
        } else {
            raw.split(',').map(str::to_string).collect()
        }
    }

    /// `OLLAMA_GO_TEMPLATE` (default true).
    pub fn go_template(&self) -> bool {
        self.bool_with_default("OLLAMA_GO_TEMPLATE", true)
    }

    /// `OLLAMA_AUTH`.
    pub fn auth(&self) -> bool {
        self.bool("OLLAMA_AUTH")
    }

    /// `OLLAMA_EDITOR`, falling back to `VISUAL` then `EDITOR` (empty when none).
    pub fn editor(&self) -> String {
        for key in ["OLLAMA_EDITOR", "VISUAL", "EDITOR"] {
            let v = if key == "OLLAMA_EDITOR" {
                self.var(key)
            } else {
                self.raw(key).unwrap_or("").to_string()
            };
            if !v.is_empty() {
                return v;
            }
        }
        String::new()
    }

    /// `OLLAMA_EXPERIMENT` as a list (empty entries dropped).
    pub fn experiments(&self) -> Vec<String> {
        self.var("OLLAMA_EXPERIMENT")
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// `OLLAMA_CLOUD_BASE_URL` (default `https://ollama.com:443`).
    pub fn cloud_base_url(&self) -> String {
        let s = self.var("OLLAMA_CLOUD_BASE_URL");
        if s.is_empty() {
            "https://ollama.com:443".into()
        } else {
            s
        }
    }

    /// `LLAMA_ARG_FIT` (upstream's default is `"on"` when empty).
    pub fn llama_arg_fit(&self) -> String {
        self.var("LLAMA_ARG_FIT")
    }

    /// `LLAMA_ARG_FIT_TARGET`.
    pub fn llama_arg_fit_target(&self) -> String {
        self.var("LLAMA_ARG_FIT_TARGET")
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)` (optional sign, decimal digits only).
pub fn parse_go_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn duration_setting(s: &str, non_positive_is_forever: bool) -> Duration {
    let mut nanos: i64 = 5 * 60 * SECOND;
    if !s.is_empty() {
        if let Ok(d) = parse_go_duration(s) {
            nanos = d;
        } else if let Some(n) = parse_go_int(s) {
            nanos = n.saturating_mul(SECOND);
        }
    }
    if nanos < 0 || (non_positive_is_forever && nanos == 0) {
        return FOREVER;
    }
    Duration::from_nanos(nanos as u64)
}

mod host;
pub use host::{parse_host, HostUrl};

#[cfg(test)]
mod tests;
