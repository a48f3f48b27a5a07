//! `llamactl activity`: the latest request records as a table (or the API's JSON), then, with
//! `-f`, each request as it ends.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use llamactl_api::activity::{ActivityFilter, ActivityRecord};
use llamactl_api::{Answer, Client};
use serde_json::Value;

use crate::cli::{ActivityFlags, Output};
use crate::commands::instance::duration;
use crate::error::{CliError, context};
use crate::output::{Printer, out, time};

/// The columns of the table.
pub const HEADER: [&str; 12] =
    ["AGE", "TIME", "INSTANCE", "MODEL", "KEY", "STATUS", "OUTCOME", "DURATION", "TTFB", "IN", "OUT", "TOK/S"];

/// The narrowest each column is, so that followed rows line up with the first ones in most
/// cases (a wider value pushes the rest of its row).
const MIN_WIDTHS: [usize; 12] = [8, 20, 8, 5, 3, 6, 9, 8, 6, 4, 4, 5];

/// What the flags ask the server for.
pub fn filter(flags: &ActivityFlags) -> ActivityFilter {
    ActivityFilter {
        limit: Some(flags.limit),
        instance: flags.instance.clone(),
        key: flags.key.clone(),
        status: flags.status,
        ..ActivityFilter::default()
    }
}

/// A duration in milliseconds: `0.4 ms`, `46 ms`, `2.3 s`, `-` for none.
pub fn millis(ms: Option<f64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 10.0 => format!("{:.1} ms", ms.max(0.0)),
        Some(ms) if ms < 1000.0 => format!("{ms:.0} ms"),
        Some(ms) => format!("{:.1} s", ms / 1000.0),
    }
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

/// One record's cells, in the order of [`HEADER`]; its age is taken at `now`.
pub fn cells(record: &ActivityRecord, now: DateTime<Utc>) -> Vec<String> {
    vec![
        format!("{} ago", duration(now - record.at)),
        time(Some(record.at)),
        or_dash(record.instance.as_deref()),
        or_dash(record.model.as_deref()),
        or_dash(record.key_name.as_deref()),
        record.status.to_string(),
        record.outcome.as_str().to_owned(),
        millis(Some(record.duration_ms)),
        millis(record.ttfb_ms),
        or_dash(record.prompt_tokens),
        or_dash(record.completion_tokens),
        record.generation_tps.map_or_else(|| "-".into(), |tps| format!("{tps:.1}")),
    ]
}

/// Each column's width: its minimum, or its widest cell (header included).
pub fn widths(rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = HEADER.iter().zip(MIN_WIDTHS).map(|(h, min)| h.len().max(min)).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    widths
}

/// One line of the table: the cells padded to `widths`, two spaces apart, no trailing space.
pub fn line(cells: &[String], widths: &[usize]) -> String {
    let padded: Vec<String> = cells.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
    padded.join("  ").trim_end().to_owned()
}

/// The records of a page (newest first) in the order they are shown: oldest first, so that
/// the newest is at the bottom, where followed ones are added.
pub fn oldest_first(page: &[ActivityRecord]) -> Vec<&ActivityRecord> {
    page.iter().rev().collect()
}

/// A record from the stream that is shown: one that meets the filter and was not on the page
/// already (a request that ended while the page was read is in both).
pub fn is_new(record: &ActivityRecord, filter: &ActivityFilter, shown: &HashSet<i64>) -> bool {
    filter.matches(record) && !shown.contains(&record.id)
}

/// Prints one JSON value as one line, or a YAML document.
fn print_record(printer: &Printer, raw: &Value) -> Result<(), CliError> {
    match printer.format {
        Output::Yaml => {
            let text = serde_norway::to_string(raw).map_err(|e| CliError::Other(e.to_string()))?;
            out(&format!("---\n{}", text.trim_end()));
        }
        _ => out(&serde_json::to_string(raw).map_err(|e| CliError::Other(e.to_string()))?),
    }
    Ok(())
}

/// `llamactl activity`.
pub async fn run(client: &Client, printer: &Printer, flags: &ActivityFlags) -> Result<(), CliError> {
    let what = "cannot read the request activity";
    let filter = filter(flags);
    // Subscribed before the page is read: a request that ends in between is in one of them.
    let stream = if flags.follow {
        Some(client.activity_events().await.map_err(context("cannot follow the request activity"))?)
    } else {
        None
    };
    let page = client.activity(&filter).await.map_err(context(what))?;
    let records = oldest_first(&page.items);
    let rows: Vec<Vec<String>> = records.iter().map(|r| cells(r, Utc::now())).collect();
    let widths = widths(&rows);
    let raw_items = page.raw["items"].as_array().cloned().unwrap_or_default();
    match (printer.format, &stream) {
        (Output::Table, _) if printer.quiet => records.iter().for_each(|r| out(&r.id.to_string())),
        (Output::Table, _) => {
            if records.is_empty() && !flags.follow {
                out("no requests recorded (yet)");
            } else {
                out(&printer_header(printer, &widths));
                rows.iter().for_each(|row| out(&line(row, &widths)));
            }
        }
        // Following, machine output is one record per line (JSON Lines), oldest first.
        (_, Some(_)) => {
            for raw in raw_items.iter().rev() {
                print_record(printer, raw)?;
            }
        }
        (_, None) => printer.print(&page.raw, |_| {})?,
    }
    let Some(stream) = stream else { return Ok(()) };
    let shown: HashSet<i64> = page.items.iter().map(|r| r.id).collect();
    follow(printer, &filter, &shown, &widths, stream).await
}

/// The header line, bold on a colour terminal.
fn printer_header(printer: &Printer, widths: &[usize]) -> String {
    let header: Vec<String> = HEADER.iter().map(|h| (*h).to_owned()).collect();
    let text = line(&header, widths);
    if printer.color { format!("\x1b[1m{text}\x1b[0m") } else { text }
}

async fn follow(
    printer: &Printer,
    filter: &ActivityFilter,
    shown: &HashSet<i64>,
    widths: &[usize],
    stream: impl futures::Stream<Item = Result<Answer<ActivityRecord>, llamactl_api::ClientError>>,
) -> Result<(), CliError> {
    // One listener for the whole run: a Ctrl-C between two records must not be missed.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    tokio::pin!(stream);
    loop {
        tokio::select! {
            _ = &mut interrupted => return Ok(()),
            item = stream.next() => match item {
                Some(Ok(record)) if is_new(&record, filter, shown) => match printer.format {
                    Output::Table if printer.quiet => out(&record.id.to_string()),
                    Output::Table => out(&line(&cells(&record, Utc::now()), widths)),
                    _ => print_record(printer, &record.raw)?,
                },
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(context("cannot follow the request activity")(error)),
                None => {
                    if !printer.quiet {
                        eprintln!("the server closed the event stream (did it stop?)");
                    }
                    return Ok(());
                }
            },
        }
    }
}

#[cfg(test)]
mod tests;
