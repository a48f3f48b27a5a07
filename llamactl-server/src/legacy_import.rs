//! One-time import of the Go llamactl's per-instance JSON files into the database.
//!
//! Before it used SQLite, the Go llamactl kept each instance in `<instances_dir>/<name>.json`:
//!
//! ```json
//! {"name": "qwen", "status": "running", "created": 1718000000,
//!  "options": {"backend_type": "llama_cpp", "backend_options": {"m": "/models/q.gguf", "c": 4096}}}
//! ```
//!
//! [`import_legacy_instances`] brings such files into the database once, at start-up:
//!
//! 1. Every `*.json` file directly inside the folder is read and checked (name, options, creation
//!    time, status) before anything is written. One bad file stops the import with an error
//!    naming the file, and nothing changes: no database row, every file left in place.
//! 2. All instances are inserted in one transaction ([`Database::import_instances`]).
//! 3. The files are moved into `<instances_dir>/imported-<YYYYMMDDTHHMMSSZ>/`, so the next start
//!    finds nothing to import.
//!
//! If an earlier start crashed between steps 2 and 3, the instances are already in the database:
//! when every file's instance exists with the same options, the files are only archived. Any
//! other clash with an existing instance is an error and changes nothing.

use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use llamactl_core::{Database, DbError, DesiredState, ImportedInstance, InstanceName, InstanceOptions, OptionsError};
use serde_json::{Map, Value};

/// What [`import_legacy_instances`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Names of the instances brought in (or found already imported), in file-name order.
    /// Empty when there was nothing to import.
    pub imported: Vec<String>,
    /// Where the original files were moved; `None` when there was nothing to import.
    pub archive: Option<PathBuf>,
    /// `true` when the instances were already in the database from an earlier import that
    /// stopped before archiving its files, so the files were only archived.
    pub already_in_database: bool,
}

impl ImportReport {
    /// Whether nothing was found to import.
    pub fn is_empty(&self) -> bool {
        self.imported.is_empty()
    }
}

/// Why the legacy instance files could not be imported. Every variant names a path; all but
/// [`ImportError::Archive`] leave the database and the files as they were.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The instances folder exists but cannot be listed.
    #[error("cannot read the legacy instances folder {}: {error}, nothing was imported", path.display())]
    Folder {
        /// The instances folder.
        path: PathBuf,
        /// The cause.
        error: io::Error,
    },
    /// A file cannot be read, is not valid JSON, or holds a bad name, status or creation time.
    #[error("legacy instance file {}: {message}, nothing was imported", path.display())]
    InvalidFile {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A file's `options` do not parse or do not validate.
    #[error("legacy instance file {}: {error}, nothing was imported", path.display())]
    Options {
        /// The file at fault.
        path: PathBuf,
        /// The option error, naming the field (e.g. `backend_options.ctx_size`).
        error: OptionsError,
    },
    /// An instance of the same name already exists in the database and this is not an
    /// interrupted earlier import of the same files.
    #[error("legacy instance file {}: {message}, nothing was imported", path.display())]
    Conflict {
        /// The file whose instance clashes.
        path: PathBuf,
        /// The instance name.
        name: String,
        /// What the clash is and how to resolve it.
        message: String,
    },
    /// The folder for the original files cannot be created (checked before anything is written).
    #[error("cannot create the archive folder {} for legacy instance files: {error}, nothing was imported", path.display())]
    ArchiveFolder {
        /// The archive folder.
        path: PathBuf,
        /// The cause.
        error: io::Error,
    },
    /// The database refused the import.
    #[error("importing the legacy instance files in {}: {error}, nothing was imported", path.display())]
    Database {
        /// The instances folder.
        path: PathBuf,
        /// The cause.
        error: DbError,
    },
    /// The instances were imported, but a file could not be moved to the archive folder. The
    /// next start recognises the remaining files as already imported and archives them then.
    #[error(
        "legacy instance file {}: imported into the database but not moved to {}: {error} \
         (it will be recognised as already imported on the next start)",
        path.display(),
        archive.display()
    )]
    Archive {
        /// The file that was not moved.
        path: PathBuf,
        /// The archive folder.
        archive: PathBuf,
        /// The cause.
        error: io::Error,
    },
}

impl ImportError {
    /// The file (or folder) the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Folder { path, .. }
            | Self::InvalidFile { path, .. }
            | Self::Options { path, .. }
            | Self::Conflict { path, .. }
            | Self::ArchiveFolder { path, .. }
            | Self::Database { path, .. }
            | Self::Archive { path, .. } => path,
        }
    }

    /// The option at fault (a dotted path such as `backend_options.ctx_size`), for option errors.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Options { error, .. } => Some(error.field()),
            _ => None,
        }
    }
}

/// One checked legacy file.
#[derive(Debug)]
struct LegacyFile {
    path: PathBuf,
    instance: ImportedInstance,
}

