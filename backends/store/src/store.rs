//! The model store root (`$OLLAMA_MODELS`, default `~/.ollama/models`): manifests by name,
//! listing, copy, delete with blob garbage collection.
//!
//! [`crate::StoreBackend`] calls into this for `/api/tags`, `/api/show`, `/api/copy`,
//! `/api/delete` and create; the MLX runner receives paths resolved here. All methods are
//! synchronous filesystem code: the backend runs them on the blocking pool. Mutations (write,
//! copy, delete + GC) are serialized by one lock so a delete's garbage collection never races a
//! create that is about to reference a blob.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use crate::blobs::{atomic_write, hex, is_temp_name, Blobs};
use crate::error::{Result, StoreError};
use crate::manifest::{ConfigV2, Manifest};
use crate::name::Name;

/// A manifest read from disk, with what `/api/tags` needs about the file.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// The name, with the casing found on disk.
    pub name: Name,
    /// Decoded manifest.
    pub manifest: Manifest,
    /// Hex sha256 of the manifest file bytes.
    pub digest: String,
    /// Manifest file mtime.
    pub modified: SystemTime,
    /// Path of the manifest file.
    pub path: PathBuf,
}

/// The store rooted at one models directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    blobs: Blobs,
    lock: Arc<Mutex<()>>,
}

impl Store {
    /// A store rooted at `root` (the directory holding `manifests/` and `blobs/`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Store {
            blobs: Blobs::new(root.join("blobs")),
            root,
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// The models directory upstream uses: `$OLLAMA_MODELS`, else `$HOME/.ollama/models`
    /// (`%USERPROFILE%` on Windows), else `.ollama/models`.
    pub fn default_root() -> PathBuf {
        if let Some(p) = std::env::var_os("OLLAMA_MODELS").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let home = std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .map(PathBuf::from)
            .unwrap_or_default();
        home.join(".ollama").join("models")
    }

    /// A store at [`Store::default_root`].
    pub fn from_env() -> Self {
        Store::new(Store::default_root())
    }

    /// The models directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The blob directory.
    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// `manifests/`.
    pub fn manifests_dir(&self) -> PathBuf {
        self.root.join("manifests")
    }

    /// Take the mutation lock (held across create/copy/delete).
    pub fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Path of the manifest for `name`; `None` for a name that is not fully qualified.
    pub fn manifest_path(&self, name: &Name) -> Option<PathBuf> {
        name.rel_path().map(|p| self.manifests_dir().join(p))
    }

