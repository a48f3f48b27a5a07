//! `llamactl models`, `llamactl status` and `llamactl completion`.

use std::collections::BTreeMap;

use clap::CommandFactory;
use llamactl_api::Client;
use llamactl_api::types::InstanceStatus;
use serde_json::{Value, json};

use crate::cli::Cli;
use crate::error::{CliError, context};
use crate::output::{Printer, out, show, text};

/// `llamactl models`: what `GET /v1/models` offers.
pub async fn models(client: &Client, printer: &Printer) -> Result<(), CliError> {
    let models = client.models().await.map_err(context("cannot list models"))?;
    printer.print(&models.raw, |p| {
        if p.quiet {
            models.data.iter().for_each(|m| out(&m.id));
            return;
        }
        if models.data.is_empty() {
            out("no models (the endpoint offers the instances this key may use)");
            return;
        }
        let mut table = p.table(&["MODEL", "STATUS", "OWNED BY"], 0);
        for model in &models.data {
            table.add_row(vec![
                comfy_table::Cell::new(&model.id),
                p.status(model.status.as_str()),
                model.owned_by.as_str().into(),
            ]);
        }
        show(&table);
    })
}

/// `llamactl status`: the server's version, its instances counted by status, and its limits.
pub async fn status(client: &Client, printer: &Printer) -> Result<(), CliError> {
    let version = client.version().await.map_err(context("cannot read the server's version"))?;
    let instances = client.list_instances().await.map_err(context("cannot list instances"))?;
    let config = client.config().await.map_err(context("cannot read the server's configuration"))?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for instance in instances.iter() {
        *counts.entry(instance.status.as_str()).or_default() += 1;
    }
    let limits = &config.raw["instances"];
    let raw = json!({
        "server": client.base_url(),
        "version": version,
        "instances": {"total": instances.len(), "by_status": counts},
        "limits": {
            "max_instances": limits["max_instances"],
            "max_running_instances": limits["max_running_instances"],
            "enable_lru_eviction": limits["enable_lru_eviction"],
            "port_range": limits["port_range"],
        },
    });
    printer.print(&raw, |p| {
        let by_status = if counts.is_empty() {
            String::new()
        } else {
            let parts: Vec<String> = counts.iter().map(|(status, n)| format!("{n} {status}")).collect();
            format!(" ({})", parts.join(", "))
        };
        let limit = |value: &Value| match value.as_i64() {
            Some(n) if n <= 0 => "unlimited".to_owned(),
            _ => text(value),
        };
        let running = counts.get(InstanceStatus::Running.as_str()).copied().unwrap_or(0);
        p.fields(&[
            ("Server", format!("{} ({version})", client.base_url())),
            ("Instances", format!("{}{by_status}", instances.len())),
            ("Running", format!("{running} of {}", limit(&limits["max_running_instances"]))),
            ("Max instances", limit(&limits["max_instances"])),
            ("LRU eviction", if limits["enable_lru_eviction"] == true { "on".into() } else { "off".into() }),
            (
                "Ports",
                match limits["port_range"].as_array().map(Vec::as_slice) {
                    Some([low, high]) => format!("{low}-{high}"),
                    _ => "-".into(),
                },
            ),
        ]);
    })
}

/// `llamactl completion SHELL`: the shell's completion script on standard output.
pub fn completion(shell: clap_complete::Shell) {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "llamactl", &mut script);
    out(String::from_utf8_lossy(&script).trim_end());
}
