//! `ollmlx push MODEL`.

use ollmlx_wire::ollama::PullRequest;

use super::pull::ProgressView;
use crate::client::Client;
use ollmlx_store::name::Name;

/// Where a pushed model can be found: an ollama.com URL for registry hosts, else the name.
pub fn destination(model: &str) -> String {
    let n = Name::parse(model);
    if n.host.ends_with(".ollama.ai") || n.host.ends_with(".ollama.com") {
        let short = n.display_shortest();
        format!(
            "https://ollama.com/{}",
            short.strip_suffix(":latest").unwrap_or(&short)
        )
    } else {
        n.to_string()
    }
}

/// Run `push MODEL`.
pub async fn run(client: &Client, model: &str, insecure: bool) -> anyhow::Result<()> {
    let mut view = ProgressView::push();
    let req = PullRequest {
        model: model.into(),
        name: model.into(),
        insecure,
        ..Default::default()
    };
    let result = client
        .push(&req, |resp| {
            view.update(&resp);
            Ok(())
        })
        .await;
    view.stop();
    if let Err(e) = result {
        let s = e.to_string().to_lowercase();
        if s.contains("access denied") || s.contains("unauthorized") {
            anyhow::bail!(
                "you are not authorized to push to this namespace, create the model under a namespace you own"
            );
        }
        return Err(e);
    }
    println!("\nYou can find your model at:\n");
    println!("\t{}", destination(model));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_points_at_ollama_com_for_registry_names() {
        assert_eq!(destination("me/m"), "https://ollama.com/me/m");
        assert_eq!(destination("me/m:7b"), "https://ollama.com/me/m:7b");
        assert_eq!(destination("host:5000/ns/m"), "host:5000/ns/m:latest");
    }
}
