//! `ollmlx stop MODEL` and the load/unload request `run` and `rm` share.

use ollmlx_wire::ollama::{GenerateRequest, ShowRequest};
use serde_json::Value;

use crate::client::Client;
use crate::progress::Progress;

/// Load (or, with `keep_alive` `"0s"`, unload) a model with an empty generate request,
/// after checking it exists. Remote (cloud) models are skipped.
pub async fn load_or_unload(
    client: &Client,
    model: &str,
    keep_alive: Option<Value>,
    think: Option<Value>,
) -> anyhow::Result<()> {
    let mut p = Progress::new();
    p.add_spinner("");
    let result = async {
        let info = client
            .show(&ShowRequest {
                model: model.into(),
                ..Default::default()
            })
            .await?;
        if !info.remote_host.is_empty() {
            return Ok(());
        }
        let req = GenerateRequest {
            model: model.into(),
            keep_alive,
            think,
            ..Default::default()
        };
        client.generate(&req, |_| Ok(())).await
    }
    .await;
    p.stop_and_clear();
    result
}

/// Run `stop MODEL`.
pub async fn run(client: &Client, model: &str) -> anyhow::Result<()> {
    match load_or_unload(client, model, Some(Value::from("0s")), None).await {
        Err(e) if e.to_string().contains("not found") => {
            anyhow::bail!("couldn't find model \"{model}\" to stop")
        }
        other => other,
    }
}
