//! `llamactl config plan|reload|last`: the server's configuration reloads.

use llamactl_api::reload::{Effect, ReloadReport};
use llamactl_api::{Answer, Client};

use crate::cli::ConfigCommand;
use crate::error::{CliError, context};
use crate::output::{Printer, out, show};

/// Runs one `llamactl config` command.
pub async fn run(client: &Client, printer: &Printer, command: ConfigCommand) -> Result<(), CliError> {
    let report = match command {
        ConfigCommand::Plan => client.reload_config(true).await.map_err(context("cannot plan a reload"))?,
        ConfigCommand::Reload => {
            client.reload_config(false).await.map_err(context("cannot reload the configuration"))?
        }
        ConfigCommand::Last => client.last_reload().await.map_err(context("cannot read the last reload"))?,
    };
    print(printer, &report)
}

fn print(printer: &Printer, report: &Answer<ReloadReport>) -> Result<(), CliError> {
    printer.print(&report.raw, |p| {
        let file = report.file.as_deref().unwrap_or("(no file)");
        let what = if report.dry_run { "plan" } else { "reload" };
        out(&format!("{what} of {file}: {} ({})", report.outcome.as_str(), report.at.to_rfc3339()));
        if let Some(error) = &report.error {
            out(&format!("error: {error}"));
        }
        if report.instances.is_empty() {
            out("no declared instances");
        } else {
            let mut table = p.table(&["INSTANCE", "ACTION", "CHANGES", "RESULT"], 2);
            for line in &report.instances {
                let result = match report.applied.iter().find(|a| a.name == line.name) {
                    Some(applied) => applied.error.clone().unwrap_or_else(|| "done".into()),
                    None => String::new(),
                };
                table.add_row(vec![
                    line.name.clone(),
                    line.action.as_str().replace('_', " "),
                    line.changes.join(", "),
                    result,
                ]);
            }
            show(&table);
        }
        for setting in &report.settings {
            let effect = match setting.effect {
                Effect::AppliedLive => "applied live",
                Effect::NeedsServerRestart => "needs a server restart",
            };
            out(&format!("setting {}: {effect}", setting.key));
        }
    })
}
