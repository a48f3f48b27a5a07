//! What the loader's tests share: an environment over fixed pairs, files in a temporary folder.

use std::fs;
use std::path::{Path, PathBuf};

use super::{ConfigError, LoadedConfig, load_from};

/// An environment lookup over fixed pairs.
pub(super) fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

pub(super) fn no_env(_: &str) -> Option<String> {
    None
}

pub(super) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&path, text).unwrap();
    path
}

pub(super) fn load_file(
    text: &str,
    vars: &[(&str, &str)],
) -> (tempfile::TempDir, PathBuf, Result<LoadedConfig, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "config.yaml", text);
    let result = load_from(Some(&path), &env_of(vars), &[]);
    (dir, path, result)
}
