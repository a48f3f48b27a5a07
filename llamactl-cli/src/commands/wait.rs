//! Waiting until an instance is ready, with a spinner showing its status and the time taken.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use llamactl_api::types::{DesiredState, InstanceResponse, InstanceStatus};
use llamactl_api::{Answer, Client};

use crate::error::{CliError, context};
use crate::output::Printer;

/// How often the status is read.
const POLL: Duration = Duration::from_millis(200);
/// Log lines shown when an instance does not come up and its error carries none.
const LOG_LINES: i64 = 20;

fn spinner(printer: &Printer) -> ProgressBar {
    if printer.quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// The instance's own account of its failure: the first line of its last error as the reason,
/// the rest (the backend's last output) as the log; without one, the reason of its last
/// transition (if `failed`) and the last lines of its log.
async fn failure(client: &Client, name: &str, instance: &InstanceResponse, message: String, failed: bool) -> CliError {
    let (why, log) = match &instance.last_error {
        Some(error) => match error.split_once('\n') {
            Some((first, rest)) => (Some(first.trim_end_matches("; last output:").to_owned()), rest.to_owned()),
            None => (Some(error.clone()), String::new()),
        },
        None if failed => (instance.last_reason.as_ref().map(ToString::to_string), String::new()),
        None => (None, String::new()),
    };
    let log = if log.trim().is_empty() { client.logs(name, Some(LOG_LINES)).await.unwrap_or_default() } else { log };
    let message = match why {
        Some(why) => format!("{message}: {why}"),
        None => message,
    };
    CliError::NotReady { message: format!("{message} (see: llamactl instance logs {name})"), log }
}

/// Polls `name` until it is running (ready), and fails when it failed, was stopped, or is not
/// ready within `timeout`.
pub async fn until_ready(
    client: &Client,
    printer: &Printer,
    name: &str,
    timeout: Duration,
) -> Result<Answer<InstanceResponse>, CliError> {
    let bar = spinner(printer);
    let began = Instant::now();
    loop {
        let instance = client.get_instance(name).await.map_err(context(format!("cannot read the status of {name}")));
        let instance = match instance {
            Ok(instance) => instance,
            Err(error) => {
                bar.finish_and_clear();
                return Err(error);
            }
        };
        match instance.status {
            InstanceStatus::Running => {
                bar.finish_and_clear();
                return Ok(instance);
            }
            InstanceStatus::Failed => {
                bar.finish_and_clear();
                return Err(failure(client, name, &instance, format!("{name} did not start"), true).await);
            }
            InstanceStatus::Stopped if instance.desired_state == DesiredState::Stopped => {
                bar.finish_and_clear();
                return Err(CliError::Other(format!("{name} was stopped while waiting for it to become ready")));
            }
            status => {
                let restarts = match instance.restart_count {
                    0 => String::new(),
                    n => format!(", restart {n}"),
                };
                bar.set_message(format!("{name}: {status}{restarts}"));
            }
        }
        if began.elapsed() >= timeout {
            bar.finish_and_clear();
            let message = format!("{name} is not ready after {} s (still {})", timeout.as_secs(), instance.status);
            return Err(failure(client, name, &instance, message, false).await);
        }
        tokio::time::sleep(POLL).await;
    }
}
