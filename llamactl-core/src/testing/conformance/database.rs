//! The rules of a [`Database`], one function each, every one on a new, empty store.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use futures::future::join_all;

use super::{Failure, Outcome, ensure, ensure_eq};
use crate::{
    Database, DbError, DesiredState, EventQuery, ExitInfo, ImportedInstance, InstanceName, InstanceOptions,
    InstanceStatus, RuntimeRecord, Transition, TransitionReason,
};

/// An instance name the suite uses.
pub(super) fn name(value: &str) -> Result<InstanceName, Failure> {
    Ok(InstanceName::new(value)?)
}

/// vLLM options serving `model`: the smallest valid options.
pub(super) fn options(model: &str) -> Result<InstanceOptions, Failure> {
    let json = serde_json::json!({"backend_type": "vllm", "backend_options": {"model": model}});
    Ok(InstanceOptions::from_json_value(&json)?)
}

/// A time whole to the millisecond (stores may keep no finer times).
fn at_millis(millis: i64) -> Result<DateTime<Utc>, Failure> {
    DateTime::from_timestamp_millis(millis).ok_or_else(|| Failure(format!("the suite's own time {millis} is invalid")))
}

/// Creates `names` in order.
pub(super) async fn create_all(db: &dyn Database, names: &[&str]) -> Outcome {
    for each in names {
        db.create(&name(each)?, &options(each)?).await?;
    }
    Ok(())
}

/// The options stored for `instance`, which must exist and be readable.
async fn stored_options(db: &dyn Database, instance: &str) -> Result<InstanceOptions, Failure> {
    let stored = db.get(instance).await?.ok_or_else(|| Failure(format!("get({instance:?}) is None")))?;
    stored.options.map_err(|e| Failure(format!("the options of {instance:?} do not read back: {e}")))
}

/// A transition from `from` to `to` at `millis`.
fn transition(
    from: InstanceStatus,
    to: InstanceStatus,
    reason: TransitionReason,
    millis: i64,
) -> Result<Transition, Failure> {
    Ok(Transition { from, to, reason, at: at_millis(millis)? })
}

/// A runtime record with every field set (times whole to the millisecond).
fn full_runtime() -> Result<RuntimeRecord, Failure> {
    Ok(RuntimeRecord {
        status: InstanceStatus::Running,
        desired_state: DesiredState::Running,
        pid: Some(4242),
        process_start_ticks: Some(123_456_789),
        boot_id: Some("0b9c2d1e-boot".into()),
        port: Some(8123),
        container_id: Some("c0ffee".into()),
        command_hash: Some("hash-of-the-command".into()),
        output_path: Some(PathBuf::from("/var/lib/llamactl/logs/a.out")),
        started_at: Some(at_millis(1_700_000_000_123)?),
        ready_at: Some(at_millis(1_700_000_001_456)?),
        stopped_at: Some(at_millis(1_699_999_000_789)?),
        restart_count: 3,
        last_exit: ExitInfo { code: Some(1), signal: None },
        last_error: Some("boom\nwith its last log lines".into()),
        last_reason: Some(TransitionReason::GaveUp { restarts: 3, exit: ExitInfo { code: None, signal: Some(9) } }),
    })
}

/// `create` stores the instance with its options and a default (stopped) runtime, and
/// answers what `get` and `load_all` then read.
pub async fn create_stores_a_stopped_instance(db: &dyn Database) -> Outcome {
    let created = db.create(&name("a")?, &options("m1")?).await?;
    ensure_eq!(created.name.as_str(), "a", "the created instance's name");
    ensure_eq!(created.runtime, RuntimeRecord::default(), "a new instance's runtime");
    let wanted = options("m1")?;
    ensure!(
        created.options.as_ref().is_ok_and(|o| *o == wanted),
        "create answers other options: {:?}",
        created.options
    );
    let got = db.get("a").await?.ok_or_else(|| Failure("get(\"a\") is None after create".into()))?;
    ensure_eq!(got.id, created.id, "get answers the created id");
    ensure_eq!(got.runtime, RuntimeRecord::default(), "get's runtime of a new instance");
    ensure_eq!(stored_options(db, "a").await?, options("m1")?, "the stored options");
    let all = db.load_all().await?;
    ensure_eq!(
        all.iter().map(|i| (i.id, i.name.to_string())).collect::<Vec<_>>(),
        [(created.id, "a".to_owned())],
        "load_all after one create"
    );
    Ok(())
}

