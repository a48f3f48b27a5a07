//! Supervision scale: 200 running test backends supervised by one manager (this process, the
//! library on a SQLite file, logs to files as the server does).
//!
//! - the manager's CPU while the 200 are idle (its own process time over 10 s, backends excluded)
//!   and its resident memory;
//! - exit detection lag (SIGKILL of a backend to the manager's state leaving `running`) and
//!   start-to-running of one more instance, with the 200 running against the same with none
//!   running (the baseline, measured first in the same run).
//!
//! Prints figures; asserts nothing about time. Run: `scripts/bench.sh supervision`
//! (LLAMACTL_BENCH_BACKENDS changes the count, default 200).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use llamactl_core::{InstanceStatus, Manager};
use llamactl_tests::{open_manager, percentile, resident_mib, test_backend_options, test_config};

const ROUNDS: usize = 10;

fn count() -> usize {
    std::env::var("LLAMACTL_BENCH_BACKENDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
}

/// This process's user + system CPU time.
fn cpu_time() -> Duration {
    let stat = procfs::process::Process::myself().unwrap().stat().unwrap();
    Duration::from_secs_f64((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    percentile(&samples, 0.5)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn wait_for(manager: &Manager, name: &str, done: impl Fn(InstanceStatus) -> bool) {
    let mut state = manager.subscribe(name).unwrap();
    tokio::time::timeout(Duration::from_secs(60), state.wait_for(|s| done(s.runtime.status)))
        .await
        .expect("in time")
        .unwrap();
}

/// Median exit detection lag and start-to-running of the instance `probe`.
async fn lags(manager: &Manager, probe: &str) -> (Duration, Duration) {
    let (mut exits, mut starts) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let began = Instant::now();
        manager.start(probe).await.unwrap();
        wait_for(manager, probe, |s| s == InstanceStatus::Running).await;
        starts.push(began.elapsed());
        let pid = manager.get(probe).unwrap().state.runtime.pid.unwrap();
        let killed = Instant::now();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
        wait_for(manager, probe, |s| s != InstanceStatus::Running).await;
        exits.push(killed.elapsed());
        manager.stop(probe).await.unwrap();
    }
    (median(exits), median(starts))
}

#[tokio::main]
async fn main() {
    llamactl_tests::install_tls_provider();
    let total = count();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    // Beside the tests' port blocks (21000-30999), below the ephemeral range.
    config.port_range = 31_000..=31_999;
    let manager = open_manager(dir.path(), config).await;
    let mut probe = test_backend_options(&["--ready-after-ms", "20"]);
    probe.auto_restart = Some(false);
    manager.create("probe".parse().unwrap(), probe).await.unwrap();
    let (exit_alone, start_alone) = lags(&manager, "probe").await;

    let began = Instant::now();
    for i in 0..total {
        let name = format!("b{i:03}");
        manager.create(name.parse().unwrap(), test_backend_options(&[])).await.unwrap();
        manager.start(&name).await.unwrap();
    }
    for i in 0..total {
        wait_for(&manager, &format!("b{i:03}"), |s| s == InstanceStatus::Running).await;
    }
    let all_running = began.elapsed();

    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu_before, idle_began) = (cpu_time(), Instant::now());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle_cpu = (cpu_time() - cpu_before).as_secs_f64() / idle_began.elapsed().as_secs_f64() * 100.0;
    let rss = resident_mib(std::process::id());

    let (exit_loaded, start_loaded) = lags(&manager, "probe").await;
    let running = manager.list().iter().filter(|i| i.status() == InstanceStatus::Running).count();
    manager.shutdown().await;

    println!("== supervision: {total} test backends running under one manager (library, SQLite file, logs to files)");
    println!("started and running in {:.1} s; {running} running at the end", all_running.as_secs_f64());
    println!("manager CPU while they idle: {idle_cpu:.2} % of a core   [target < 2 %]; resident memory {rss:.1} MiB");
    println!(
        "exit detection lag (SIGKILL to not running), median: {:.1} ms with {total} running, {:.1} ms alone   ratio {:.2}",
        ms(exit_loaded),
        ms(exit_alone),
        exit_loaded.as_secs_f64() / exit_alone.as_secs_f64()
    );
    println!(
        "start to running (backend ready after 20 ms), median: {:.1} ms with {total} running, {:.1} ms alone   ratio {:.2}",
        ms(start_loaded),
        ms(start_alone),
        start_loaded.as_secs_f64() / start_alone.as_secs_f64()
    );
}
