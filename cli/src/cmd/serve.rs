//! `ollmlx serve`: build the backends from the environment and the config file, then run the
//! server until SIGINT/SIGTERM.
//!
//! With `--upstream URL` (or only an `ollama` backend configured) ollmlx is a transparent proxy
//! in front of that Ollama. Otherwise the local backend (the Ollama-layout model store in
//! `$OLLAMA_MODELS`, running models on the in-process MLX engine) is the default, next to any
//! configured upstreams.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use ollmlx_infer::DynBackend;
use ollmlx_server::{serve, AppState, BackendRouter, HostPolicy, Origins, StackConfig};
use ollmlx_store::{Store, StoreBackend};
use ollmlx_upstream::{OllamaUpstream, OllamaUpstreamConfig, OpenAiUpstream, OpenAiUpstreamConfig};

use super::ServeArgs;
use crate::config::{BackendEntry, Config};
use crate::env::Env;

/// Run the server.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let env = Env::from_process();
    init_tracing(&env);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve_async(env, args))
}

fn init_tracing(env: &Env) {
    let level = match env.log_level() {
        l if l <= -8 => "trace",
        l if l <= -4 => "debug",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("OLLMLX_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},hyper=warn,h2=warn"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Build the router: `--upstream` alone, or the local backend plus configured backends.
pub fn build_router(env: &Env, args: &ServeArgs) -> anyhow::Result<BackendRouter> {
    if let Some(url) = &args.upstream {
        let b = OllamaUpstream::new(&OllamaUpstreamConfig::new(url.clone()))
            .with_context(|| format!("--upstream {url}"))?
            .with_name("upstream");
        tracing::info!(upstream = %url, "transparent proxy mode: every request is forwarded unchanged");
        return Ok(BackendRouter::new(vec![Arc::new(b)]));
    }
    let explicit = args.config.is_some() || std::env::var_os("OLLMLX_CONFIG").is_some();
    let path = args
        .config
        .clone()
        .or_else(|| Config::default_path(env.home_dir().as_deref()));
    let cfg = match &path {
        Some(p) => Config::load(p, explicit)?,
        None => Config::default(),
    };
    let local: DynBackend = Arc::new(local_backend(env));
    let mut named: Vec<(String, DynBackend, Vec<String>)> = Vec::new();
    for entry in &cfg.backends {
        let b = build_backend(entry, &local)?;
        named.push((entry.name.clone(), b, entry.route.clone()));
    }
    let default_name = cfg.default.clone().unwrap_or_else(|| "local".to_string());
    let default = if default_name == "local" {
        local.clone()
    } else {
        named
            .iter()
            .find(|(n, _, _)| *n == default_name)
            .map(|(_, b, _)| b.clone())
            .ok_or_else(|| anyhow!("default backend {default_name:?} is not configured"))?
    };
    let mut backends = vec![default.clone()];
    if !Arc::ptr_eq(&default, &local) && cfg.backends.iter().all(|b| b.kind != "local") {
        // The local store stays reachable for models no other backend claims.
        backends.push(local.clone());
    }
    for (_, b, _) in &named {
        if !backends.iter().any(|x| Arc::ptr_eq(x, b)) {
            backends.push(b.clone());
        }
    }
    let mut router = BackendRouter::new(backends);
    for (name, b, routes) in named {
        for pattern in routes {
            tracing::info!(backend = %name, %pattern, "route");
            router = router.with_rule(pattern, b.clone());
        }
    }
    Ok(router)
}

fn local_backend(env: &Env) -> StoreBackend {
    let store = Store::new(env.models());
    tracing::info!(models = %store.root().display(), "model store");
    let report = store.startup_maintenance(env.no_prune(), ollmlx_store::maintenance::PRUNE_GRACE);
    if report.renamed + report.pruned > 0 {
        tracing::info!(
            renamed = report.renamed,
            pruned = report.pruned,
            "store housekeeping"
        );
    }
    let backend = StoreBackend::new(store).with_name("local");
    // The MLX engine runs the models; if it cannot start, the server still manages the store
    // and answers generation requests with the engine's start-up error.
    match ollmlx_mlx::MlxRunner::new(engine_config(env)) {
        Ok(runner) => {
            tracing::info!(device = runner.device(), "MLX engine ready");
            backend.with_runner(Arc::new(runner))
        }
        Err(e) => {
            tracing::error!(error = %e, "MLX engine unavailable: models can be managed but not run");
            backend
        }
    }
}

/// The engine's limits from Ollama's variables (keep-alive, loaded models, queue depth,
/// parallel sequences, KV-cache type), `OLLMLX_MEMORY_LIMIT` (the memory budget),
/// `OLLMLX_PROMPT_LOOKUP` (prompt-lookup speculative decoding) and `OLLMLX_BATCH_WINDOW_MS`
/// (how long an idle batching engine gathers a burst).
fn engine_config(env: &Env) -> ollmlx_mlx::EngineConfig {
    let keep = env.keep_alive();
    let default_keep_alive = if keep >= crate::env::FOREVER {
        ollmlx_mlx::KeepAlive::Forever
    } else {
        ollmlx_mlx::KeepAlive::For(keep)
    };
    // 0 means "auto" upstream (3 per GPU); on one device with unified memory keep one resident.
    let max_loaded = match env.max_loaded_models() {
        0 => 1,
        n => n as usize,
    };
    ollmlx_mlx::EngineConfig {
        queue_capacity: env.max_queue().max(1) as usize,
        max_loaded,
        default_keep_alive,
        num_parallel: env.num_parallel().max(1) as usize,
        memory_limit: env.memory_limit(),
        prompt_lookup: env.prompt_lookup(),
        admit_window: env.batch_window(),
        // f16 (default), q8_0, q4_0: MLX-quantized KV; unknown values fall back to f16.
        kv_cache_type: env.kv_cache_type(),
        ..ollmlx_mlx::EngineConfig::default()
    }
}

fn build_backend(entry: &BackendEntry, local: &DynBackend) -> anyhow::Result<DynBackend> {
    let table = toml::Value::Table(entry.table.clone());
    let ctx = || format!("backend {:?}", entry.name);
    Ok(match entry.kind.as_str() {
        "local" => local.clone(),
        "ollama" => {
            let c: OllamaUpstreamConfig = table.try_into().with_context(ctx)?;
            Arc::new(
                OllamaUpstream::new(&c)
                    .with_context(ctx)?
                    .with_name(entry.name.clone()),
            )
        }
        _ => {
            let c: OpenAiUpstreamConfig = table.try_into().with_context(ctx)?;
            Arc::new(
                OpenAiUpstream::new(c)
                    .with_context(ctx)?
                    .with_name(entry.name.clone()),
            )
        }
    })
}

fn bind_addr(env: &Env) -> anyhow::Result<SocketAddr> {
    let h = env.host();
    let host = if h.host.is_empty() {
        "0.0.0.0".to_string()
    } else {
        h.host.clone()
    };
    let port: u16 = h.port.parse().unwrap_or(11434);
    (host.as_str(), port)
        .to_socket_addrs()
        .with_context(|| format!("resolving OLLAMA_HOST {host}:{port}"))?
        .next()
        .ok_or_else(|| anyhow!("OLLAMA_HOST {host}:{port} resolves to no address"))
}

async fn serve_async(env: Env, args: ServeArgs) -> anyhow::Result<()> {
    let router = build_router(&env, &args)?;
    let addr = bind_addr(&env)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listen tcp {addr}"))?;
    let local = listener.local_addr()?;
    let origins: Vec<String> = env
        .var("OLLAMA_ORIGINS")
        .split(',')
        .map(str::to_string)
        .collect();
    let hostname = std::fs::read_to_string("/etc/hostname")
        .unwrap_or_default()
        .trim()
        .to_string();
    let local_ips: Vec<IpAddr> = vec![local.ip()];
    let cfg = StackConfig {
        origins: Origins::new(origins),
        hosts: HostPolicy::for_bind(local, hostname, local_ips),
    };
    let mut state = AppState::new(router);
    state.no_cloud_env = env.no_cloud_env();
    tracing::info!(version = %state.version, "Listening on {local} (version {})", env!("CARGO_PKG_VERSION"));
    serve(listener, Arc::new(state), cfg, shutdown_signal()).await?;
    tracing::info!("server stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_config_maps_parallel_memory_limit_loaded_models_and_keep_alive() {
        let env = Env::from_pairs([
            ("OLLAMA_NUM_PARALLEL", "4"),
            ("OLLMLX_MEMORY_LIMIT", "2GiB"),
            ("OLLAMA_MAX_LOADED_MODELS", "3"),
            ("OLLAMA_KEEP_ALIVE", "-1"),
            ("OLLAMA_MAX_QUEUE", "7"),
            ("OLLMLX_PROMPT_LOOKUP", "1"),
        ]);
        let c = engine_config(&env);
        assert_eq!(c.num_parallel, 4);
        assert_eq!(c.memory_limit, Some(2 << 30));
        assert_eq!(c.max_loaded, 3);
        assert_eq!(c.queue_capacity, 7);
        assert_eq!(c.default_keep_alive, ollmlx_mlx::KeepAlive::Forever);
        assert_eq!(c.prompt_lookup, ollmlx_mlx::LookupPolicy::All);

        let d = engine_config(&Env::from_pairs([("OLLAMA_NUM_PARALLEL", "0")]));
        assert_eq!(d.num_parallel, 1, "0 is treated as 1");
        assert_eq!(d.memory_limit, None);
        assert_eq!(d.max_loaded, 1);
        assert_eq!(
            d.prompt_lookup,
            ollmlx_mlx::LookupPolicy::Greedy,
            "unset: temperature-0 requests"
        );
        assert_eq!(d.admit_window, std::time::Duration::from_millis(3));
        let off = engine_config(&Env::from_pairs([
            ("OLLMLX_PROMPT_LOOKUP", "false"),
            ("OLLMLX_BATCH_WINDOW_MS", "0"),
        ]));
        assert_eq!(off.prompt_lookup, ollmlx_mlx::LookupPolicy::Off);
        assert!(off.admit_window.is_zero());
    }
}