/// `create` of a name that exists fails with [`DbError::AlreadyExists`] naming it, and changes
/// nothing.
pub async fn create_refuses_a_taken_name(db: &dyn Database) -> Outcome {
    db.create(&name("a")?, &options("first")?).await?;
    match db.create(&name("a")?, &options("second")?).await {
        Err(DbError::AlreadyExists(taken)) => ensure_eq!(taken, "a", "AlreadyExists names the instance"),
        other => return Err(Failure(format!("a second create of \"a\" answered {other:?}, want AlreadyExists"))),
    }
    ensure_eq!(stored_options(db, "a").await?, options("first")?, "the options after a refused create");
    ensure_eq!(db.load_all().await?.len(), 1, "instances after a refused create");
    Ok(())
}

/// Every instance gets an id no other instance had, deleted ones included (API keys' rights
/// and clients name instances by it).
pub async fn ids_are_never_reused(db: &dyn Database) -> Outcome {
    let mut seen = Vec::new();
    for round in 0..3 {
        for each in ["a", "b"] {
            let id = db.create(&name(each)?, &options(each)?).await?.id;
            ensure!(
                !seen.contains(&id),
                "round {round}: {each:?} got id {id}, which an earlier instance had ({seen:?})"
            );
            seen.push(id);
        }
        ensure!(db.delete("a").await?, "delete(\"a\") in round {round}");
        ensure!(db.delete("b").await?, "delete(\"b\") in round {round}");
    }
    Ok(())
}

/// `save` inserts a new instance (stopped), and for an existing one replaces the options
/// only: same id, same creation time, same runtime.
pub async fn save_inserts_or_replaces_the_options(db: &dyn Database) -> Outcome {
    let saved = db.save(&name("a")?, &options("m1")?).await?;
    ensure_eq!(saved.runtime, RuntimeRecord::default(), "the runtime of an instance saved new");
    let runtime = full_runtime()?;
    db.save_runtime("a", &runtime).await?;
    let replaced = db.save(&name("a")?, &options("m2")?).await?;
    ensure_eq!(replaced.id, saved.id, "save keeps the id");
    ensure_eq!(replaced.created_at, saved.created_at, "save keeps the creation time");
    ensure!(
        replaced.updated_at >= saved.updated_at,
        "the update time goes back: {} < {}",
        replaced.updated_at,
        saved.updated_at
    );
    ensure_eq!(replaced.runtime, runtime, "save keeps the runtime");
    ensure_eq!(stored_options(db, "a").await?, options("m2")?, "the options after save");
    ensure_eq!(db.load_all().await?.len(), 1, "instances after saving one twice");
    Ok(())
}

/// `get` of a name that was never stored is `Ok(None)`.
pub async fn get_of_an_unknown_name_is_none(db: &dyn Database) -> Outcome {
    create_all(db, &["a"]).await?;
    ensure!(db.get("b").await?.is_none(), "get(\"b\") of an unknown instance is Some");
    ensure!(db.get("A").await?.is_none(), "names are case-sensitive: get(\"A\") found \"a\"");
    Ok(())
}

/// `load_all` answers every instance in byte order of their names.
pub async fn load_all_is_in_name_order(db: &dyn Database) -> Outcome {
    let names = ["b", "a", "B", "a.b", "0z", "a-b", "_x", "ab"];
    create_all(db, &names).await?;
    let mut wanted: Vec<&str> = names.to_vec();
    wanted.sort_unstable();
    let all = db.load_all().await?;
    let seen: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
    ensure_eq!(seen, wanted, "load_all's order");
    Ok(())
}

/// `delete` removes the instance and answers whether there was one.
pub async fn delete_removes_the_instance(db: &dyn Database) -> Outcome {
    create_all(db, &["a", "b"]).await?;
    ensure!(db.delete("a").await?, "delete(\"a\") of an existing instance answered false");
    ensure!(db.get("a").await?.is_none(), "get(\"a\") after delete is Some");
    let left: Vec<String> = db.load_all().await?.iter().map(|i| i.name.to_string()).collect();
    ensure_eq!(left, ["b"], "load_all after deleting \"a\"");
    ensure!(!db.delete("a").await?, "a second delete(\"a\") answered true");
    ensure!(!db.delete("never").await?, "delete of an unknown instance answered true");
    db.create(&name("a")?, &options("again")?).await?;
    ensure_eq!(stored_options(db, "a").await?, options("again")?, "a deleted name can be created again");
    Ok(())
}

