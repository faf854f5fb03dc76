//! Compiled components, kept on disk precompiled: keyed by the component's sha256 and the
//! engine's compatibility hash, so an artifact is only ever loaded by the engine
//! configuration that made it.

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
    let Some(dir) = dir else {
        return Component::new(engine, bytes).map_err(|e| format!("{e:#}"));
    };
    let path = artifact_path(engine, dir, hash);
    // Read into memory rather than `deserialize_file`: a mapped file that another process
    // truncates or rewrites in place would take this one down with SIGBUS.
    if let Ok(artifact) = std::fs::read(&path) {
        // SAFETY: deserializing runs native code from the file. The cache directory is
        // written only by this function, from components compiled by this engine
        // configuration (the file name carries the content hash and the engine's
        // compatibility hash); wasmtime itself checks the artifact's header and version.
        #[allow(unsafe_code)]
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
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, &artifact) };
    component.map_err(|e| format!("{e:#}"))
}

/// Concurrent loaders may race: each writes its own temporary file and renames it.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("artifact"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
