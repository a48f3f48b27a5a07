//! A generic reverse proxy to compare llamactl's proxy with: nginx (Debian's package), run as a
//! process of the benchmark's own on a loopback port, with a configuration generated in a
//! temporary folder (its pid file, error log and temporary files are there too).
//!
//! The configuration is what a keep-alive reverse proxy in front of one backend is usually given:
//! one worker per core, an `upstream` keeping up to 64 idle connections (HTTP/1.1, `Connection`
//! cleared), no access log, and no per-connection request cap on either side (llamactl has none,
//! so nginx's default of 1,000 requests per connection would cost it reconnections llamactl does
//! not make).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx; stopped when dropped.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    dir: tempfile::TempDir,
}

/// The nginx program: `LLAMACTL_BENCH_NGINX`, else `nginx` on the `PATH` or in `/usr/sbin`.
pub fn program() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("LLAMACTL_BENCH_NGINX") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
}

/// The configuration: `workers` worker processes forwarding everything from 127.0.0.1:`port`
/// to 127.0.0.1:`upstream`; files under `dir`. As root the workers run as `nobody`.
pub fn config(dir: &Path, port: u16, upstream: u16, workers: usize, as_root: bool) -> String {
    let d = dir.display();
    let user = if as_root { "user nobody nogroup;\n" } else { "" };
    format!(
        "{user}worker_processes {workers};
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 100000000;
    upstream backend {{
        server 127.0.0.1:{upstream};
        keepalive 64;
        keepalive_requests 100000000;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
    }}
}}
"
    )
}

/// This process's effective user id (the owner of `/proc/self`).
fn effective_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

impl Nginx {
    /// Starts nginx in front of 127.0.0.1:`upstream` with one worker per core and waits until it
    /// accepts connections. `None` (and a line on stderr saying why) if it cannot be run.
    pub fn start(upstream: u16) -> Option<Self> {
        let Some(program) = program() else {
            eprintln!("nginx not found (install the Debian package nginx-light; scripts/bench.sh does)");
            return None;
        };
        let dir = tempfile::tempdir().ok()?;
        let as_root = effective_uid() == Some(0);
        if as_root {
            // The workers (nobody) read nothing here, but nginx checks its temporary folders.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).ok()?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        let file = dir.path().join("nginx.conf");
        std::fs::write(&file, config(dir.path(), port, upstream, workers, as_root)).ok()?;
        let child = Command::new(&program)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut nginx = match child {
            Ok(child) => Self { child, port, dir },
            Err(error) => {
                eprintln!("cannot run {}: {error}", program.display());
                return None;
            }
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !crate::port_open(port) {
            if Instant::now() > deadline || nginx.child.try_wait().ok().flatten().is_some() {
                let log = std::fs::read_to_string(nginx.dir.path().join("error.log")).unwrap_or_default();
                eprintln!("nginx did not start: {}", log.trim());
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(nginx)
    }

    /// The master's pid and its workers'.
    pub fn pids(&self) -> Vec<u32> {
        let master = self.child.id();
        let mut pids = vec![master];
        if let Ok(all) = procfs::process::all_processes() {
            pids.extend(
                all.filter_map(Result::ok)
                    .filter_map(|p| p.stat().ok())
                    .filter(|s| u32::try_from(s.ppid).ok() == Some(master))
                    .filter_map(|s| u32::try_from(s.pid).ok()),
            );
        }
        pids
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: nginx's fast stop (the workers exit with the master).
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
