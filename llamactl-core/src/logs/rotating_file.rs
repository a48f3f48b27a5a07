//! An append-only log file rotated by size: `name.log` is renamed to `name.log.1` (and older
//! files shift up to `name.log.<keep>`) when the next line would take it past the limit.
//!
//! Written here rather than taken from a crate because the available one panics when its
//! directory cannot be created; a full or read-only disk must be an error the manager reports,
//! never a crash.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Size limit and number of rotated files to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rotation {
    /// Rotate when the file would grow past this many bytes (0 = never rotate).
    pub max_bytes: u64,
    /// Rotated files kept (`.1` is the newest); older ones are deleted.
    pub keep: usize,
}

impl Default for Rotation {
    fn default() -> Self {
        Self { max_bytes: 10 * 1024 * 1024, keep: 5 }
    }
}

#[derive(Debug)]
pub(crate) struct RotatingFile {
    path: PathBuf,
    rotation: Rotation,
    file: Option<File>,
    size: u64,
}

fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl RotatingFile {
    pub(crate) fn new(path: PathBuf, rotation: Rotation) -> Self {
        Self { path, rotation, file: None, size: 0 }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn open(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            if let Some(parent) = self.path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let file = OpenOptions::new().create(true).append(true).open(&self.path)?;
            self.size = file.metadata()?.len();
            self.file = Some(file);
        }
        self.file.as_mut().ok_or_else(|| io::Error::other("log file not open"))
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.rotation.keep == 0 {
            std::fs::remove_file(&self.path).or_else(ignore_missing)?;
        } else {
            std::fs::remove_file(numbered(&self.path, self.rotation.keep)).or_else(ignore_missing)?;
            for n in (1..self.rotation.keep).rev() {
                std::fs::rename(numbered(&self.path, n), numbered(&self.path, n + 1)).or_else(ignore_missing)?;
            }
            std::fs::rename(&self.path, numbered(&self.path, 1)).or_else(ignore_missing)?;
        }
        self.size = 0;
        Ok(())
    }

    /// Appends one line or several (the caller includes the newlines). On error the file is closed, so the
    /// next call reopens it: writing resumes by itself once the disk has room again.
    pub(crate) fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let result = self.try_write(line);
        if result.is_err() {
            self.file = None;
        }
        result
    }

    fn try_write(&mut self, line: &[u8]) -> io::Result<()> {
        self.open()?;
        let len = line.len() as u64;
        if self.rotation.max_bytes > 0 && self.size > 0 && self.size + len > self.rotation.max_bytes {
            self.rotate()?;
        }
        self.open()?.write_all(line)?;
        self.size += len;
        Ok(())
    }
}

fn ignore_missing(error: io::Error) -> io::Result<()> {
    if error.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(error) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/x.log");
        let mut file = RotatingFile::new(path.clone(), Rotation { max_bytes: 20, keep: 2 });
        for i in 0..10 {
            file.write_line(format!("line {i:04}\n").as_bytes()).unwrap(); // 10 bytes each
        }
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(path.clone()), "line 0008\nline 0009\n");
        assert_eq!(read(numbered(&path, 1)), "line 0006\nline 0007\n");
        assert_eq!(read(numbered(&path, 2)), "line 0004\nline 0005\n");
        assert!(!numbered(&path, 3).exists());
    }

    #[test]
    fn appends_to_an_existing_file_and_counts_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        std::fs::write(&path, "old old old old\n").unwrap(); // 16 bytes
        let mut file = RotatingFile::new(path.clone(), Rotation { max_bytes: 20, keep: 1 });
        file.write_line(b"new line\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new line\n");
        assert_eq!(std::fs::read_to_string(numbered(&path, 1)).unwrap(), "old old old old\n");
    }

    #[test]
    fn an_unwritable_place_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, "").unwrap();
        let mut file = RotatingFile::new(blocker.join("x.log"), Rotation::default());
        assert!(file.write_line(b"x\n").is_err());
        assert!(file.write_line(b"y\n").is_err(), "keeps failing without panicking");
    }
}