/// Imports the Go llamactl's `<name>.json` instance files from `instances_dir` into `db`, once.
///
/// Returns an empty report when the folder does not exist or holds no `*.json` file (the usual
/// case). Otherwise every file is checked first, then all instances are inserted in one
/// transaction, then the files are moved to `<instances_dir>/imported-<UTC timestamp>/`. See the
/// [module documentation](self) for the checks and for recovery from an interrupted import.
///
/// In each file, `name` must be a valid instance name equal to the file name without `.json`;
/// `options` must parse and validate; `created` (unix seconds, optional) becomes the creation
/// time; `status` `running` or `restarting` (or, in the oldest versions, `"running": true`)
/// makes the instance start on the next boot, anything else leaves it stopped.
pub async fn import_legacy_instances(db: &dyn Database, instances_dir: &Path) -> Result<ImportReport, ImportError> {
    let paths = list_json_files(instances_dir).await?;
    if paths.is_empty() {
        return Ok(ImportReport::default());
    }

    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| ImportError::InvalidFile { message: format!("cannot read it: {e}"), path: path.clone() })?;
        let instance = parse_legacy_file(&path, &bytes)?;
        files.push(LegacyFile { path, instance });
    }

    // Created before the transaction, so an unwritable folder is found while nothing has changed.
    let archive = create_archive_folder(instances_dir).await?;
    let instances: Vec<ImportedInstance> = files.iter().map(|f| f.instance.clone()).collect();
    let already_in_database = match db.import_instances(&instances).await {
        Ok(()) => false,
        Err(DbError::AlreadyExists(existing)) => match check_already_imported(db, instances_dir, &files).await {
            Ok(true) => true,
            Ok(false) => {
                remove_empty_archive(&archive).await;
                return Err(ImportError::Database {
                    path: instances_dir.to_path_buf(),
                    error: DbError::AlreadyExists(existing),
                });
            }
            Err(error) => {
                remove_empty_archive(&archive).await;
                return Err(error);
            }
        },
        Err(error) => {
            remove_empty_archive(&archive).await;
            return Err(ImportError::Database { path: instances_dir.to_path_buf(), error });
        }
    };

    for file in &files {
        if already_in_database {
            tracing::info!(
                instance = %file.instance.name,
                file = %file.path.display(),
                "legacy instance was already imported by an interrupted earlier start"
            );
        } else {
            tracing::info!(
                instance = %file.instance.name,
                desired_state = %file.instance.desired_state,
                file = %file.path.display(),
                "imported legacy instance"
            );
        }
    }
    for file in &files {
        let Some(file_name) = file.path.file_name() else { continue };
        tokio::fs::rename(&file.path, archive.join(file_name)).await.map_err(|error| ImportError::Archive {
            path: file.path.clone(),
            archive: archive.clone(),
            error,
        })?;
    }
    let imported: Vec<String> = files.iter().map(|f| f.instance.name.to_string()).collect();
    tracing::info!(
        count = imported.len(),
        instances = %imported.join(", "),
        archive = %archive.display(),
        "legacy instance files imported; the originals were moved to the archive folder"
    );
    Ok(ImportReport { imported, archive: Some(archive), already_in_database })
}

/// The regular `*.json` files directly inside `dir`, sorted by file name; none if `dir` does not
/// exist.
async fn list_json_files(dir: &Path) -> Result<Vec<PathBuf>, ImportError> {
    let folder_error = |error| ImportError::Folder { path: dir.to_path_buf(), error };
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(folder_error(e)),
    };
    let mut paths = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(folder_error)? {
        let path = entry.path();
        let is_json = path.extension().is_some_and(|e| e == "json") && path.file_stem().is_some_and(|s| !s.is_empty());
        if !is_json {
            continue;
        }
        // Follows symbolic links: a link to a file is read like the file.
        let metadata = tokio::fs::metadata(&path)
            .await
            .map_err(|e| ImportError::InvalidFile { message: format!("cannot read it: {e}"), path: path.clone() })?;
        if metadata.is_file() {
            paths.push(path);
        }
    }
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(paths)
}

