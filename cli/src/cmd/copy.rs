//! `ollmlx cp SOURCE DESTINATION`.

use ollmlx_wire::ollama::CopyRequest;

use crate::client::Client;

/// Copy a model and print `copied '<a>' to '<b>'`.
pub async fn run(client: &Client, source: &str, destination: &str) -> anyhow::Result<()> {
    client
        .copy(&CopyRequest {
            source: source.into(),
            destination: destination.into(),
        })
        .await?;
    println!("copied '{source}' to '{destination}'");
    Ok(())
}
