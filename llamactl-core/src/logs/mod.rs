//! Per-instance logs: a bounded in-memory ring of recent lines with live following, and a
//! size-rotated log file that outlives the manager.

mod rotating_file;

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use rotating_file::RotatingFile;
pub use rotating_file::Rotation;

pub mod output_file;

/// Longest line kept, in bytes; the rest of a longer line is cut off (and marked).
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// Prefix of lines the manager itself writes into an instance's log.
pub const MANAGER_PREFIX: &str = "[llamactl] ";
/// How much of an existing log file is read to refill the ring after a restart.
const PRIME_BYTES: u64 = 256 * 1024;
/// Lines a follower may fall behind before it is told it lagged.
const FOLLOW_BUFFER: usize = 1024;

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// The backend's standard output.
    Stdout,
    /// The backend's standard error.
    Stderr,
    /// The manager (start commands, exits, signals).
    Manager,
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Increasing number within this manager's run (lines refilled from the file come first).
    pub seq: u64,
    /// When the line was read (for refilled lines: when the file was last written).
    pub at: DateTime<Utc>,
    /// Where it came from.
    pub stream: LogStream,
    /// The text, without the line ending.
    pub text: String,
}

#[derive(Debug)]
struct Inner {
    ring: VecDeque<Arc<LogLine>>,
    next_seq: u64,
    file: Option<RotatingFile>,
    primed: bool,
    file_error: Option<String>,
    /// Created by the first follower: thousands of instances nobody follows cost nothing.
    sender: Option<broadcast::Sender<Arc<LogLine>>>,
}

