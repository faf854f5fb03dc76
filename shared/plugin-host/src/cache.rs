//! Compiled components, kept on disk precompiled: keyed by the component's sha256 and the
//! engine's compatibility hash, so an artifact is only ever loaded by the engine
//! configuration that made it. An artifact is native code, so the directory must be this
//! process's own: created owner-only, and refused (the component is compiled instead) when
//! another user owns it or can write to it, or an artifact in it is not ours.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

fn artifact_path(engine: &Engine, dir: &Path, hash: &[u8; 32]) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    dir.join(format!("{}-{:016x}.cwasm", hex::encode(hash), h.finish()))
}

/// The component for `bytes`: from the artifact cache when it holds one, else compiled
/// (and stored there).
pub(crate) fn component(
    engine: &Engine,
    dir: Option<&Path>,
    bytes: &[u8],
    hash: &[u8; 32],
) -> Result<Component, String> {
    let Some(dir) = dir.filter(|d| match private_dir(d) {
        Ok(()) => true,
        Err(why) => {
            tracing::warn!(dir = %d.display(), why, "plugin artifact cache refused; compiling instead");
            false
        }
    }) else {
        return Component::new(engine, bytes).map_err(|e| format!("{e:#}"));
    };
    let path = artifact_path(engine, dir, hash);
    // Read into memory rather than `deserialize_file`: a mapped file that another process
    // truncates or rewrites in place would take this one down with SIGBUS.
    if let Ok(artifact) =
        owned(&path).and_then(|()| std::fs::read(&path).map_err(|e| e.to_string()))
    {
        // SAFETY: deserializing runs native code from the file. The cache directory is
        // written only by this function, from components compiled by this engine
        // configuration (the file name carries the content hash and the engine's
        // compatibility hash); wasmtime itself checks the artifact's header and version.
        #[allow(
            unsafe_code,
            reason = "wasmtime loads precompiled native code only unsafely"
        )]
        let loaded = unsafe { Component::deserialize(engine, &artifact) };
        match loaded {
            Ok(c) => return Ok(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unusable artifact; recompiling")
            }
        }
    }
    let artifact = engine
        .precompile_component(bytes)
        .map_err(|e| format!("{e:#}"))?;
    if let Err(e) = write_atomically(dir, &path, &artifact) {
        tracing::warn!(path = %path.display(), error = %e, "cannot cache the artifact");
    }
    // SAFETY: `artifact` was produced just now by this engine's own precompiler.
    #[allow(
        unsafe_code,
        reason = "wasmtime loads precompiled native code only unsafely"
    )]
    let component = unsafe { Component::deserialize(engine, &artifact) };
    component.map_err(|e| format!("{e:#}"))
}

/// The user this process runs as: the owner of `/proc/self` (Linux; elsewhere unknown).
fn own_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Creates `dir` owner-only if it is missing; fails when it is not a directory of this
/// user's that no one else can write to.
fn private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| e.to_string())?;
    let meta = std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
    if !meta.is_dir() {
        return Err("not a directory".into());
    }
    if own_uid().is_some_and(|me| meta.uid() != me) {
        return Err(format!("owned by uid {}, not this process's", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "writable by others (mode {:o}); chmod go-w it",
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// An artifact file of this user's that no one else can write to.
fn owned(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() || own_uid().is_some_and(|me| meta.uid() != me) || meta.mode() & 0o022 != 0 {
        tracing::warn!(path = %path.display(), "artifact not this process's own; not loaded");
        return Err("not ours".into());
    }
    Ok(())
}

/// Concurrent loaders may race: each writes its own temporary file and renames it.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("artifact"),
        std::process::id()
    ));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_cache_directory_is_created_owner_only_and_refused_when_others_can_write() {
        let root = std::env::temp_dir().join(format!("na-cache-test-{}", std::process::id()));
        let dir = root.join("cache");
        private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = private_dir(&dir).unwrap_err();
        assert!(e.contains("writable by others"), "{e}");
        let file = root.join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(private_dir(&file).is_err(), "a file is no cache directory");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(
            owned(&file).is_err(),
            "an artifact others can write is not loaded"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(owned(&file).is_ok());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
