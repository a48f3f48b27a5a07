//! Watching the configuration files (`config.watch: true`): a change of the configuration file
//! or of a `*.yaml` file of `instances.definitions_dir` reloads, once the files have been quiet
//! for `config.watch_debounce_ms` (an editor's save is often several writes and a rename). The
//! folders holding them are watched, not the files, so that a file replaced by a rename is
//! still seen. The watch follows the configuration in force: turning `config.watch` on or off,
//! or moving `definitions_dir`, takes effect at the reload that does it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Reloader, Trigger};
use crate::config::Config;

/// What the watch looks at for a configuration: the folders to watch and whether a changed
/// path matters. Pure, so that the choice is testable without files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSet {
    /// The configuration file.
    file: Option<PathBuf>,
    /// The folder of declarations.
    definitions_dir: Option<PathBuf>,
}

impl WatchSet {
    /// What to watch for `config` (nothing when `config.watch` is off or there is no file).
    ///
    /// ```
    /// use std::path::Path;
    /// use llamactl_server::config::{Config, ConfigOrigin};
    /// use llamactl_server::declared::watch::WatchSet;
    /// let mut config = Config::default();
    /// config.config.watch = true;
    /// config.origin = Some(ConfigOrigin { path: "/etc/llamactl/config.yaml".into(), text: String::new() });
    /// config.instances.definitions_dir = Some("/etc/llamactl/models".into());
    /// let set = WatchSet::of(&config);
    /// assert!(set.matters(Path::new("/etc/llamactl/config.yaml")));
    /// assert!(set.matters(Path::new("/etc/llamactl/models/qwen.yaml")));
    /// assert!(!set.matters(Path::new("/etc/llamactl/models/notes.txt")));
    /// assert!(!set.matters(Path::new("/etc/llamactl/other.yaml")));
    /// ```
    pub fn of(config: &Config) -> Self {
        match (&config.origin, config.config.watch) {
            (Some(origin), true) => {
                Self { file: Some(origin.path.clone()), definitions_dir: config.instances.definitions_dir.clone() }
            }
            _ => Self { file: None, definitions_dir: None },
        }
    }

    /// The folders to watch.
    pub fn folders(&self) -> BTreeSet<PathBuf> {
        let parent = self.file.as_deref().and_then(Path::parent).map(Path::to_path_buf);
        parent.into_iter().chain(self.definitions_dir.clone()).collect()
    }

    /// Whether a change of `path` is a change of the configuration.
    pub fn matters(&self, path: &Path) -> bool {
        if self.file.as_deref() == Some(path) {
            return true;
        }
        let yaml = path.extension().is_some_and(|x| x == "yaml" || x == "yml");
        yaml && self.definitions_dir.as_deref().is_some_and(|dir| path.parent() == Some(dir))
    }
}

/// Watches for as long as the server runs, reloading on changes while `config.watch` is on.
pub async fn watch_files(reloader: Arc<Reloader>, stop: CancellationToken) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<PathBuf>>();
    let mut watcher: RecommendedWatcher =
        match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                let _ = tx.send(event.paths);
            }
        }) {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!(%error, "cannot watch the configuration files: reload by SIGHUP or the API");
                return;
            }
        };
    let mut watched = BTreeSet::new();
    let mut reloads = reloader.subscribe();
    loop {
        let set = WatchSet::of(&reloader.config());
        follow(&mut watcher, &mut watched, set.folders());
        let paths = tokio::select! {
            () = stop.cancelled() => return,
            // A reload by other means may have turned the watch on or off, or moved a folder.
            _ = reloads.recv() => continue,
            paths = rx.recv() => paths,
        };
        let Some(paths) = paths else { return };
        if !paths.iter().any(|p| set.matters(p)) {
            continue;
        }
        let debounce = Duration::from_millis(reloader.config().config.watch_debounce_ms);
        // Quiet for the whole debounce time: then the files are written.
        while let Ok(Some(_)) = tokio::time::timeout(debounce, rx.recv()).await {}
        reloader.reload(Trigger::Watch, false).await;
        // This reload's own notice is not news.
        reloads = reloads.resubscribe();
    }
}

/// Watches `wanted` and no other folder.
fn follow(watcher: &mut RecommendedWatcher, watched: &mut BTreeSet<PathBuf>, wanted: BTreeSet<PathBuf>) {
    for gone in watched.difference(&wanted) {
        let _ = watcher.unwatch(gone);
    }
    for new in wanted.difference(watched) {
        if let Err(error) = watcher.watch(new, RecursiveMode::NonRecursive) {
            tracing::warn!(folder = %new.display(), %error, "cannot watch this folder for configuration changes");
        }
    }
    *watched = wanted;
}