/// The log of one instance.
///
/// ```
/// use llamactl_core::logs::{LogStore, LogStream};
///
/// let logs = LogStore::new(None, 100, Default::default());
/// logs.push(LogStream::Stdout, "loading model");
/// let (recent, mut live) = logs.follow(10);
/// assert_eq!(recent[0].text, "loading model");
/// logs.push(LogStream::Stderr, "ready");
/// assert_eq!(live.try_recv().unwrap().text, "ready");
/// ```
#[derive(Debug)]
pub struct LogStore {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl LogStore {
    /// A log keeping the last `capacity` lines in memory and, with `path`, appending every line
    /// to that file with `rotation`.
    pub fn new(path: Option<PathBuf>, capacity: usize, rotation: Rotation) -> Self {
        Self {
            inner: Mutex::new(Inner {
                ring: VecDeque::new(),
                next_seq: 0,
                file: path.map(|p| RotatingFile::new(p, rotation)),
                primed: false,
                file_error: None,
                sender: None,
            }),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the ring inconsistent, so carry on.
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !inner.primed {
            inner.primed = true;
            self.prime(&mut inner);
        }
        inner
    }

    /// Refills the ring from the end of the existing log file, so the lines of an instance that
    /// has not run since the manager restarted are still there.
    fn prime(&self, inner: &mut Inner) {
        let Some(path) = inner.file.as_ref().map(|f| f.path().to_path_buf()) else { return };
        let Ok((text, modified)) = read_tail(&path) else { return };
        let mut lines: Vec<&str> = text.lines().collect();
        if text.len() as u64 >= PRIME_BYTES && !lines.is_empty() {
            lines.remove(0); // probably cut in the middle
        }
        let skip = lines.len().saturating_sub(self.capacity);
        for line in &lines[skip..] {
            let (stream, text) = match line.strip_prefix(MANAGER_PREFIX) {
                Some(rest) => (LogStream::Manager, rest),
                None => (LogStream::Stdout, *line),
            };
            let seq = inner.next_seq;
            inner.next_seq += 1;
            inner.ring.push_back(Arc::new(LogLine { seq, at: modified, stream, text: text.to_owned() }));
        }
    }

    /// Appends a line: to the ring, to the file, and to every follower. When the file stops
    /// (or starts again) taking lines, e.g. on a full disk, a line of the manager says so.
    pub fn push(&self, stream: LogStream, text: impl Into<String>) {
        self.push_all(stream, std::iter::once(text.into()));
    }

    /// Appends lines of one stream together, as [`push`](Self::push) does one: the file gets
    /// them in one write (a backend's output read in one chunk costs one system call, not one
    /// per line).
    ///
    /// ```
    /// use llamactl_core::logs::{LogStore, LogStream};
    /// let logs = LogStore::new(None, 100, Default::default());
    /// logs.push_all(LogStream::Stdout, ["one".to_owned(), "two".to_owned()]);
    /// let texts: Vec<String> = logs.tail(10).iter().map(|l| l.text.clone()).collect();
    /// assert_eq!(texts, ["one", "two"]);
    /// ```
    pub fn push_all(&self, stream: LogStream, lines: impl IntoIterator<Item = String>) {
        let lines: Vec<String> = lines
            .into_iter()
            .map(|mut text| {
                truncate_line(&mut text);
                text
            })
            .collect();
        if lines.is_empty() {
            return;
        }
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut notice = None;
        if let Some(file) = inner.file.as_mut() {
            let prefix = if stream == LogStream::Manager { MANAGER_PREFIX.as_bytes() } else { &[] };
            let mut bytes = Vec::with_capacity(lines.iter().map(|text| prefix.len() + text.len() + 1).sum());
            for text in &lines {
                bytes.extend_from_slice(prefix);
                bytes.extend_from_slice(text.as_bytes());
                bytes.push(b'\n');
            }
            match file.write_line(&bytes) {
                Ok(()) => {
                    if inner.file_error.take().is_some() {
                        notice = Some(format!("log file {} can be written again", file.path().display()));
                    }
                }
                Err(error) => {
                    if inner.file_error.is_none() {
                        tracing::warn!(path = %file.path().display(), %error, "cannot write log file; lines are kept in memory");
                        notice = Some(format!(
                            "cannot write log file {} ({error}); the last {} lines are kept in memory",
                            file.path().display(),
                            self.capacity
                        ));
                    }
                    inner.file_error = Some(error.to_string());
                }
            }
        }
        for text in lines {
            self.append(inner, stream, text);
        }
        if let Some(notice) = notice {
            self.append(inner, LogStream::Manager, notice);
        }
    }

    /// Adds a line to the ring and sends it to the followers.
    fn append(&self, inner: &mut Inner, stream: LogStream, text: String) {
        let line = Arc::new(LogLine { seq: inner.next_seq, at: Utc::now(), stream, text });
        inner.next_seq += 1;
        if inner.ring.len() == self.capacity {
            inner.ring.pop_front();
        }
        inner.ring.push_back(line.clone());
        if let Some(sender) = &inner.sender
            && sender.send(line).is_err()
        {
            // Every follower has gone.
            inner.sender = None;
        }
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<Arc<LogLine>> {
        let inner = self.lock();
        let skip = inner.ring.len().saturating_sub(n);
        inner.ring.iter().skip(skip).cloned().collect()
    }

    /// The last `n` lines and a receiver of every later line, with no gap and no duplicate
    /// between the two.
    pub fn follow(&self, n: usize) -> (Vec<Arc<LogLine>>, broadcast::Receiver<Arc<LogLine>>) {
        let mut inner = self.lock();
        let skip = inner.ring.len().saturating_sub(n);
        let recent = inner.ring.iter().skip(skip).cloned().collect();
        let receiver = match &inner.sender {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = broadcast::channel(FOLLOW_BUFFER);
                inner.sender = Some(sender);
                receiver
            }
        };
        drop(inner);
        (recent, receiver)
    }

    /// The log file, if there is one.
    pub fn file_path(&self) -> Option<PathBuf> {
        self.lock().file.as_ref().map(|f| f.path().to_path_buf())
    }

    /// The last error writing the log file, until a write succeeds again (e.g. a full disk).
    pub fn file_error(&self) -> Option<String> {
        // Without priming the ring: asked for every instance of a listing.
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).file_error.clone()
    }
}

fn read_tail(path: &Path) -> std::io::Result<(String, DateTime<Utc>)> {
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let modified = meta.modified().map(DateTime::<Utc>::from).unwrap_or_else(|_| Utc::now());
    file.seek(SeekFrom::Start(meta.len().saturating_sub(PRIME_BYTES)))?;
    let mut bytes = Vec::new();
    file.take(PRIME_BYTES).read_to_end(&mut bytes)?;
    Ok((String::from_utf8_lossy(&bytes).into_owned(), modified))
}

fn truncate_line(text: &mut String) {
    if text.len() > MAX_LINE_BYTES {
        let mut cut = MAX_LINE_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" [line truncated]");
    }
}

/// Splits a byte stream into log lines: on `\n`, dropping a trailing `\r`, replacing invalid
/// UTF-8; a line longer than [`MAX_LINE_BYTES`] keeps its start (and is cut when pushed).
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds `bytes`, calling `emit` with every line they complete.
    pub fn feed(&mut self, bytes: &[u8], mut emit: impl FnMut(String)) {
        let mut rest = bytes;
        while let Some(newline) = rest.iter().position(|b| *b == b'\n') {
            if self.pending.is_empty() {
                emit(Self::text(&rest[..newline]));
            } else {
                self.pending.extend_from_slice(&rest[..newline]);
                emit(Self::text(&self.pending));
                self.pending.clear();
            }
            rest = &rest[newline + 1..];
        }
        // Keep at most one line's worth; the excess of a very long line is dropped.
        let room = (MAX_LINE_BYTES + 1).saturating_sub(self.pending.len());
        self.pending.extend_from_slice(&rest[..rest.len().min(room)]);
    }

    /// Emits what is left (a last line without its newline).
    pub fn flush(&mut self, mut emit: impl FnMut(String)) {
        if !self.pending.is_empty() {
            emit(Self::text(&self.pending));
            self.pending.clear();
        }
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes.strip_suffix(b"\r").unwrap_or(bytes)).into_owned()
    }
}

