//! `llamactl top`: a live table of the instances — status, requests in flight and queued,
//! request and token rates over the last interval, memory — redrawn in place on a terminal.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use chrono::Utc;
use llamactl_api::activity::{ActivityGroupBy, ActivityStatsResponse, InflightRequest, InflightState};
use llamactl_api::resources::{MetricsWindow, SystemMetrics};
use llamactl_api::types::InstanceResponse;
use llamactl_api::{Client, ClientError};
use serde::Serialize;

use crate::cli::Output;
use crate::error::{CliError, context};
use crate::output::{Printer, out, show};

/// One instance's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopRow {
    /// Instance name.
    pub name: String,
    /// Its status.
    pub status: String,
    /// Requests being received, forwarded or streamed.
    pub in_flight: usize,
    /// Requests waiting for it to start.
    pub queued: usize,
    /// Requests that ended in the last interval, per second.
    pub requests_per_second: f64,
    /// Tokens generated in the last interval, per second.
    pub tokens_per_second: f64,
    /// Its latest memory sample, in bytes (none: not sampled, or no resource history).
    pub memory_bytes: Option<u64>,
}

/// The rows of one refresh, one per instance in the order listed, from the four answers: the
/// instances, the requests in flight, the statistics by instance of the last `interval`, and
/// each instance's latest memory.
pub fn rows(
    instances: &[InstanceResponse],
    inflight: &[InflightRequest],
    stats: &ActivityStatsResponse,
    memory: &HashMap<String, u64>,
    interval: Duration,
) -> Vec<TopRow> {
    let seconds = interval.as_secs_f64().max(f64::EPSILON);
    instances
        .iter()
        .map(|instance| {
            let mine = || inflight.iter().filter(|r| r.instance.as_deref() == Some(instance.name.as_str()));
            let queued = mine().filter(|r| r.state == InflightState::Queued).count();
            let group = stats.groups.iter().find(|g| g.group.as_deref() == Some(instance.name.as_str()));
            TopRow {
                name: instance.name.clone(),
                status: instance.status.as_str().to_owned(),
                in_flight: mine().count() - queued,
                queued,
                requests_per_second: group.map_or(0.0, |g| g.requests as f64 / seconds),
                tokens_per_second: group.map_or(0.0, |g| g.completion_tokens as f64 / seconds),
                memory_bytes: memory.get(&instance.name).copied(),
            }
        })
        .collect()
}

/// Each instance's resident memory in the last tick of `GET /api/v1/system/metrics`
/// (instances without a value are left out).
pub fn latest_memory(metrics: &SystemMetrics) -> HashMap<String, u64> {
    let Some(latest) = &metrics.latest else { return HashMap::new() };
    latest.instances.iter().filter_map(|(name, point)| Some((name.clone(), point.rss_bytes?))).collect()
}

/// Bytes for people: `512 MiB`, `1.5 GiB`, `-` for none.
pub fn bytes(value: Option<u64>) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    match value {
        None => "-".into(),
        Some(b) if (b as f64) < MIB => format!("{} KiB", b / 1024),
        Some(b) if (b as f64) < 1024.0 * MIB => format!("{:.0} MiB", b as f64 / MIB),
        Some(b) => format!("{:.1} GiB", b as f64 / MIB / 1024.0),
    }
}

/// A rate: `0`, `0.5`, `12.3`.
pub fn rate(per_second: f64) -> String {
    if per_second == 0.0 { "0".into() } else { format!("{per_second:.1}") }
}

/// The table of `rows`.
fn table(printer: &Printer, rows: &[TopRow]) -> comfy_table::Table {
    let mut table = printer.table(&["NAME", "STATUS", "IN FLIGHT", "QUEUED", "REQ/S", "TOK/S", "MEMORY"], 0);
    for row in rows {
        table.add_row(vec![
            comfy_table::Cell::new(&row.name),
            printer.status(&row.status),
            comfy_table::Cell::new(row.in_flight),
            comfy_table::Cell::new(row.queued),
            comfy_table::Cell::new(rate(row.requests_per_second)),
            comfy_table::Cell::new(rate(row.tokens_per_second)),
            comfy_table::Cell::new(bytes(row.memory_bytes)),
        ]);
    }
    table
}

