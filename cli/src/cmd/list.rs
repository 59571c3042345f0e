//! `ollmlx list`: the local models as a `NAME ID SIZE MODIFIED` table.

use ollmlx_wire::ollama::ListModel;

use crate::client::Client;
use crate::format::{human_bytes, human_time, Table};

/// Render the table for `models`, keeping names that start with `prefix` (case-insensitive).
pub fn render(models: &[ListModel], prefix: Option<&str>) -> String {
    let mut t = Table::new().header(&["NAME", "ID", "SIZE", "MODIFIED"]);
    let prefix = prefix.map(str::to_lowercase);
    for m in models {
        if let Some(p) = &prefix {
            if !m.name.to_lowercase().starts_with(p.as_str()) {
                continue;
            }
        }
        let size = if m.remote_model.is_empty() {
            human_bytes(m.size as i64)
        } else {
            "-".to_string()
        };
        let id: String = m.digest.chars().take(12).collect();
        t.row(&[
            m.name.clone(),
            id,
            size,
            human_time(m.modified_at.0, "Never"),
        ]);
    }
    t.render()
}

/// Run `list [PREFIX]`.
pub async fn run(client: &Client, prefix: Option<&str>) -> anyhow::Result<()> {
    let resp = client.list().await?;
    print!("{}", render(&resp.models, prefix));
    Ok(())
}
