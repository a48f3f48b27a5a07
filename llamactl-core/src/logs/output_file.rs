//! A backend's output written to a file instead of a pipe, so that the backend can outlive the
//! manager: the manager follows the file into the instance's log, and records how far it read
//! (`<file>.offset`) so that the next manager goes on from there.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{LineSplitter, LogStore, LogStream};

/// A fully read output file larger than this is emptied (the backend appends, so it goes on
/// writing at the new end).
const TRUNCATE_AT: u64 = 8 * 1024 * 1024;
/// Shortest and longest pause between reads: short while output flows, longer while it does not.
/// The longest bounds how late the first line after a quiet spell shows; at 1 s, 200 idle
/// backends cost the manager 1.2 % of a core (2.0 % at 400 ms; `scripts/bench.sh supervision`).
const POLL_MIN: Duration = Duration::from_millis(25);
const POLL_MAX: Duration = Duration::from_millis(1000);
/// How often the read offset is recorded while output flows.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// `<output>.offset`, where the read offset is recorded.
pub fn offset_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".offset");
    output.with_file_name(name)
}

/// The recorded read offset of `output` (0 if none).
pub fn read_offset(output: &Path) -> u64 {
    std::fs::read_to_string(offset_path(output)).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

fn save_offset(output: &Path, offset: u64) {
    if let Err(error) = std::fs::write(offset_path(output), offset.to_string()) {
        tracing::warn!(file = %output.display(), %error, "cannot record how far the output was read");
    }
}

/// Opens (creating it) the file a backend appends its output to.
pub fn open_for_backend(output: &Path) -> std::io::Result<File> {
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(output)
}

/// Reads what `file` holds from `offset` into `lines`; returns the new offset.
fn read_from(file: &mut File, offset: u64, lines: &mut LineSplitter, logs: &LogStore) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    // Emptied (by an earlier manager's truncation): start over.
    let mut offset = if len < offset { 0 } else { offset };
    if len == offset {
        return Ok(offset);
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut chunk)?;
        if read == 0 {
            break;
        }
        offset += read as u64;
        // One write to the log file per chunk read, not one per line.
        let mut batch = Vec::new();
        lines.feed(&chunk[..read], |line| batch.push(line));
        logs.push_all(LogStream::Stdout, batch);
    }
    Ok(offset)
}

/// Follows `output` from `offset` into `logs` until `stop` is cancelled; then reads what is
/// left, records the offset and returns.
pub async fn follow_output(output: PathBuf, offset: u64, logs: Arc<LogStore>, stop: CancellationToken) {
    let mut file = match File::open(&output) {
        Ok(file) => file,
        Err(error) => {
            logs.push(LogStream::Manager, format!("cannot read the backend's output {}: {error}", output.display()));
            return;
        }
    };
    let mut lines = LineSplitter::default();
    let mut offset = offset;
    let mut saved = offset;
    let mut saved_at = Instant::now();
    let mut pause = POLL_MIN;
    loop {
        let before = offset;
        match read_from(&mut file, offset, &mut lines, &logs) {
            Ok(next) => offset = next,
            Err(error) => tracing::warn!(file = %output.display(), %error, "cannot read the backend's output"),
        }
        if offset != saved && (saved_at.elapsed() >= SAVE_EVERY || offset == before) {
            save_offset(&output, offset);
            (saved, saved_at) = (offset, Instant::now());
        }
        if offset == before && offset > TRUNCATE_AT {
            // All read and nothing new: empty the file so it cannot grow without bound.
            if OpenOptions::new().write(true).open(&output).and_then(|f| f.set_len(0)).is_ok() {
                offset = 0;
                save_offset(&output, 0);
                saved = 0;
            }
        }
        pause = if offset == before { (pause * 2).min(POLL_MAX) } else { POLL_MIN };
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
    if let Ok(next) = read_from(&mut file, offset, &mut lines, &logs) {
        offset = next;
    }
    lines.flush(|line| logs.push(LogStream::Stdout, line));
    save_offset(&output, offset);
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::logs::Rotation;

    #[tokio::test]
    async fn lines_are_followed_and_the_offset_is_kept_for_the_next_reader() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("a.output");
        let mut writer = open_for_backend(&output).unwrap();
        writeln!(writer, "one\ntwo").unwrap();
        let logs = Arc::new(LogStore::new(None, 100, Rotation::default()));
        let stop = CancellationToken::new();
        let task = tokio::spawn(follow_output(output.clone(), 0, logs.clone(), stop.clone()));
        write!(writer, "three\r\nfou").unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        writeln!(writer, "r").unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.cancel();
        task.await.unwrap();
        let texts: Vec<String> = logs.tail(10).iter().map(|l| l.text.clone()).collect();
        assert_eq!(texts, ["one", "two", "three", "four"]);
        assert_eq!(read_offset(&output), std::fs::metadata(&output).unwrap().len());

        // A later reader goes on where this one stopped.
        writeln!(writer, "five").unwrap();
        let logs = Arc::new(LogStore::new(None, 100, Rotation::default()));
        let stop = CancellationToken::new();
        stop.cancel();
        follow_output(output.clone(), read_offset(&output), logs.clone(), stop).await;
        let texts: Vec<String> = logs.tail(10).iter().map(|l| l.text.clone()).collect();
        assert_eq!(texts, ["five"]);
    }

    #[test]
    fn a_truncated_file_is_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("b.output");
        std::fs::write(&output, "new\n").unwrap();
        let logs = LogStore::new(None, 100, Rotation::default());
        let mut file = File::open(&output).unwrap();
        let offset = read_from(&mut file, 1000, &mut LineSplitter::default(), &logs).unwrap();
        assert_eq!(offset, 4);
        assert_eq!(logs.tail(1)[0].text, "new");
        assert_eq!(offset_path(&output), dir.path().join("b.output.offset"));
    }
}