/// Checks one legacy instance file's content (`path` only names it in errors) and turns it
/// into an instance to import. Public for the fuzz target `legacy_file`.
pub fn parse_legacy_file(path: &Path, bytes: &[u8]) -> Result<ImportedInstance, ImportError> {
    let invalid = |message: String| ImportError::InvalidFile { path: path.to_path_buf(), message };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| invalid(format!("not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(invalid(format!("expected a JSON object, got {}", describe(&value))));
    };

    let name = match map.get("name") {
        Some(Value::String(name)) => name,
        None | Some(Value::Null) => return Err(invalid("name: missing".into())),
        Some(other) => return Err(invalid(format!("name: expected a string, got {}", describe(other)))),
    };
    // NameError's message starts with "name:".
    let name = InstanceName::new(name.as_str()).map_err(|e| invalid(e.to_string()))?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if name.as_str() != stem {
        return Err(invalid(format!(
            "name: {:?} does not match the file name (expected {stem:?}, the file name without .json)",
            name.as_str()
        )));
    }

    let options_error = |error| ImportError::Options { path: path.to_path_buf(), error };
    let options = match map.get("options") {
        None | Some(Value::Null) => return Err(invalid("options: missing".into())),
        Some(value) => InstanceOptions::from_json_value(value).map_err(options_error)?,
    };
    options.validate().map_err(options_error)?;

    let created_at = created_at(&map).map_err(invalid)?;
    Ok(ImportedInstance { name, options, created_at, desired_state: desired_state(&map) })
}

/// `created`: unix seconds; absent, null or 0 (the Go llamactl's "unset") means unknown.
fn created_at(map: &Map<String, Value>) -> Result<Option<DateTime<Utc>>, String> {
    match map.get("created") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(0) => Ok(None),
            Some(seconds) => DateTime::from_timestamp(seconds, 0)
                .map(Some)
                .ok_or_else(|| format!("created: {seconds} is not a valid time in unix seconds")),
            None => Err(format!("created: expected unix seconds (an integer), got {n}")),
        },
        Some(other) => Err(format!("created: expected unix seconds (an integer), got {}", describe(other))),
    }
}

/// The Go llamactl restarted instances that were `running` or `restarting` when it started; the
/// oldest versions wrote `"running": true` instead of a status.
fn desired_state(map: &Map<String, Value>) -> DesiredState {
    let running = match map.get("status") {
        Some(Value::String(status)) => matches!(status.as_str(), "running" | "restarting"),
        _ => matches!(map.get("running"), Some(Value::Bool(true))),
    };
    if running { DesiredState::Running } else { DesiredState::Stopped }
}

/// Whether every file's instance is already in the database with the same options (an import
/// that stopped before archiving). `Ok(false)` when none of them is there any more; an error
/// naming the instance when only some are, or when the options differ.
async fn check_already_imported(
    db: &dyn Database,
    instances_dir: &Path,
    files: &[LegacyFile],
) -> Result<bool, ImportError> {
    let mut present: Option<&LegacyFile> = None;
    let mut missing: Option<&LegacyFile> = None;
    for file in files {
        let name = file.instance.name.as_str();
        let stored =
            db.get(name).await.map_err(|error| ImportError::Database { path: instances_dir.to_path_buf(), error })?;
        let conflict = |message: String| ImportError::Conflict {
            path: file.path.clone(),
            name: name.to_owned(),
            message: format!("{message} (rename or remove the file, or delete the instance, then start again)"),
        };
        match stored {
            None => {
                missing.get_or_insert(file);
            }
            Some(stored) => match &stored.options {
                Ok(options) if *options == file.instance.options => {
                    present.get_or_insert(file);
                }
                Ok(_) => {
                    return Err(conflict(format!(
                        "instance {name} already exists in the database with different options"
                    )));
                }
                Err(e) => {
                    return Err(conflict(format!(
                        "instance {name} already exists in the database and its stored options cannot be read ({e})"
                    )));
                }
            },
        }
    }
    match (present, missing) {
        (Some(_), None) => Ok(true),
        (None, _) => Ok(false),
        (Some(present), Some(missing)) => {
            let name = present.instance.name.as_str();
            Err(ImportError::Conflict {
                path: present.path.clone(),
                name: name.to_owned(),
                message: format!(
                    "instance {name} already exists in the database but {} from {} does not, so these files are \
                     not from an earlier import (rename or remove the file, or delete the instance, then start again)",
                    missing.instance.name,
                    missing.path.display()
                ),
            })
        }
    }
}

/// Creates `<dir>/imported-<UTC timestamp>/`, with a numeric suffix if that already exists.
async fn create_archive_folder(dir: &Path) -> Result<PathBuf, ImportError> {
    let base = format!("imported-{}", Utc::now().format("%Y%m%dT%H%M%SZ"));
    let mut candidate = dir.join(&base);
    let mut suffix = 1u32;
    loop {
        match tokio::fs::create_dir(&candidate).await {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && suffix < 1000 => {
                suffix += 1;
                candidate = dir.join(format!("{base}-{suffix}"));
            }
            Err(error) => return Err(ImportError::ArchiveFolder { path: candidate, error }),
        }
    }
}

/// Removes the (still empty) archive folder after a failed import, so nothing has changed.
async fn remove_empty_archive(archive: &Path) {
    if let Err(error) = tokio::fs::remove_dir(archive).await {
        tracing::warn!(archive = %archive.display(), %error, "cannot remove the empty archive folder");
    }
}

/// A short description of a JSON value, for error messages.
fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".into(),
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    };
    let text = value.to_string();
    let shown =
        if text.chars().count() > 40 { format!("{}...", text.chars().take(40).collect::<String>()) } else { text };
    format!("{kind} {shown}")
}
