//! Hosts a llamactl manager in its own process, so that tests can kill it with SIGKILL and
//! check what a new manager finds on the same database.
//!
//! ```text
//! llamactl-test-manager --db PATH --ports 20000-20099 [--logs DIR] [--llama-server PATH]
//!     --start NAME [--start NAME ...]
//! ```
//! Prints `ready {"name": pid or container id, ...}` once every named instance runs, then waits
//! to be killed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use llamactl_core::{InstanceStatus, Manager, ManagerConfig, SqliteDatabase};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut db_path = None;
    let mut config = ManagerConfig::default();
    let mut start = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--db" => db_path = Some(args.next().context("--db needs a path")?),
            "--logs" => config.logs_dir = Some(args.next().context("--logs needs a path")?.into()),
            "--ports" => {
                let range = args.next().context("--ports needs a range")?;
                let (a, b) = range.split_once('-').context("--ports: use START-END")?;
                config.port_range = a.parse()?..=b.parse()?;
            }
            "--llama-server" => {
                config.backends.llama_cpp.command = Some(args.next().context("--llama-server needs a path")?)
            }
            "--start" => start.push(args.next().context("--start needs a name")?),
            other => bail!("unknown argument {other}"),
        }
    }
    let db = Arc::new(SqliteDatabase::open(db_path.context("--db is required")?).await?);
    let manager = Manager::open(config, db).await?;
    let mut pids = serde_json::Map::new();
    for name in &start {
        manager.start(name).await?;
        let mut state = manager.subscribe(name)?;
        let ready = tokio::time::timeout(
            Duration::from_secs(60),
            state.wait_for(|s| s.runtime.status == InstanceStatus::Running),
        )
        .await
        .context("instance not ready in time")??
        .clone();
        // A local process by its pid; a container by its id.
        let id = match (ready.runtime.pid, ready.runtime.container_id) {
            (Some(pid), _) => pid.into(),
            (None, Some(container)) => container.into(),
            (None, None) => serde_json::Value::Null,
        };
        pids.insert(name.clone(), id);
    }
    println!("ready {}", serde_json::Value::Object(pids));
    std::future::pending::<()>().await;
    Ok(())
}
