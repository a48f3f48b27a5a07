//! `llamactl inflight`: the requests in flight, and cancelling one.

use chrono::{DateTime, Utc};
use llamactl_api::Client;
use llamactl_api::activity::{InflightRequest, InflightState};

use crate::cli::InflightCommand;
use crate::commands::instance::duration;
use crate::error::{CliError, context};
use crate::output::{Printer, out, show};

/// Runs one inflight command (`list` without one).
pub async fn run(client: &Client, printer: &Printer, command: Option<InflightCommand>) -> Result<(), CliError> {
    match command.unwrap_or(InflightCommand::List) {
        InflightCommand::List => list(client, printer).await,
        InflightCommand::Cancel { id } => {
            client.cancel_inflight(id).await.map_err(context(format!("cannot cancel request {id}")))?;
            printer.say(format!("request {id} cancelled"));
            Ok(())
        }
    }
}

/// Where a request is: `forwarding`, `queued (2nd)`.
pub fn state(request: &InflightRequest) -> String {
    let word = match request.state {
        InflightState::Receiving => "receiving",
        InflightState::Queued => "queued",
        InflightState::Forwarding => "forwarding",
        InflightState::Streaming => "streaming",
    };
    match (request.state, request.position) {
        (InflightState::Queued, Some(position)) => format!("{word} (#{position})"),
        _ => word.to_owned(),
    }
}

/// One request's cells: id, instance, model, key, path, state, age at `now`, bytes sent.
pub fn cells(request: &InflightRequest, now: DateTime<Utc>) -> Vec<String> {
    let dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
    vec![
        request.id.to_string(),
        dash(request.instance.as_deref()),
        dash(request.model.as_deref()),
        dash(request.key_name.as_deref()),
        request.path.clone(),
        state(request),
        duration(now - request.since),
        request.bytes_sent.to_string(),
    ]
}

async fn list(client: &Client, printer: &Printer) -> Result<(), CliError> {
    let requests = client.inflight().await.map_err(context("cannot list the requests in flight"))?;
    printer.print(&requests.raw, |p| {
        if p.quiet {
            requests.iter().for_each(|r| out(&r.id.to_string()));
            return;
        }
        if requests.is_empty() {
            out("no requests in flight");
            return;
        }
        let mut table = p.table(&["ID", "INSTANCE", "MODEL", "KEY", "PATH", "STATE", "AGE", "SENT"], 4);
        let now = Utc::now();
        for request in requests.iter() {
            table.add_row(cells(request, now));
        }
        show(&table);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(state: InflightState, position: Option<usize>) -> InflightRequest {
        InflightRequest {
            id: 12,
            instance: Some("qwen".into()),
            model: None,
            key_name: Some("ci".into()),
            path: "/v1/chat/completions".into(),
            since: "2026-12-01T10:00:00Z".parse().unwrap(),
            state,
            position,
            instance_status: None,
            bytes_sent: 640,
        }
    }

    #[test]
    fn a_queued_request_shows_its_place_and_others_their_state() {
        assert_eq!(state(&request(InflightState::Queued, Some(2))), "queued (#2)");
        assert_eq!(state(&request(InflightState::Queued, None)), "queued");
        assert_eq!(state(&request(InflightState::Streaming, None)), "streaming");
        let now = "2026-12-01T10:01:05Z".parse().unwrap();
        assert_eq!(
            cells(&request(InflightState::Forwarding, None), now),
            ["12", "qwen", "-", "ci", "/v1/chat/completions", "forwarding", "1m05s", "640"]
        );
    }
}
