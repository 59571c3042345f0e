//! Start-up housekeeping of the store, run once by `ollmlx serve` before it listens.
//!
//! Mirrors upstream's start-up: blob files named `sha256:<hex>` (older Ollama, or copied from
//! Windows) are renamed to `sha256-<hex>`; unless `OLLAMA_NOPRUNE` is set, blobs that no
//! manifest references and that are older than an hour are removed (the grace period protects a
//! pull or create that has written blobs but not yet its manifest), and empty manifest
//! directories are pruned. Unlike upstream, `-partial` download files are kept so that an
//! interrupted pull resumes across server restarts.

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, SystemTime};

use crate::store::{prune_empty_dirs, Store};

/// How long an unreferenced blob is kept (upstream's `layerPruneGracePeriod`).
pub const PRUNE_GRACE: Duration = Duration::from_secs(3600);

/// What start-up housekeeping did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Blobs renamed from `sha256:` to `sha256-`.
    pub renamed: usize,
    /// Unreferenced blobs removed.
    pub pruned: usize,
}

impl Store {
    /// Rename legacy blob names and, unless `noprune`, remove unreferenced blobs older than
    /// `grace`. Errors on individual files are logged and skipped: housekeeping never stops the
    /// server from starting.
    pub fn startup_maintenance(&self, noprune: bool, grace: Duration) -> MaintenanceReport {
        let _g = self.lock();
        let mut report = MaintenanceReport::default();
        let dir = self.blobs().dir().to_path_buf();
        let Ok(entries) = fs::read_dir(&dir) else {
            return report;
        };
        let names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        for name in &names {
            if let Some(hex) = name.strip_prefix("sha256:") {
                let to = dir.join(format!("sha256-{hex}"));
                match fs::rename(dir.join(name), &to) {
                    Ok(()) => report.renamed += 1,
                    Err(e) => {
                        tracing::warn!(blob = %name, error = %e, "could not rename legacy blob")
                    }
                }
            }
        }
        if noprune {
            return report;
        }
        let in_use: HashSet<String> = self
            .list_manifests()
            .iter()
            .flat_map(|m| {
                m.manifest
                    .digests()
                    .map(|d| d.replace(':', "-"))
                    .collect::<Vec<_>>()
            })
            .collect();
        let now = SystemTime::now();
        let Ok(entries) = fs::read_dir(&dir) else {
            return report;
        };
        for e in entries.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let Some(hex) = name.strip_prefix("sha256-") else {
                continue;
            };
            if hex.len() != 64
                || !hex.bytes().all(|b| b.is_ascii_hexdigit())
                || in_use.contains(&name)
            {
                continue; // partial downloads and temp files are not blobs
            }
            let old_enough = e
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() >= grace)
                .unwrap_or(false);
            if !old_enough {
                continue;
            }
            match fs::remove_file(e.path()) {
                Ok(()) => report.pruned += 1,
                Err(err) => tracing::warn!(blob = %name, error = %err, "could not prune blob"),
            }
        }
        prune_empty_dirs(&self.manifests_dir());
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Layer, Manifest};
    use crate::name::Name;

    fn layer(data: &[u8], store: &Store) -> Layer {
        let (digest, _) = store.blobs().put_bytes(data).unwrap();
        Layer {
            media_type: "application/vnd.ollama.image.model".into(),
            digest,
            size: data.len() as i64,
            from: String::new(),
            name: String::new(),
        }
    }

    #[test]
    fn legacy_colon_blob_names_are_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        fs::create_dir_all(dir.path().join("blobs")).unwrap();
        let hex = "a".repeat(64);
        fs::write(dir.path().join("blobs").join(format!("sha256:{hex}")), b"x").unwrap();
        let r = store.startup_maintenance(true, PRUNE_GRACE);
        assert_eq!(r.renamed, 1);
        assert!(dir
            .path()
            .join("blobs")
            .join(format!("sha256-{hex}"))
            .exists());
    }

    #[test]
    fn unreferenced_old_blobs_are_pruned_but_referenced_partial_and_young_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let keep = layer(b"referenced", &store);
        let config = layer(b"{}", &store);
        let name = Name::parse("m");
        store
            .write_manifest(&name, &Manifest::new(config, vec![keep.clone()]))
            .unwrap();
        let (orphan, _) = store.blobs().put_bytes(b"orphan").unwrap();
        let partial = dir
            .path()
            .join("blobs")
            .join(format!("sha256-{}-partial", "b".repeat(64)));
        fs::write(&partial, b"half").unwrap();

        // Young orphans survive the grace period.
        assert_eq!(store.startup_maintenance(false, PRUNE_GRACE).pruned, 0);
        // With no grace period the orphan goes; the referenced blob and the partial stay.
        let r = store.startup_maintenance(false, Duration::ZERO);
        assert_eq!(r.pruned, 1);
        assert!(!store.blobs().exists(&orphan).unwrap());
        assert!(store.blobs().exists(&keep.digest).unwrap());
        assert!(partial.exists());
    }

    #[test]
    fn noprune_keeps_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let (orphan, _) = store.blobs().put_bytes(b"orphan").unwrap();
        assert_eq!(store.startup_maintenance(true, Duration::ZERO).pruned, 0);
        assert!(store.blobs().exists(&orphan).unwrap());
    }
}
