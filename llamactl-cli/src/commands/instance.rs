//! `llamactl instance ...`: create, list, show, edit, start, stop, restart, delete, logs, events
//! (and, in `router_models.rs`, a router's models, load, unload).

use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use llamactl_api::types::{InstanceResponse, InstanceStatus, OptionsJson};
use llamactl_api::{Answer, Client, Lifecycle};
use serde_json::{Map, Value};

use crate::cli::{InstanceCommand, OptionFlags, Output, WaitFlags};
use crate::commands::editor::{self, Edited};
use crate::commands::{options, router_models, wait};
use crate::error::{CliError, context};
use crate::output::{Printer, out, show, text, time, unix_time};

/// Runs one instance command.
pub async fn run(client: &Client, printer: &Printer, command: InstanceCommand) -> Result<(), CliError> {
    match command {
        InstanceCommand::Create { name, options, start } => create(client, printer, &name, &options, start).await,
        InstanceCommand::List => list(client, printer).await,
        InstanceCommand::Show { name, effective } => show_one(client, printer, &name, effective).await,
        InstanceCommand::Edit { name, options } => edit(client, printer, &name, &options).await,
        InstanceCommand::Start { name, wait } => lifecycle(client, printer, &name, Lifecycle::Start, &wait).await,
        InstanceCommand::Stop { name } => {
            lifecycle(client, printer, &name, Lifecycle::Stop, &WaitFlags { wait: false, timeout: 0 }).await
        }
        InstanceCommand::Restart { name, wait } => lifecycle(client, printer, &name, Lifecycle::Restart, &wait).await,
        InstanceCommand::Delete { name } => delete(client, printer, &name).await,
        InstanceCommand::Logs { name, lines, follow } => logs(client, printer, &name, lines, follow).await,
        InstanceCommand::Events { name, limit } => events(client, printer, &name, limit).await,
        InstanceCommand::Models { name } => router_models::list(client, printer, &name).await,
        InstanceCommand::Load { name, model } => router_models::change(client, printer, &name, &model, true).await,
        InstanceCommand::Unload { name, model } => router_models::change(client, printer, &name, &model, false).await,
    }
}

/// The model an instance serves, as its options name it.
fn model(instance: &InstanceResponse) -> String {
    let Some(options) = instance.options.as_ref().map(|o| o.value()) else { return "-".into() };
    let backend = &options["backend_options"];
    ["model", "hf_repo", "model_url"]
        .iter()
        .map(|key| &backend[*key])
        .find(|v| v.is_string())
        .map_or_else(|| "-".into(), text)
}