/// One screen: cursor home, each line cleared to its end after it is written, the rest of the
/// screen cleared below. Written at once, the old table is overwritten without a blank moment.
pub fn frame(lines: &[String]) -> String {
    let mut screen = String::from("\x1b[H");
    for line in lines {
        screen.push_str(line);
        screen.push_str("\x1b[K\n");
    }
    screen.push_str("\x1b[J");
    screen
}

/// The alternate screen with the cursor hidden, and back.
const ENTER: &str = "\x1b[?1049h\x1b[?25l";
const LEAVE: &str = "\x1b[?25h\x1b[?1049l";

/// The four answers of one refresh. Memory is optional: without the resource history (an
/// older server, or the route's 404) or on its failure, memory shows `-`.
async fn fetch(client: &Client, interval: Duration) -> Result<Vec<TopRow>, CliError> {
    let since = Utc::now() - chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::seconds(1));
    let (instances, inflight, stats, metrics) = futures::join!(
        client.list_instances(),
        client.inflight(),
        client.activity_stats(Some(since), ActivityGroupBy::Instance),
        client.system_metrics(MetricsWindow::Minutes15),
    );
    let instances = instances.map_err(context("cannot list instances"))?;
    let inflight = inflight.map_err(context("cannot list the requests in flight"))?;
    let stats = stats.map_err(context("cannot read the request statistics"))?;
    let memory = metrics.map(|m| latest_memory(&m.value)).unwrap_or_else(|_: ClientError| HashMap::new());
    Ok(rows(&instances, &inflight, &stats, &memory, interval))
}

/// `llamactl top`.
pub async fn run(client: &Client, printer: &Printer, interval: u64, once: bool) -> Result<(), CliError> {
    let interval = Duration::from_secs(interval);
    let live = !once && printer.format == Output::Table && printer.tty;
    if !live {
        let rows = fetch(client, interval).await?;
        let raw = serde_json::to_value(&rows).map_err(|e| CliError::Other(e.to_string()))?;
        return printer.print(&raw, |p| {
            if p.quiet {
                rows.iter().for_each(|r| out(&r.name));
            } else if rows.is_empty() {
                out("no instances");
            } else {
                show(&table(p, &rows));
            }
        });
    }
    write_screen(ENTER);
    let result = refresh_until_interrupted(client, printer, interval).await;
    write_screen(LEAVE);
    result
}

async fn refresh_until_interrupted(client: &Client, printer: &Printer, interval: Duration) -> Result<(), CliError> {
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Ctrl-C is heard while waiting for the next tick and while the server answers.
        let refresh = async {
            ticks.tick().await;
            fetch(client, interval).await
        };
        let refreshed = tokio::select! {
            _ = &mut interrupted => return Ok(()),
            refreshed = refresh => refreshed,
        };
        let title = format!(
            "llamactl top - {} - every {} s - {}",
            client.base_url(),
            interval.as_secs(),
            Utc::now().format("%H:%M:%S")
        );
        let mut lines = vec![title, String::new()];
        // A failed refresh is shown in place of the table; the next one may succeed (a server
        // that restarts).
        match refreshed {
            Ok(rows) if rows.is_empty() => lines.push("no instances".into()),
            Ok(rows) => lines.extend(table(printer, &rows).to_string().lines().map(|l| l.trim_end().to_owned())),
            Err(error) => lines.push(format!("error: {error}")),
        }
        write_screen(&frame(&lines));
    }
}

/// Writes `text` to standard output in one write, without a newline.
fn write_screen(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

#[cfg(test)]
mod tests;
