//! `llamactl key ...`: inference API keys and their rights.

use chrono::{DateTime, NaiveDate, Utc};
use llamactl_api::Client;
use llamactl_api::types::{CreateKeyRequest, InstancePermissionRequest, PermissionMode};
use serde_json::Value;

use crate::cli::KeyCommand;
use crate::error::{CliError, context};
use crate::output::{Printer, out, show, unix_time as time};

/// Runs one key command.
pub async fn run(client: &Client, printer: &Printer, command: KeyCommand) -> Result<(), CliError> {
    match command {
        KeyCommand::Create { name, all, instances, expires } => {
            create(client, printer, name, all, &instances, expires.as_deref()).await
        }
        KeyCommand::List => list(client, printer).await,
        KeyCommand::Show { id } => show_one(client, printer, id).await,
        KeyCommand::Delete { id } => {
            client.delete_key(id).await.map_err(context(format!("cannot delete key {id}")))?;
            printer.say(format!("key {id} deleted"));
            Ok(())
        }
    }
}

/// `NAME[:RIGHTS]`, rights a comma-separated list of `infer`, `start`, `evict` (or `all`);
/// `infer` when none are given.
pub fn permission(spec: &str) -> Result<InstancePermissionRequest, CliError> {
    let (name, rights) = spec.split_once(':').unwrap_or((spec, "infer"));
    if name.is_empty() {
        return Err(CliError::Usage(format!("--instance {spec:?}: expected INSTANCE[:RIGHTS]")));
    }
    let mut permission = InstancePermissionRequest {
        instance_id: None,
        instance_name: Some(name.to_owned()),
        can_infer: false,
        can_start: false,
        can_evict: false,
    };
    for right in rights.split(',').map(str::trim) {
        match right {
            "infer" => permission.can_infer = true,
            "start" => permission.can_start = true,
            "evict" => permission.can_evict = true,
            "all" => (permission.can_infer, permission.can_start, permission.can_evict) = (true, true, true),
            other => {
                return Err(CliError::Usage(format!(
                    "--instance {spec:?}: unknown right {other:?} (rights: infer, start, evict, all)"
                )));
            }
        }
    }
    Ok(permission)
}

/// An expiry as unix seconds: a duration from `now` (`90m`, `12h`, `30d`, `4w`), a date
/// (`2026-12-31`, its midnight UTC) or an RFC 3339 time.
pub fn expiry(text: &str, now: DateTime<Utc>) -> Result<i64, CliError> {
    let text = text.trim();
    let bad = || {
        CliError::Usage(format!(
            "--expires {text:?}: expected a duration (90m, 12h, 30d, 4w), a date (2026-12-31) or an RFC 3339 time"
        ))
    };
    if let Some(unit) = text.chars().last().filter(char::is_ascii_alphabetic)
        && let Ok(count) = text[..text.len() - 1].parse::<i64>()
    {
        let seconds = match unit {
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        return count.checked_mul(seconds).and_then(|s| now.timestamp().checked_add(s)).ok_or_else(bad);
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp());
    }
    DateTime::parse_from_rfc3339(text).map(|t| t.timestamp()).map_err(|_| bad())
}

async fn create(
    client: &Client,
    printer: &Printer,
    name: String,
    all: bool,
    instances: &[String],
    expires: Option<&str>,
) -> Result<(), CliError> {
    if !all && instances.is_empty() {
        return Err(CliError::Usage(
            "say what the key may use: --all, or --instance NAME[:infer,start,evict] (repeatable)".into(),
        ));
    }
    let request = CreateKeyRequest {
        name,
        permission_mode: if all { PermissionMode::AllowAll } else { PermissionMode::PerInstance },
        expires_at: expires.map(|e| expiry(e, Utc::now())).transpose()?,
        instance_permissions: instances.iter().map(|s| permission(s)).collect::<Result<_, _>>()?,
    };
    let created =
        client.create_key(&request).await.map_err(context(format!("cannot create key {:?}", request.name)))?;
    printer.print(&created.raw, |p| {
        if p.quiet {
            out(&created.key_secret);
            return;
        }
        out(&format!("key {} ({}) created; its secret is shown only this once:", created.key.id, created.key.name));
        out(&created.key_secret);
    })
}

