//! `na-plugins new NAME`: a plugin crate of its own, outside this repository, made from
//! `metrics-plugins/template` (a workspace member, so the template itself is built and
//! tested with everything else) with its names replaced.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The template's files, as a new crate lays them out.
const FILES: [(&str, &str); 5] = [
    ("src/lib.rs", include_str!("../../template/src/lib.rs")),
    (
        "tests/fixtures.rs",
        include_str!("../../template/tests/fixtures.rs"),
    ),
    ("fixtures/events.jsonl", crate::fixtures::EVENTS),
    (
        "fixtures/expected.json",
        include_str!("../../template/fixtures/expected.json"),
    ),
    ("README.md", include_str!("../../template/README.md")),
];

/// Where the new crate's dependencies come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A checkout of this repository on disk.
    Checkout(PathBuf),
    /// This repository by git URL (cargo fetches it).
    Git(String),
}

impl Source {
    fn dependency(&self, dir: &str) -> String {
        match self {
            Source::Checkout(root) => format!(
                "{{ path = {} }}",
                toml_string(&root.join(dir).display().to_string())
            ),
            Source::Git(url) => format!("{{ git = {} }}", toml_string(url)),
        }
    }
}

/// `text` as a TOML string, quoted and escaped as TOML wants.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// Checks a crate name: lowercase ASCII letters, digits and `-`, starting with a letter, at
/// most 64 characters. It is also the plugin's name, and its metric's with `_` for `-`.
///
/// # Errors
/// Why the name is refused.
pub fn check_name(name: &str) -> Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!(
            "{name:?}: a plugin name is lowercase letters, digits and -, starting with a letter (at most 64)"
        );
    }
    Ok(())
}

/// Writes the crate `name` into `dir` (which must not exist or be empty). Returns the files
/// written.
///
/// # Errors
/// A bad name, a directory in use, or a write that fails.
pub fn new_crate(dir: &Path, name: &str, source: &Source) -> Result<Vec<PathBuf>> {
    check_name(name)?;
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!("{} exists and is not empty", dir.display());
    }
    let snake = name.replace('-', "_");
    let manifest = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the WASM component (na-plugins build .); rlib: native unit tests.
crate-type = ["cdylib", "rlib"]

[dependencies]
na-metrics-sdk = {sdk}

[dev-dependencies]
# Runs the built component in the production host over fixture events (tests/fixtures.rs).
na-plugin-testing = {testing}

# A crate of its own, not a member of an enclosing workspace.
[workspace]
"#,
        sdk = source.dependency("metrics-plugins/sdk"),
        testing = source.dependency("metrics-plugins/testing"),
    );
    let mut written = Vec::new();
    let mut write = |rel: &str, text: &str| -> Result<()> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    write("Cargo.toml", &manifest)?;
    write(".gitignore", "/target\n")?;
    for (rel, text) in FILES {
        let text = text
            .replace("plugin-template", name)
            .replace("plugin_template", &snake);
        write(rel, &text)?;
    }
    Ok(written)
}