/// An instance's events go with it: a new instance of the same name starts with none.
pub async fn delete_takes_the_events_with_it(db: &dyn Database) -> Outcome {
    create_all(db, &["a", "b"]).await?;
    let start =
        transition(InstanceStatus::Stopped, InstanceStatus::Starting, TransitionReason::UserStart, 1_700_000_000_000)?;
    db.record_transition("a", &RuntimeRecord::default(), &start).await?;
    db.record_transition("b", &RuntimeRecord::default(), &start).await?;
    db.delete("a").await?;
    ensure!(db.events("a", EventQuery::default()).await?.is_empty(), "events of a deleted instance are still there");
    create_all(db, &["a"]).await?;
    ensure!(db.events("a", EventQuery::default()).await?.is_empty(), "a new \"a\" has the deleted one's events");
    ensure_eq!(db.events("b", EventQuery::default()).await?.len(), 1, "events of another instance after a delete");
    Ok(())
}

/// `record_transition` replaces the runtime and appends one event with the transition, the
/// instance's name, and the runtime's pid and port.
pub async fn record_transition_writes_the_runtime_and_an_event(db: &dyn Database) -> Outcome {
    create_all(db, &["a"]).await?;
    let runtime = full_runtime()?;
    let evicted = TransitionReason::Evicted { by: "b".into() };
    let change = transition(InstanceStatus::Running, InstanceStatus::Stopping, evicted.clone(), 1_700_000_002_345)?;
    db.record_transition("a", &runtime, &change).await?;
    let stored = db.get("a").await?.ok_or_else(|| Failure("get(\"a\") is None".into()))?;
    ensure_eq!(stored.runtime, runtime, "the runtime after record_transition");
    let events = db.events("a", EventQuery::default()).await?;
    ensure_eq!(events.len(), 1, "events after one transition");
    let event = &events[0];
    ensure_eq!(event.instance, "a", "the event's instance");
    ensure_eq!((event.from, event.to), (InstanceStatus::Running, InstanceStatus::Stopping), "the event's statuses");
    ensure_eq!(event.reason, evicted, "the event's reason");
    ensure_eq!(event.at, change.at, "the event's time");
    ensure_eq!((event.pid, event.port), (runtime.pid, runtime.port), "the event's pid and port (the runtime's)");
    Ok(())
}

/// `save_runtime` replaces the runtime and writes no event.
pub async fn save_runtime_writes_no_event(db: &dyn Database) -> Outcome {
    create_all(db, &["a"]).await?;
    let runtime = RuntimeRecord { desired_state: DesiredState::Running, ..RuntimeRecord::default() };
    db.save_runtime("a", &runtime).await?;
    let stored = db.get("a").await?.ok_or_else(|| Failure("get(\"a\") is None".into()))?;
    ensure_eq!(stored.runtime, runtime, "the runtime after save_runtime");
    ensure!(db.events("a", EventQuery::default()).await?.is_empty(), "save_runtime wrote an event");
    Ok(())
}

/// Every field of a runtime record (times whole to the millisecond) reads back as written,
/// through `get` and `load_all`, and a later write replaces all of it.
pub async fn runtime_records_come_back_as_written(db: &dyn Database) -> Outcome {
    create_all(db, &["a", "b"]).await?;
    let full = full_runtime()?;
    db.save_runtime("a", &full).await?;
    let stored = db.get("a").await?.ok_or_else(|| Failure("get(\"a\") is None".into()))?;
    ensure_eq!(stored.runtime, full, "get's runtime");
    let all = db.load_all().await?;
    ensure_eq!(all.first().map(|i| i.runtime.clone()), Some(full.clone()), "load_all's runtime of \"a\"");
    ensure_eq!(all.get(1).map(|i| i.runtime.clone()), Some(RuntimeRecord::default()), "another instance's runtime");
    let cleared = RuntimeRecord { status: InstanceStatus::Failed, ..RuntimeRecord::default() };
    db.save_runtime("a", &cleared).await?;
    let stored = db.get("a").await?.ok_or_else(|| Failure("get(\"a\") is None".into()))?;
    ensure_eq!(stored.runtime, cleared, "a later save_runtime replaces every field");
    Ok(())
}

