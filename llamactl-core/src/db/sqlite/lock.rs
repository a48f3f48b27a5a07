//! The lock that keeps a database file to one owner at a time.
//!
//! Two managers on one file would both start what should run at boot, both adopt, evict and
//! restart the same instances: duplicate backends and fights over ports. So opening a file
//! takes an exclusive `flock` on `<file>.lock` beside it, held until the database is closed or
//! the process ends — the kernel releases it however the process dies, `kill -9` included,
//! and backends never inherit it (the descriptor is close-on-exec). The lock file says who
//! holds it (pid and, once set, what it serves), so the refused opener can name it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::db::DbError;

/// The lock file of the database file `database`: `<file>.lock`.
pub(super) fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// An exclusive lock on a database file, released when dropped.
#[derive(Debug)]
pub(super) struct DatabaseLock {
    file: File,
}

impl DatabaseLock {
    /// Takes the lock of `database` without waiting, or says who holds it.
    pub(super) fn acquire(database: &Path) -> Result<Self, DbError> {
        let path = lock_path(database);
        let shown = database.display().to_string();
        let io = |source: std::io::Error| DbError::Open { path: shown.clone(), source: Box::new(source) };
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(DbError::InUse { path: shown, holder: holder_of(&path) });
            }
            Err(TryLockError::Error(error)) => return Err(io(error)),
        }
        let lock = Self { file };
        lock.describe(None).map_err(io)?;
        Ok(lock)
    }

    /// Writes who holds the lock: this process's pid and `what` it does, if given.
    pub(super) fn describe(&self, what: Option<&str>) -> std::io::Result<()> {
        let mut text = format!("pid {}", std::process::id());
        if let Some(what) = what.filter(|w| !w.is_empty()) {
            text.push_str(", ");
            text.push_str(what);
        }
        text.push('\n');
        let mut file = &self.file;
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(text.as_bytes())?;
        file.flush()
    }
}

/// What the lock file at `path` says of its holder, or a plain phrase if it says nothing.
fn holder_of(path: &Path) -> String {
    let mut text = String::new();
    let read = File::open(path).and_then(|f| f.take(1024).read_to_string(&mut text));
    match read.ok().map(|_| text.trim()).filter(|t| !t.is_empty()) {
        Some(holder) => holder.to_owned(),
        None => "another process".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_first_and_granted_once_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("llamactl.db");
        let first = DatabaseLock::acquire(&db).unwrap();
        first.describe(Some("serving http://127.0.0.1:1")).unwrap();
        let refused = DatabaseLock::acquire(&db).unwrap_err();
        let DbError::InUse { path, holder } = &refused else { panic!("{refused}") };
        assert_eq!(path, &db.display().to_string());
        assert_eq!(holder, &format!("pid {}, serving http://127.0.0.1:1", std::process::id()));
        drop(first);
        let again = DatabaseLock::acquire(&db).unwrap();
        drop(again);
        assert_eq!(lock_path(&db), dir.path().join("llamactl.db.lock"));
    }

    #[test]
    fn an_empty_lock_file_names_no_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.lock"), "  \n").unwrap();
        assert_eq!(holder_of(&dir.path().join("x.lock")), "another process");
        assert_eq!(holder_of(&dir.path().join("missing.lock")), "another process");
    }
}
