//! Embedding llamactl-core in another Rust service: open a SQLite store, create a llama.cpp
//! instance, get it ready on demand, send it a request, and shut down.
//!
//! ```text
//! cargo run -p llamactl-core --example embed_manager -- /path/to/model.gguf [/path/to/llama-server]
//! ```
//! (`scripts/backends/provision.sh` builds a llama-server and a tiny model to try it with.)

use std::sync::Arc;
use std::time::Duration;

use llamactl_core::{Database, InstanceOptions, Manager, ManagerConfig, SqliteDatabase};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args.next().ok_or("usage: embed_manager MODEL.gguf [LLAMA_SERVER]")?;
    let mut config = ManagerConfig::default();
    config.backends.llama_cpp.command = args.next();

    let dir = std::env::temp_dir().join(format!("llamactl-example-{}", std::process::id()));
    let db = Arc::new(SqliteDatabase::open(dir.join("llamactl.db")).await?);
    let manager = Manager::open(config, db.clone()).await?;

    let options = InstanceOptions::from_json_value(&serde_json::json!({
        "backend_type": "llama_cpp",
        "backend_options": {"model": model, "ctx_size": 512, "gpu_layers": 0},
        "idle_timeout": "30s"
    }))?;
    manager.create("example".parse()?, options).await?;

    // Starts the instance (once, however many callers ask) and waits until it answers.
    let lease = manager.ensure_ready("example", Duration::from_secs(120)).await?;
    println!("ready at {}", lease.base_url());
    let health = tokio::net::TcpStream::connect((lease.listen().connect_host(), lease.listen().port)).await;
    println!("backend accepts connections: {}", health.is_ok());
    drop(lease); // the request is over; idle time counts from here

    for event in manager.events("example", Default::default()).await? {
        println!("{} {} -> {} ({})", event.at.format("%H:%M:%S%.3f"), event.from, event.to, event.reason);
    }
    manager.shutdown().await;
    db.close().await;
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}