/// `record_transition` and `save_runtime` of an instance that does not exist fail with
/// [`DbError::NotFound`] naming it, and write nothing.
pub async fn an_unknown_instance_has_no_runtime_to_write(db: &dyn Database) -> Outcome {
    let start =
        transition(InstanceStatus::Stopped, InstanceStatus::Starting, TransitionReason::OnDemand, 1_700_000_000_000)?;
    match db.record_transition("ghost", &RuntimeRecord::default(), &start).await {
        Err(DbError::NotFound(missing)) => {
            ensure_eq!(missing, "ghost", "NotFound of record_transition names the instance")
        }
        other => {
            return Err(Failure(format!("record_transition of an unknown instance answered {other:?}, want NotFound")));
        }
    }
    match db.save_runtime("ghost", &RuntimeRecord::default()).await {
        Err(DbError::NotFound(missing)) => ensure_eq!(missing, "ghost", "NotFound of save_runtime names the instance"),
        other => return Err(Failure(format!("save_runtime of an unknown instance answered {other:?}, want NotFound"))),
    }
    ensure!(db.load_all().await?.is_empty(), "writing the runtime of an unknown instance created it");
    Ok(())
}

/// An instance's events come oldest first with increasing ids, only its own; `after_id` and
/// `limit` page through them.
pub async fn events_are_in_id_order_and_paged(db: &dyn Database) -> Outcome {
    create_all(db, &["a", "b"]).await?;
    let reasons = [
        TransitionReason::UserStart,
        TransitionReason::Ready,
        TransitionReason::IdleTimeout,
        TransitionReason::OnDemand,
        TransitionReason::Shutdown,
    ];
    for (i, reason) in (0_i64..).zip(reasons.iter()) {
        let change =
            transition(InstanceStatus::Stopped, InstanceStatus::Starting, reason.clone(), 1_700_000_000_000 + i)?;
        db.record_transition("a", &RuntimeRecord::default(), &change).await?;
        db.record_transition("b", &RuntimeRecord::default(), &change).await?;
    }
    let all = db.events("a", EventQuery { after_id: None, limit: 100 }).await?;
    ensure_eq!(all.iter().map(|e| e.reason.clone()).collect::<Vec<_>>(), reasons.to_vec(), "a's events, oldest first");
    ensure!(all.iter().all(|e| e.instance == "a"), "a's events include another instance's: {all:?}");
    ensure!(
        all.windows(2).all(|w| w[0].id < w[1].id),
        "event ids do not increase: {:?}",
        all.iter().map(|e| e.id).collect::<Vec<_>>()
    );
    let first_two = db.events("a", EventQuery { after_id: None, limit: 2 }).await?;
    ensure_eq!(first_two, all[..2], "limit 2");
    let after = db.events("a", EventQuery { after_id: Some(all[1].id), limit: 100 }).await?;
    ensure_eq!(after, all[2..], "after the second event's id");
    let page = db.events("a", EventQuery { after_id: Some(all[1].id), limit: 2 }).await?;
    ensure_eq!(page, all[2..4], "after the second, limit 2");
    let last = all.last().map_or(0, |e| e.id);
    ensure!(
        db.events("a", EventQuery { after_id: Some(last), limit: 100 }).await?.is_empty(),
        "events after the last one"
    );
    ensure!(db.events("a", EventQuery { after_id: None, limit: 0 }).await?.is_empty(), "limit 0 answered events");
    ensure!(db.events("ghost", EventQuery::default()).await?.is_empty(), "events of an unknown instance");
    Ok(())
}

fn imported(
    instance: &str,
    desired_state: DesiredState,
    created_at: Option<DateTime<Utc>>,
) -> Result<ImportedInstance, Failure> {
    Ok(ImportedInstance { name: name(instance)?, options: options(instance)?, created_at, desired_state })
}

