//! `ollmlx rm MODEL...`: unload each model, then delete it.

use ollmlx_wire::ollama::DeleteRequest;
use serde_json::Value;

use crate::client::Client;

/// Remove each model, printing `deleted '<m>'`.
pub async fn run(client: &Client, models: &[String]) -> anyhow::Result<()> {
    for m in models {
        if let Err(e) = super::stop::load_or_unload(client, m, Some(Value::from("0s")), None).await
        {
            if !e.to_string().to_lowercase().contains("not found") {
                eprintln!("Warning: unable to stop model '{m}'");
            }
        }
        client
            .delete(&DeleteRequest {
                model: m.clone(),
                name: m.clone(),
            })
            .await?;
        println!("deleted '{m}'");
    }
    Ok(())
}