/// Reads `reader` line by line into `logs` until end of file (see [`LineSplitter`]).
pub async fn pump_lines<R>(reader: R, stream: LogStream, logs: Arc<LogStore>)
where
    R: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut reader = reader;
    let mut lines = LineSplitter::default();
    let mut chunk = vec![0u8; 8192];
    loop {
        let read = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        lines.feed(&chunk[..read], |line| logs.push(stream, line));
    }
    lines.flush(|line| logs.push(stream, line));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_last_lines() {
        let logs = LogStore::new(None, 3, Rotation::default());
        for i in 0..5 {
            logs.push(LogStream::Stdout, format!("{i}"));
        }
        let texts: Vec<_> = logs.tail(10).iter().map(|l| l.text.clone()).collect();
        assert_eq!(texts, ["2", "3", "4"]);
        assert_eq!(logs.tail(1)[0].seq, 4);
    }

    #[test]
    fn follow_has_no_gap_and_no_duplicate() {
        let logs = Arc::new(LogStore::new(None, 1000, Rotation::default()));
        let writer = {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    logs.push(LogStream::Stdout, format!("{i}"));
                }
            })
        };
        std::thread::sleep(std::time::Duration::from_micros(200));
        let (recent, mut live) = logs.follow(1000);
        writer.join().unwrap();
        let mut seqs: Vec<u64> = recent.iter().map(|l| l.seq).collect();
        while let Ok(line) = live.try_recv() {
            seqs.push(line.seq);
        }
        assert_eq!(seqs, (0..500).collect::<Vec<_>>());
    }

    #[test]
    fn followers_come_and_go() {
        let logs = LogStore::new(None, 10, Rotation::default());
        logs.push(LogStream::Stdout, "before anyone follows");
        let (_, first) = logs.follow(10);
        drop(first);
        logs.push(LogStream::Stdout, "nobody listens");
        let (recent, mut second) = logs.follow(1);
        assert_eq!(recent[0].text, "nobody listens");
        logs.push(LogStream::Stdout, "heard");
        assert_eq!(second.try_recv().unwrap().text, "heard");
    }

    #[test]
    fn lines_reach_the_file_and_come_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let logs = LogStore::new(Some(path.clone()), 10, Rotation::default());
        logs.push(LogStream::Manager, "starting");
        logs.push(LogStream::Stdout, "hello");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[llamactl] starting\nhello\n");
        drop(logs);

        let again = LogStore::new(Some(path), 10, Rotation::default());
        let lines = again.tail(10);
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].stream, lines[0].text.as_str()), (LogStream::Manager, "starting"));
        assert_eq!((lines[1].stream, lines[1].text.as_str()), (LogStream::Stdout, "hello"));
    }

    #[test]
    fn lines_pushed_together_reach_the_file_in_order_with_their_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let logs = LogStore::new(Some(path.clone()), 10, Rotation::default());
        logs.push_all(LogStream::Stdout, ["a".to_owned(), "b".to_owned()]);
        logs.push_all(LogStream::Manager, ["m".to_owned()]);
        logs.push_all(LogStream::Stdout, Vec::new());
        let file = std::fs::read_to_string(&path).unwrap();
        assert_eq!(file, format!("a\nb\n{MANAGER_PREFIX}m\n"));
        let seqs: Vec<u64> = logs.tail(10).iter().map(|l| l.seq).collect();
        assert_eq!(seqs, [0, 1, 2], "one sequence number per line, none for an empty batch");
    }

    #[test]
    fn a_failing_file_is_reported_and_lines_stay_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let logs = LogStore::new(Some(blocker.join("x.log")), 10, Rotation::default());
        logs.push(LogStream::Stdout, "kept");
        let lines = logs.tail(2);
        assert_eq!(lines[0].text, "kept");
        assert_eq!(lines[1].stream, LogStream::Manager);
        assert!(lines[1].text.starts_with("cannot write log file"), "{}", lines[1].text);
        assert!(logs.file_error().is_some());
        logs.push(LogStream::Stdout, "still kept, reported once");
        assert_eq!(logs.tail(1)[0].text, "still kept, reported once");
    }

    #[tokio::test]
    async fn pump_splits_lines_and_handles_odd_input() {
        let logs = Arc::new(LogStore::new(None, 100, Rotation::default()));
        let long = "x".repeat(MAX_LINE_BYTES + 100);
        let input = format!("one\r\ntwo\n{long}\nbad \u{fffd}\nlast-without-newline").into_bytes();
        let mut input = input;
        input.extend_from_slice(b"\xff");
        pump_lines(&input[..], LogStream::Stderr, logs.clone()).await;
        let lines = logs.tail(100);
        let texts: Vec<_> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts[0], "one");
        assert_eq!(texts[1], "two");
        assert!(texts[2].ends_with("[line truncated]") && texts[2].len() < MAX_LINE_BYTES + 50);
        assert_eq!(texts[3], "bad \u{fffd}");
        assert_eq!(texts[4], "last-without-newline\u{fffd}");
        assert!(lines.iter().all(|l| l.stream == LogStream::Stderr));
    }
}