/// `3h12m`, `5m03s`, `42s`.
pub fn duration(elapsed: chrono::Duration) -> String {
    let seconds = elapsed.num_seconds().max(0);
    let (d, h, m, s) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

fn uptime(instance: &InstanceResponse) -> String {
    match (instance.status, instance.started_at) {
        (InstanceStatus::Stopped | InstanceStatus::Failed, _) | (_, None) => "-".into(),
        (_, Some(started)) => duration(Utc::now() - started),
    }
}

/// `46 ms`, `2.3 s`.
fn short(elapsed: chrono::Duration) -> String {
    match elapsed.num_milliseconds() {
        ms if ms < 1000 => format!("{} ms", ms.max(0)),
        ms => format!("{:.1} s", ms as f64 / 1000.0),
    }
}

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

async fn create(
    client: &Client,
    printer: &Printer,
    name: &str,
    flags: &OptionFlags,
    start: bool,
) -> Result<(), CliError> {
    let options = options::build(client, flags, Value::Object(Map::new())).await?;
    let created =
        client.create_instance(name, &options).await.map_err(context(format!("cannot create instance {name}")))?;
    if !start {
        return printer.print(&created.raw, |p| p.say(format!("instance {name} created ({})", created.status)));
    }
    if printer.format == Output::Table {
        printer.say(format!("instance {name} created"));
    }
    lifecycle(client, printer, name, Lifecycle::Start, &WaitFlags { wait: true, timeout: 600 }).await
}

async fn list(client: &Client, printer: &Printer) -> Result<(), CliError> {
    let instances = client.list_instances().await.map_err(context("cannot list instances"))?;
    printer.print(&instances.raw, |p| {
        if p.quiet {
            instances.iter().for_each(|i| out(&i.name));
            return;
        }
        if instances.is_empty() {
            out("no instances (create one: llamactl instance create NAME --backend llama_cpp --model PATH)");
            return;
        }
        let mut table = p.table(&["NAME", "BACKEND", "STATUS", "PORT", "PID", "RESTARTS", "UPTIME", "MODEL"], 7);
        for instance in instances.iter() {
            table.add_row(vec![
                comfy_table::Cell::new(&instance.name),
                comfy_table::Cell::new(instance.backend_type().as_deref().unwrap_or("?")),
                p.status(instance.status.as_str()),
                comfy_table::Cell::new(optional(instance.port)),
                comfy_table::Cell::new(optional(instance.pid)),
                comfy_table::Cell::new(instance.restart_count),
                comfy_table::Cell::new(uptime(instance)),
                comfy_table::Cell::new(model(instance)),
            ]);
        }
        show(&table);
    })
}

/// Prints one instance for people.
fn describe(printer: &Printer, instance: &InstanceResponse) {
    let mut rows = vec![
        ("Name", instance.name.clone()),
        ("Id", instance.id.to_string()),
        ("Backend", instance.backend_type().unwrap_or_else(|| "?".into())),
        ("Model", model(instance)),
        ("Status", format!("{} (wanted: {})", instance.status, instance.desired_state)),
        ("Port", optional(instance.port)),
        ("Pid", optional(instance.pid)),
        ("Started", time(instance.started_at)),
        ("Ready", time(instance.ready_at)),
        ("Stopped", time(instance.stopped_at)),
        ("Uptime", uptime(instance)),
        ("Restarts", instance.restart_count.to_string()),
        ("In flight", instance.in_flight.to_string()),
        ("Last request", time(instance.last_activity)),
        ("Last change", optional(instance.last_reason.as_ref())),
        ("Created", unix_time(Some(instance.created))),
    ];
    if let Some(error) = &instance.last_error {
        rows.push(("Last error", error.clone()));
    }
    if let Some(error) = &instance.options_error {
        rows.push(("Options error", error.clone()));
    }
    rows.insert(1, ("Source", instance.source.clone()));
    let options = instance.options.as_ref().and_then(|o| serde_json::to_value(o).ok());
    if let Some(description) = options.as_ref().and_then(|o| o.get("description")).and_then(Value::as_str) {
        rows.insert(2, ("Description", description.to_owned()));
    }
    printer.fields(&rows);
    if let Some(options) = &instance.options {
        out("Options:");
        for line in serde_norway::to_string(options).unwrap_or_default().lines() {
            out(&format!("  {line}"));
        }
    }
    if let Some(origins) = &instance.origins {
        out("Where each option comes from:");
        let width = origins.keys().map(String::len).max().unwrap_or(0);
        for (key, origin) in origins {
            out(&format!("  {key:<width$}  {origin}"));
        }
    }
}

async fn show_one(client: &Client, printer: &Printer, name: &str, effective: bool) -> Result<(), CliError> {
    let instance = if effective { client.get_instance_effective(name).await } else { client.get_instance(name).await };
    let instance = instance.map_err(context(format!("cannot show instance {name}")))?;
    printer.print(&instance.raw, |p| {
        if p.quiet {
            out(instance.status.as_str());
        } else {
            describe(p, &instance);
        }
    })
}

async fn edit(client: &Client, printer: &Printer, name: &str, flags: &OptionFlags) -> Result<(), CliError> {
    let with_flags = flags.file.is_some()
        || flags.from_command.is_some()
        || flags.backend.is_some()
        || flags.model.is_some()
        || !flags.options.is_empty()
        || !flags.env.is_empty();
    if !with_flags && !editor::available() {
        return Err(CliError::Usage(
            "nothing to change: give -O KEY=VALUE, -e KEY=VALUE, --model, --backend, --from-command or -f FILE, \
             or set EDITOR to edit the options in an editor"
                .into(),
        ));
    }
    let current = client.get_instance(name).await.map_err(context(format!("cannot edit instance {name}")))?;
    let base = current.options.clone().map_or_else(|| Value::Object(Map::new()), OptionsJson::into_value);
    let (options, edited_file) = if with_flags {
        (options::build(client, flags, base).await?, None)
    } else {
        match editor::edit(name, &base)? {
            Edited::Cancelled => {
                printer.say(format!("edit cancelled: instance {name} is unchanged"));
                return Ok(());
            }
            Edited::Unchanged => {
                printer.say(format!("no changes: instance {name} is unchanged"));
                return Ok(());
            }
            Edited::Changed { options, file } => (options, Some(file)),
        }
    };
    let updated = match client.update_instance(name, &options).await {
        Ok(updated) => updated,
        Err(error) => {
            let mut error = context(format!("cannot update instance {name}"))(error);
            if let (CliError::Server { hint, .. }, Some(file)) = (&mut error, edited_file) {
                *hint = Some(editor::keep(name, file));
            }
            return Err(error);
        }
    };
    printer.print(&updated.raw, |p| {
        let note = if current.status == InstanceStatus::Stopped || current.status == InstanceStatus::Failed {
            String::new()
        } else {
            " (it restarts with the new options)".into()
        };
        p.say(format!("instance {name} updated{note}"));
    })
}

async fn lifecycle(
    client: &Client,
    printer: &Printer,
    name: &str,
    action: Lifecycle,
    flags: &WaitFlags,
) -> Result<(), CliError> {
    let verb = match action {
        Lifecycle::Start => "start",
        Lifecycle::Stop => "stop",
        Lifecycle::Restart => "restart",
    };
    let answer = client.lifecycle(name, action).await.map_err(context(format!("cannot {verb} instance {name}")))?;
    let answer: Answer<InstanceResponse> = if flags.wait && action != Lifecycle::Stop {
        wait::until_ready(client, printer, name, Duration::from_secs(flags.timeout)).await?
    } else {
        answer
    };
    printer.print(&answer.raw, |p| match answer.status {
        InstanceStatus::Running => {
            let after = match (answer.started_at, answer.ready_at) {
                (Some(started), Some(ready)) => format!(" (ready {} after its start)", short(ready - started)),
                _ => String::new(),
            };
            p.say(format!("{name} is running on port {}{after}", optional(answer.port)));
        }
        status => p.say(format!("{name}: {status}")),
    })
}

async fn delete(client: &Client, printer: &Printer, name: &str) -> Result<(), CliError> {
    client.delete_instance(name).await.map_err(context(format!("cannot delete instance {name}")))?;
    printer.say(format!("instance {name} deleted"));
    Ok(())
}

async fn logs(client: &Client, printer: &Printer, name: &str, lines: i64, follow: bool) -> Result<(), CliError> {
    let what = format!("cannot read the log of {name}");
    if !follow {
        let text = client.logs(name, Some(lines)).await.map_err(context(what))?;
        if !text.is_empty() {
            out(text.strip_suffix('\n').unwrap_or(&text));
        }
        return Ok(());
    }
    // One listener for the whole run: a Ctrl-C between two lines must not be missed.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut stream = client.follow_logs(name, Some(lines)).await.map_err(context(what.clone()))?;
    loop {
        tokio::select! {
            _ = &mut interrupted => return Ok(()),
            item = stream.next() => match item {
                Some(Ok(event)) if event.event == "lagged" => eprintln!("warning: {}", event.data),
                Some(Ok(event)) => out(&event.data),
                Some(Err(error)) => return Err(context(what)(error)),
                None => {
                    if !printer.quiet {
                        eprintln!("the server closed the log stream (was {name} deleted, or the server stopped?)");
                    }
                    return Ok(());
                }
            },
        }
    }
}

async fn events(client: &Client, printer: &Printer, name: &str, limit: u32) -> Result<(), CliError> {
    const PAGE: u32 = 1000;
    let what = format!("cannot read the events of {name}");
    let (mut events, mut raw) = (Vec::new(), Vec::new());
    let mut after = None;
    loop {
        let page = client.instance_events(name, after, Some(PAGE)).await.map_err(context(what.clone()))?;
        let full = page.len() == PAGE as usize;
        after = page.last().map(|e| e.id);
        raw.extend(page.raw.as_array().cloned().unwrap_or_default());
        events.extend(page.value);
        if !full {
            break;
        }
    }
    let skip = events.len().saturating_sub(limit as usize);
    let events = &events[skip..];
    let raw = Value::Array(raw.split_off(skip.min(raw.len())));
    printer.print(&raw, |p| {
        if events.is_empty() {
            p.say(format!("no events for {name}"));
            return;
        }
        let mut table = p.table(&["TIME", "FROM", "TO", "REASON", "PID", "PORT"], 3);
        for event in events {
            table.add_row(vec![
                comfy_table::Cell::new(time(Some(event.at))),
                p.status(event.from.as_str()),
                p.status(event.to.as_str()),
                comfy_table::Cell::new(event.reason.to_string()),
                comfy_table::Cell::new(optional(event.pid)),
                comfy_table::Cell::new(optional(event.port)),
            ]);
        }
        show(&table);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kubectl_ages() {
        let d = chrono::Duration::seconds;
        assert_eq!(duration(d(42)), "42s");
        assert_eq!(duration(d(303)), "5m03s");
        assert_eq!(duration(d(3 * 3600 + 12 * 60)), "3h12m");
        assert_eq!(duration(d(2 * 86_400 + 5 * 3600)), "2d5h");
        assert_eq!(duration(d(-5)), "0s");
    }
}