async fn list(client: &Client, printer: &Printer) -> Result<(), CliError> {
    let keys = client.list_keys().await.map_err(context("cannot list keys"))?;
    printer.print(&keys.raw, |p| {
        if p.quiet {
            keys.iter().for_each(|k| out(&k.id.to_string()));
            return;
        }
        if keys.is_empty() {
            out("no keys (create one: llamactl key create NAME --all)");
            return;
        }
        let mut table = p.table(&["ID", "NAME", "ACCESS", "EXPIRES", "CREATED", "LAST USED"], 1);
        for key in keys.iter() {
            table.add_row(vec![
                key.id.to_string(),
                key.name.clone(),
                key.permission_mode.as_str().to_owned(),
                time(key.expires_at),
                time(Some(key.created_at)),
                time(key.last_used_at),
            ]);
        }
        show(&table);
    })
}

async fn show_one(client: &Client, printer: &Printer, id: i64) -> Result<(), CliError> {
    let what = format!("cannot show key {id}");
    let key = client.get_key(id).await.map_err(context(what.clone()))?;
    let rights = client.key_permissions(id).await.map_err(context(what))?;
    // Both answers as the server sent them: the key, with its rights under "permissions".
    let mut raw = key.raw.clone();
    if let Value::Object(map) = &mut raw {
        map.insert("permissions".into(), rights.raw.clone());
    }
    printer.print(&raw, |p| {
        p.fields(&[
            ("Id", key.id.to_string()),
            ("Name", key.name.clone()),
            ("Access", key.permission_mode.as_str().to_owned()),
            ("Expires", time(key.expires_at)),
            ("Created", time(Some(key.created_at))),
            ("Last used", time(key.last_used_at)),
        ]);
        if key.permission_mode == PermissionMode::AllowAll {
            return;
        }
        if rights.is_empty() {
            out("Rights: none (the key can use no instance)");
            return;
        }
        let mut table = p.table(&["INSTANCE", "INFER", "START", "EVICT"], 0);
        let mark = |yes: bool| if yes { "yes" } else { "no" };
        for right in rights.iter() {
            table.add_row(vec![
                right.instance_name.as_str(),
                mark(right.can_infer),
                mark(right.can_start),
                mark(right.can_evict),
            ]);
        }
        out("");
        show(&table);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_default_to_infer_and_unknown_ones_are_refused() {
        let p = permission("qwen").unwrap();
        assert_eq!(
            (p.instance_name.as_deref(), p.can_infer, p.can_start, p.can_evict),
            (Some("qwen"), true, false, false)
        );
        let p = permission("qwen:start,evict").unwrap();
        assert_eq!((p.can_infer, p.can_start, p.can_evict), (false, true, true));
        let p = permission("qwen:all").unwrap();
        assert_eq!((p.can_infer, p.can_start, p.can_evict), (true, true, true));
        let err = permission("qwen:fly").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("unknown right \"fly\""), "{err}");
        assert!(permission(":infer").is_err());
    }

    #[test]
    fn expiries_are_durations_dates_or_times() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(expiry("90m", now).unwrap(), 1_800_000_000 + 5400);
        assert_eq!(expiry("30d", now).unwrap(), 1_800_000_000 + 30 * 86_400);
        assert_eq!(expiry("2w", now).unwrap(), 1_800_000_000 + 14 * 86_400);
        assert_eq!(expiry("2026-12-31", now).unwrap(), 1_798_675_200);
        assert_eq!(expiry("2026-12-31T12:00:00+01:00", now).unwrap(), 1_798_675_200 + 11 * 3600);
        for bad in ["", "30", "30x", "tomorrow", "2026-13-01", "99999999999999999d"] {
            let err = expiry(bad, now).unwrap_err();
            assert!(err.to_string().starts_with("--expires"), "{bad}: {err}");
        }
    }
}