    /// Read the manifest of `name`; `Ok(None)` when there is none.
    pub fn read_manifest(&self, name: &Name) -> Result<Option<StoredManifest>> {
        let Some(path) = self.manifest_path(name) else {
            return Ok(None);
        };
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            // a directory where a tag file should be, or a component that is a file
            Err(e) if path.is_dir() || e.kind() == io::ErrorKind::NotADirectory => return Ok(None),
            Err(e) => return Err(StoreError::io(format!("read {}", path.display()), e)),
        };
        let modified = fs::metadata(&path)
            .and_then(|m| m.modified())
            .map_err(|e| StoreError::io(format!("stat {}", path.display()), e))?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::json(format!("manifest {name}"), e))?;
        Ok(Some(StoredManifest {
            name: name.clone(),
            manifest,
            digest: hex(&Sha256::digest(&bytes)),
            modified,
            path,
        }))
    }

    /// Every valid manifest (`manifests/*/*/*/*`), skipping unreadable or malformed ones.
    pub fn list_manifests(&self) -> Vec<StoredManifest> {
        let mut out = Vec::new();
        for name in self.names() {
            match self.read_manifest(&name) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => {}
                Err(e) => tracing::warn!(name = %name, error = %e, "bad manifest"),
            }
        }
        out
    }

    /// Names of all manifests on disk (exactly four directory levels, valid parts only).
    pub fn names(&self) -> Vec<Name> {
        let mut out = Vec::new();
        let root = self.manifests_dir();
        for host in read_dir_names(&root) {
            for ns in read_dir_names(&root.join(&host)) {
                for model in read_dir_names(&root.join(&host).join(&ns)) {
                    let dir = root.join(&host).join(&ns).join(&model);
                    for tag in read_dir_names(&dir) {
                        if is_temp_name(&tag) || !dir.join(&tag).is_file() {
                            continue;
                        }
                        if let Some(n) = Name::from_rel_path_parts(&[&host, &ns, &model, &tag]) {
                            out.push(n);
                        }
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// Adopt the casing of existing manifests (upstream's `getExistingName`).
    pub fn canonicalize(&self, name: &Name) -> Name {
        let names = self.names();
        name.canonicalize(names.iter())
    }

    /// Parse, validate and canonicalize a client-supplied name; `None` when invalid.
    pub fn resolve(&self, raw: &str) -> Option<Name> {
        let n = Name::parse(raw);
        n.is_valid().then(|| self.canonicalize(&n))
    }

    /// Atomically write `manifest` as the manifest of `name` (Go `json.Encoder` bytes).
    pub fn write_manifest(&self, name: &Name, manifest: &Manifest) -> Result<()> {
        self.write_manifest_bytes(name, &manifest.to_bytes())
    }

    /// Atomically write raw manifest bytes (pulled manifests are stored verbatim).
    pub fn write_manifest_bytes(&self, name: &Name, bytes: &[u8]) -> Result<()> {
        let path = self
            .manifest_path(name)
            .ok_or_else(|| StoreError::BadRequest("invalid model name".into()))?;
        atomic_write(&path, bytes)
    }

    /// Decode the config blob of a manifest (an empty config when it has none).
    pub fn read_config(&self, manifest: &Manifest) -> Result<ConfigV2> {
        if manifest.config.digest.is_empty() {
            return Ok(ConfigV2::default());
        }
        let bytes = self.blobs.read(&manifest.config.digest)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::json("config blob", e))
    }

    /// Copy the manifest of `src` to `dst` (byte-for-byte, so the digest is unchanged).
    /// Errors with [`StoreError::ModelNotFound`] (carrying `src_as_sent`) when `src` is missing.
    pub fn copy(&self, src: &Name, dst: &Name, src_as_sent: &str) -> Result<()> {
        let _g = self.lock();
        let (Some(sp), Some(dp)) = (self.manifest_path(src), self.manifest_path(dst)) else {
            return Err(StoreError::BadRequest("invalid model name".into()));
        };
        if sp == dp {
            return Ok(());
        }
        let bytes = match fs::read(&sp) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound || sp.is_dir() => {
                return Err(StoreError::ModelNotFound(src_as_sent.to_string()))
            }
            Err(e) => return Err(StoreError::io(format!("read {}", sp.display()), e)),
        };
        atomic_write(&dp, &bytes)
    }

    /// Delete the manifest of `name`, prune empty directories, then remove the blobs it
    /// referenced that no other manifest references. `Ok(false)` when there was no manifest.
    pub fn delete(&self, name: &Name) -> Result<bool> {
        let _g = self.lock();
        let Some(m) = self.read_manifest(name)? else {
            return Ok(false);
        };
        fs::remove_file(&m.path)
            .map_err(|e| StoreError::io(format!("remove {}", m.path.display()), e))?;
        prune_empty_dirs(&self.manifests_dir());
        self.remove_unused_layers_locked(&m.manifest)?;
        Ok(true)
    }

    /// Remove those of `old`'s blobs that no manifest references any more (caller holds the
    /// lock). Used after delete and after a create/pull replaced a tag.
    pub(crate) fn remove_unused_layers_locked(&self, old: &Manifest) -> Result<()> {
        let in_use: std::collections::HashSet<String> = self
            .list_manifests()
            .iter()
            .flat_map(|m| m.manifest.digests().map(str::to_string).collect::<Vec<_>>())
            .collect();
        for d in old.digests() {
            if in_use.contains(d) {
                continue;
            }
            match self.blobs.remove(d) {
                Ok(()) => {}
                Err(StoreError::InvalidDigest) => {
                    tracing::info!(digest = d, "skipping layer with invalid digest")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn read_dir_names(dir: &Path) -> Vec<String> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// Remove empty directories below (not including) `root`, recursively; never follows symlinks.
pub fn prune_empty_dirs(root: &Path) {
    fn walk(p: &Path) -> bool {
        let Ok(meta) = fs::symlink_metadata(p) else {
            return false;
        };
        if !meta.is_dir() {
            return false;
        }
        let mut empty = true;
        if let Ok(rd) = fs::read_dir(p) {
            for e in rd.flatten() {
                let child = e.path();
                if !walk(&child) || fs::remove_dir(&child).is_err() {
                    empty = false;
                }
            }
        }
        empty
    }
    walk(root);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Layer, MEDIA_TYPE_CONFIG, MEDIA_TYPE_MODEL};

    fn put_model(s: &Store, name: &str, weights: &[u8]) -> Manifest {
        let (wd, _) = s.blobs().put_bytes(weights).unwrap();
        let (cd, _) = s.blobs().put_bytes(&ConfigV2::new().to_bytes()).unwrap();
        let m = Manifest::new(
            Layer {
                media_type: MEDIA_TYPE_CONFIG.into(),
                digest: cd,
                size: ConfigV2::new().to_bytes().len() as i64,
                ..Default::default()
            },
            vec![Layer {
                media_type: MEDIA_TYPE_MODEL.into(),
                digest: wd,
                size: weights.len() as i64,
                ..Default::default()
            }],
        );
        s.write_manifest(&Name::parse(name), &m).unwrap();
        m
    }

    #[test]
    fn manifests_live_at_host_ns_model_tag() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        put_model(&s, "llama3:8b", b"w");
        put_model(&s, "localhost:5000/me/m", b"w");
        assert!(d
            .path()
            .join("manifests/registry.ollama.ai/library/llama3/8b")
            .is_file());
        assert!(d
            .path()
            .join("manifests/localhost:5000/me/m/latest")
            .is_file());
        let names: Vec<_> = s.names().iter().map(Name::display_shortest).collect();
        assert_eq!(names, vec!["localhost:5000/me/m:latest", "llama3:8b"]);
    }

    #[test]
    fn manifest_digest_is_sha256_of_file_bytes() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        let m = put_model(&s, "x", b"w");
        let got = s.read_manifest(&Name::parse("x")).unwrap().unwrap();
        assert_eq!(got.digest, hex(&Sha256::digest(m.to_bytes())));
        assert_eq!(got.manifest, m);
    }

    #[test]
    fn stray_files_and_bad_names_are_not_listed() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        put_model(&s, "ok", b"w");
        let bad = d.path().join("manifests/registry.ollama.ai/bad.ns/m");
        fs::create_dir_all(&bad).unwrap();
        fs::write(bad.join("latest"), b"{}").unwrap();
        fs::write(
            d.path()
                .join("manifests/registry.ollama.ai/library/ok/.tmp-1"),
            b"x",
        )
        .unwrap();
        let broken = d.path().join("manifests/registry.ollama.ai/library/broken");
        fs::create_dir_all(&broken).unwrap();
        fs::write(broken.join("latest"), b"not json").unwrap();
        let listed: Vec<_> = s
            .list_manifests()
            .iter()
            .map(|m| m.name.display_shortest())
            .collect();
        assert_eq!(listed, vec!["ok:latest"]);
    }

    #[test]
    fn delete_collects_only_unshared_blobs_and_prunes_dirs() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        let a = put_model(&s, "a", b"shared");
        put_model(&s, "b", b"shared");
        let (only_a, _) = s.blobs().put_bytes(b"only-a").unwrap();
        let mut a2 = a.clone();
        a2.layers.push(Layer {
            media_type: "application/vnd.ollama.image.license".into(),
            digest: only_a.clone(),
            size: 6,
            ..Default::default()
        });
        s.write_manifest(&Name::parse("a"), &a2).unwrap();

        assert!(s.delete(&Name::parse("a")).unwrap());
        assert!(!s.blobs().exists(&only_a).unwrap());
        assert!(
            s.blobs().exists(&a.layers[0].digest).unwrap(),
            "still used by b"
        );
        assert!(!d
            .path()
            .join("manifests/registry.ollama.ai/library/a")
            .exists());
        assert!(!s.delete(&Name::parse("a")).unwrap());

        assert!(s.delete(&Name::parse("b")).unwrap());
        assert!(!s.blobs().exists(&a.layers[0].digest).unwrap());
        assert!(!d.path().join("manifests/registry.ollama.ai").exists());
    }

    #[test]
    fn copy_is_byte_for_byte_and_missing_source_is_not_found() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        put_model(&s, "src", b"w");
        s.copy(&Name::parse("src"), &Name::parse("me/dst:v1"), "src")
            .unwrap();
        let a = s.read_manifest(&Name::parse("src")).unwrap().unwrap();
        let b = s.read_manifest(&Name::parse("me/dst:v1")).unwrap().unwrap();
        assert_eq!(a.digest, b.digest);
        let err = s
            .copy(&Name::parse("nope"), &Name::parse("x"), "nope")
            .unwrap_err();
        assert!(matches!(err, StoreError::ModelNotFound(m) if m == "nope"));
    }

    #[test]
    fn resolve_is_case_insensitive_against_existing() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        put_model(&s, "MyModel:Tag", b"w");
        let n = s.resolve("mymodel:TAG").unwrap();
        assert_eq!(n.display_shortest(), "MyModel:Tag");
        assert!(s.read_manifest(&n).unwrap().is_some());
        assert!(s.resolve("../../etc").is_none());
    }
}
