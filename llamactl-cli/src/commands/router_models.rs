//! `llamactl instance models|load|unload`: a llama.cpp router instance's models.

use llamactl_api::Client;
use llamactl_api::router::SubModelInfo;

use crate::error::{CliError, context};
use crate::output::{Printer, show, time};

/// `llamactl instance models NAME`
pub async fn list(client: &Client, printer: &Printer, name: &str) -> Result<(), CliError> {
    let answer = client.sub_models(name).await.map_err(context(format!("cannot list the models of {name}")))?;
    let list = &answer.value;
    printer.print(&answer.raw, |p| {
        let limit = list.models_max.map_or("no limit".to_owned(), |max| format!("at most {max} loaded"));
        let state = if list.running { "running" } else { "stopped (models as last listed)" };
        p.say(format!("{name}: {state}, {limit}"));
        if list.items.is_empty() {
            p.say("the router lists no models");
            return;
        }
        let mut table =
            p.table(&["MODEL", "STATUS", "REASON", "SINCE", "IN FLIGHT", "PINNED", "IDLE UNLOAD", "SOURCE"], 2);
        for model in &list.items {
            table.add_row(vec![
                comfy_table::Cell::new(label(model)),
                p.status(model.status.as_str()),
                comfy_table::Cell::new(model.reason.to_string()),
                comfy_table::Cell::new(time(Some(model.since))),
                comfy_table::Cell::new(model.in_flight),
                comfy_table::Cell::new(if model.pinned { "yes" } else { "-" }),
                comfy_table::Cell::new(model.idle_timeout_seconds.map_or("-".into(), |s| format!("{s} s"))),
                comfy_table::Cell::new(model.source.as_deref().unwrap_or("-")),
            ]);
        }
        show(&table);
    })
}

/// A model's id with its aliases.
fn label(model: &SubModelInfo) -> String {
    if model.aliases.is_empty() { model.id.clone() } else { format!("{} ({})", model.id, model.aliases.join(", ")) }
}

/// `llamactl instance load NAME MODEL` and `unload`.
pub async fn change(client: &Client, printer: &Printer, name: &str, model: &str, load: bool) -> Result<(), CliError> {
    let what = format!("cannot {} {model} of {name}", if load { "load" } else { "unload" });
    let answer =
        if load { client.load_sub_model(name, model).await } else { client.unload_sub_model(name, model).await }
            .map_err(context(what))?;
    let info = &answer.value;
    printer.print(&answer.raw, |p| p.say(format!("{name}/{}: {} ({})", info.id, info.status, info.reason)))
}
