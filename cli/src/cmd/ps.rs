//! `ollmlx ps`: loaded models as a `NAME ID SIZE PROCESSOR CONTEXT UNTIL` table.

use ollmlx_wire::ollama::ProcessModel;
use time::OffsetDateTime;

use crate::client::Client;
use crate::format::{human_bytes, human_time, Table};

/// `100% GPU`, `100% CPU`, `48%/52% CPU/GPU` or `Unknown`.
pub fn processor(size: u64, size_vram: u64) -> String {
    if size_vram == 0 {
        "100% CPU".into()
    } else if size_vram == size {
        "100% GPU".into()
    } else if size_vram > size || size == 0 {
        "Unknown".into()
    } else {
        let cpu = ((size - size_vram) as f64 / size as f64 * 100.0).round() as i64;
        format!("{cpu}%/{}% CPU/GPU", 100 - cpu)
    }
}

/// Render the table for `models`, keeping names that start with `prefix` (case-sensitive).
pub fn render(models: &[ProcessModel], prefix: Option<&str>, now: OffsetDateTime) -> String {
    let mut t = Table::new().header(&["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]);
    for m in models {
        if prefix.is_some_and(|p| !m.name.starts_with(p)) {
            continue;
        }
        let until = if now > m.expires_at.0 {
            "Stopping...".to_string()
        } else {
            human_time(m.expires_at.0, "Never")
        };
        let id: String = m.digest.chars().take(12).collect();
        t.row(&[
            m.name.clone(),
            id,
            human_bytes(m.size as i64),
            processor(m.size, m.size_vram),
            m.context_length.to_string(),
            until,
        ]);
    }
    t.render()
}

/// Run `ps [PREFIX]`.
pub async fn run(client: &Client, prefix: Option<&str>) -> anyhow::Result<()> {
    let resp = client.list_running().await?;
    print!(
        "{}",
        render(&resp.models, prefix, OffsetDateTime::now_utc())
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processor_split_matches_upstream() {
        assert_eq!(processor(100, 0), "100% CPU");
        assert_eq!(processor(100, 100), "100% GPU");
        assert_eq!(processor(100, 48), "52%/48% CPU/GPU");
        assert_eq!(processor(100, 200), "Unknown");
    }
}