/// `import_instances` stores all of its instances or, if one name is taken (in the store or
/// earlier in the batch), none, failing with [`DbError::AlreadyExists`] naming the first.
pub async fn import_is_all_or_none(db: &dyn Database) -> Outcome {
    create_all(db, &["taken"]).await?;
    let batch = [
        imported("new1", DesiredState::Running, None)?,
        imported("taken", DesiredState::Stopped, None)?,
        imported("new2", DesiredState::Stopped, None)?,
    ];
    match db.import_instances(&batch).await {
        Err(DbError::AlreadyExists(taken)) => ensure_eq!(taken, "taken", "AlreadyExists names the taken instance"),
        other => return Err(Failure(format!("an import with a taken name answered {other:?}, want AlreadyExists"))),
    }
    ensure_eq!(db.load_all().await?.len(), 1, "instances after a refused import (nothing of it is kept)");
    let twice = [
        imported("x", DesiredState::Stopped, None)?,
        imported("y", DesiredState::Stopped, None)?,
        imported("x", DesiredState::Stopped, None)?,
    ];
    match db.import_instances(&twice).await {
        Err(DbError::AlreadyExists(taken)) => ensure_eq!(taken, "x", "AlreadyExists names the name given twice"),
        other => return Err(Failure(format!("an import naming \"x\" twice answered {other:?}, want AlreadyExists"))),
    }
    ensure_eq!(db.load_all().await?.len(), 1, "instances after an import naming one twice");
    db.import_instances(&batch[..1]).await?;
    db.import_instances(&[]).await?;
    let names: Vec<String> = db.load_all().await?.iter().map(|i| i.name.to_string()).collect();
    ensure_eq!(names, ["new1", "taken"], "instances after a good import");
    Ok(())
}

/// Imported instances keep their creation time (to the second; now if none) and desired
/// state, with the rest of the runtime default, and their options.
pub async fn import_keeps_creation_time_and_desired_state(db: &dyn Database) -> Outcome {
    let created = DateTime::from_timestamp(1_700_000_000, 0).ok_or_else(|| Failure("the suite's own time".into()))?;
    let before = Utc::now().timestamp();
    db.import_instances(&[
        imported("old", DesiredState::Running, Some(created))?,
        imported("new", DesiredState::Stopped, None)?,
    ])
    .await?;
    let old = db.get("old").await?.ok_or_else(|| Failure("get(\"old\") is None after import".into()))?;
    ensure_eq!(old.created_at, created, "the imported creation time");
    ensure_eq!(
        old.runtime,
        RuntimeRecord { desired_state: DesiredState::Running, ..RuntimeRecord::default() },
        "the imported runtime"
    );
    ensure_eq!(stored_options(db, "old").await?, options("old")?, "the imported options");
    let new = db.get("new").await?.ok_or_else(|| Failure("get(\"new\") is None after import".into()))?;
    ensure!(
        new.created_at.timestamp() >= before,
        "an import without a creation time is created now, not at {}",
        new.created_at
    );
    ensure_eq!(new.runtime, RuntimeRecord::default(), "the runtime of an import that should not run");
    Ok(())
}

/// Of concurrent creates of one name exactly one succeeds; the others fail with
/// [`DbError::AlreadyExists`].
pub async fn concurrent_creates_of_one_name_admit_one(db: &dyn Database) -> Outcome {
    let same = name("same")?;
    let candidates = (0..16).map(|i| options(&format!("m{i}"))).collect::<Result<Vec<_>, _>>()?;
    let answers = join_all(candidates.iter().map(|o| db.create(&same, o))).await;
    let mut created = 0;
    for answer in answers {
        match answer {
            Ok(_) => created += 1,
            Err(DbError::AlreadyExists(_)) => {}
            Err(other) => return Err(Failure(format!("a concurrent create answered {other}, want AlreadyExists"))),
        }
    }
    ensure_eq!(created, 1, "concurrent creates of one name that succeeded");
    ensure_eq!(db.load_all().await?.len(), 1, "instances after concurrent creates of one name");
    Ok(())
}

/// `manager_id` is not empty and is the same on every call.
pub async fn manager_id_is_stable(db: &dyn Database) -> Outcome {
    let first = db.manager_id().await?;
    ensure!(!first.is_empty(), "manager_id is empty");
    create_all(db, &["a"]).await?;
    ensure_eq!(db.manager_id().await?, first, "a second manager_id");
    Ok(())
}

/// `ping` answers an open database; after `close` the database's methods fail with
/// [`DbError::Closed`].
pub async fn a_closed_database_says_so(db: &dyn Database) -> Outcome {
    db.ping().await?;
    create_all(db, &["a"]).await?;
    db.close().await;
    let closed = |what: &str, answer: Result<(), DbError>| match answer {
        Err(DbError::Closed) => Ok(()),
        other => Err(Failure(format!("{what} after close answered {other:?}, want Closed"))),
    };
    closed("ping", db.ping().await)?;
    closed("load_all", db.load_all().await.map(drop))?;
    closed("get", db.get("a").await.map(drop))?;
    closed("create", db.create(&name("b")?, &options("b")?).await.map(drop))?;
    closed("save_runtime", db.save_runtime("a", &RuntimeRecord::default()).await)?;
    Ok(())
}
