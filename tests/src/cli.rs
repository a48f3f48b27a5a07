//! The `llamactl` command, run as a separate process the way a person or a script runs it:
//! a clean environment (no inherited `LLAMACTL_*`, a `HOME` of its own), output captured.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The `llamactl` binary.
pub fn cli_binary() -> PathBuf {
    crate::workspace_binary("llamactl", "llamactl-cli")
}

/// What a run printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts the exit code, showing both outputs when it differs.
    #[track_caller]
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(self.code, Some(code), "exit code of llamactl\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// Asserts success and returns standard output.
    #[track_caller]
    pub fn ok(self) -> String {
        self.expect(0).stdout
    }

    /// Asserts a one-line error with this exit code and returns the line.
    #[track_caller]
    pub fn error(self, code: i32) -> String {
        let run = self.expect(code);
        assert_eq!(run.stderr.lines().count(), 1, "one line expected:\n{}", run.stderr);
        assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
        assert!(run.stdout.is_empty(), "nothing on stdout expected: {}", run.stdout);
        run.stderr.trim_end().to_owned()
    }
}

/// `llamactl` pointed at one server, with one key.
#[derive(Debug)]
pub struct Llamactl {
    server: String,
    key: Option<String>,
    home: tempfile::TempDir,
}

impl Llamactl {
    /// For the server at `server`, sending `key`.
    pub fn new(server: &str, key: Option<&str>) -> Self {
        Self { server: server.to_owned(), key: key.map(str::to_owned), home: tempfile::tempdir().unwrap() }
    }

    /// The `HOME` its runs see (its configuration file is `<home>/.config/llamactl/cli.yaml`).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `program` with a clean environment: only `HOME`, `PATH`, the server and the key.
    fn clean(&self, program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(program);
        command
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LLAMACTL_SERVER", &self.server)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(key) = &self.key {
            command.env("LLAMACTL_API_KEY", key);
        }
        command
    }

    /// `llamactl ARGS...`, ready to spawn.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = self.clean(cli_binary());
        command.args(args);
        command
    }

    /// Runs `llamactl ARGS...` on a pseudo-terminal `columns` wide (util-linux `script`), as a
    /// person at a terminal would. `stdout` holds everything the terminal showed, escape codes
    /// included, with `\r\n` turned into `\n`.
    pub async fn run_on_terminal(&self, columns: u16, args: &[&str]) -> Run {
        let quote = |word: &str| format!("'{}'", word.replace('\'', r"'\''"));
        let mut line = format!("stty cols {columns} rows 40; exec {}", quote(&cli_binary().display().to_string()));
        for arg in args {
            line.push(' ');
            line.push_str(&quote(arg));
        }
        let mut command = self.clean("script");
        command.args(["--quiet", "--return", "--echo", "never", "--command", &line, "/dev/null"]).env("TERM", "xterm");
        let output = command.output().await.unwrap();
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n"),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    /// Runs `llamactl ARGS...` to its end.
    pub async fn run(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().await.unwrap();
        Run {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }
}
