//! At boot, the backends an earlier manager left running — killed, or shut down with the `keep`
//! policy — are taken over when they are exactly what their instance should run and they answer;
//! otherwise they are stopped and the usual boot policy applies. Either way the outcome is in
//! the event log (`adopted`, `adoption_refused`, `leftover_stopped`, ...).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;

use super::context::Context;
use crate::backend::{Listen, build_command};
use crate::db::{StoredInstance, Transition};
use crate::docker::LabelledContainer;
use crate::ports::PortLease;
use crate::process::{ProcessIdentity, command_hash, running_command_hash, terminate_group};
use crate::runtime::{RunIdentity, RuntimeKind};
use crate::{InstanceOptions, InstanceStatus, TransitionReason};

/// Readiness probes of a backend that was running, before it is given up on (3 s at most).
const PROBE_ATTEMPTS: u32 = 5;
const PROBE_PAUSE: Duration = Duration::from_millis(100);
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// A backend to take over, with the port and running slot it holds.
#[derive(Debug)]
pub(crate) struct Adoption {
    /// What is taken over: a local process (followed from its output file) or a container
    /// (found by this manager's label).
    pub(crate) run: RunIdentity,
    pub(crate) port: PortLease,
    pub(crate) listen: Listen,
    /// `running`, or `starting` (still loading: its readiness is awaited as after a start).
    pub(crate) status: InstanceStatus,
    /// Told once the takeover is recorded (the manager's boot waits for it).
    pub(crate) done: Option<tokio::sync::oneshot::Sender<()>>,
}

/// An instance at boot: taken over, or brought up to date (stopped or failed) for the usual
/// boot policy.
#[derive(Debug)]
pub(crate) enum Boot {
    Adopt(StoredInstance, Adoption),
    Fresh(StoredInstance),
}

/// Decides, for every stored instance, whether its backend is taken over.
/// Instances whose recorded backend is checked at the same time at boot.
const RECOVERY_CONCURRENCY: usize = 64;

pub(crate) async fn recover_all(ctx: &Context, stored: Vec<StoredInstance>) -> Vec<Boot> {
    let containers = labelled_containers(ctx, &stored).await;
    // Containers no instance can take over (not recorded, not running, instance gone) go now.
    let mut candidates: BTreeMap<String, LabelledContainer> = BTreeMap::new();
    let mut removed: BTreeMap<String, String> = BTreeMap::new();
    for container in containers {
        let recorded = stored.iter().any(|s| {
            s.name.as_str() == container.instance && s.runtime.container_id.as_deref() == Some(container.id.as_str())
        });
        if recorded && container.state == "running" {
            candidates.insert(container.instance.clone(), container);
            continue;
        }
        tracing::warn!(container = %container.name, instance = %container.instance, state = %container.state,
            "removing a container left by an earlier manager");
        if let Err(error) = ctx.runtime.docker().remove(&container.id).await {
            tracing::error!(container = %container.name, %error, "cannot remove leftover container");
        }
        removed.insert(container.instance.clone(), container.name);
    }
    // A few dozen at a time: checks of recorded backends still run side by side, but 10,000
    // instances do not all hold a pending check at once (a peak of tens of megabytes that
    // the allocator would keep).
    futures::stream::iter(stored.into_iter().map(|s| {
        let candidate = candidates.remove(s.name.as_str());
        let removed = removed.get(s.name.as_str()).cloned();
        recover(ctx, s, candidate, removed)
    }))
    .buffered(RECOVERY_CONCURRENCY)
    .collect()
    .await
}

/// The containers with this manager's label, when Docker is in use at all.
async fn labelled_containers(ctx: &Context, stored: &[StoredInstance]) -> Vec<LabelledContainer> {
    let in_use = ctx.config().docker.any_enabled()
        || stored.iter().any(|s| {
            s.runtime.container_id.is_some() || s.options.as_ref().is_ok_and(|o| o.docker_enabled == Some(true))
        });
    if !in_use {
        return Vec::new();
    }
    match ctx.runtime.docker().labelled_containers().await {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(%error, "cannot look for containers left by an earlier manager");
            Vec::new()
        }
    }
}

async fn recover(
    ctx: &Context,
    mut stored: StoredInstance,
    candidate: Option<LabelledContainer>,
    removed: Option<String>,
) -> Boot {
    let runtime = &stored.runtime;
    let mut reason = TransitionReason::ManagerRestarted;
    if let Some(container) = candidate {
        match check_container(ctx, &stored, &container).await {
            Ok(adoption) => return Boot::Adopt(stored, adoption),
            Err(why) => {
                tracing::warn!(instance = %stored.name, container = %container.name, %why, "not taking over a container");
                if let Err(error) = ctx.runtime.docker().remove(&container.id).await {
                    tracing::error!(container = %container.name, %error, "cannot remove a container");
                }
                reason = TransitionReason::AdoptionRefused { why };
            }
        }
    } else if let (Some(pid), Some(start_ticks)) = (runtime.pid, runtime.process_start_ticks) {
        let identity = ProcessIdentity { pid, start_ticks, boot_id: runtime.boot_id.clone() };
        // A pid reused by another process is not ours: never adopted, never signalled.
        if identity.is_running() {
            match check_process(ctx, &stored, identity).await {
                Ok(adoption) => return Boot::Adopt(stored, adoption),
                Err(why) => {
                    tracing::warn!(instance = %stored.name, pid, %why, "stopping a backend that cannot be taken over");
                    let outcome = terminate_group(pid, ctx.config().stop_grace, ctx.config().kill_timeout).await;
                    if !outcome.gone {
                        tracing::error!(instance = %stored.name, pid, "leftover backend survived SIGKILL");
                    }
                    reason = TransitionReason::AdoptionRefused { why };
                }
            }
        }
    }
    if let Some(container) = removed {
        reason = TransitionReason::LeftoverContainerRemoved { container };
    }
    settle(ctx, &mut stored, reason).await;
    Boot::Fresh(stored)
}

/// After a backend was not taken over: the record says no process runs, with the reason.
async fn settle(ctx: &Context, stored: &mut StoredInstance, reason: TransitionReason) {
    let runtime = &mut stored.runtime;
    let from = runtime.status;
    let had_run = runtime.pid.is_some() || runtime.container_id.is_some();
    let noteworthy = !matches!(reason, TransitionReason::ManagerRestarted);
    if !had_run && !from.holds_slot() && !noteworthy {
        return;
    }
    runtime.forget_run();
    if from.holds_slot() {
        runtime.stopped_at = Some(Utc::now());
    }
    let to = if from == InstanceStatus::Failed { InstanceStatus::Failed } else { InstanceStatus::Stopped };
    runtime.status = to;
    runtime.last_reason = Some(reason.clone());
    let transition = Transition { from, to, reason, at: Utc::now() };
    if let Err(error) = ctx.db.record_transition(stored.name.as_str(), runtime, &transition).await {
        tracing::error!(instance = %stored.name, %error, "cannot record recovery");
    }
}

/// The options, port and status every adoption needs.
fn basics<'a>(
    ctx: &Context,
    stored: &'a StoredInstance,
) -> Result<(&'a InstanceOptions, Listen, InstanceStatus), String> {
    let options = stored.options.as_ref().map_err(|e| format!("its stored options are invalid: {e}"))?;
    let port = stored.runtime.port.ok_or("no port was recorded")?;
    let host = options.backend.host().unwrap_or(&ctx.config().backend_host).to_owned();
    let status = match stored.runtime.status {
        status @ (InstanceStatus::Running | InstanceStatus::Starting) => status,
        other => return Err(format!("it was {other}")),
    };
    Ok((options, Listen { host, port }, status))
}

/// A running backend must answer its readiness endpoint (a few tries: it may be busy).
async fn answers(ctx: &Context, options: &InstanceOptions, listen: &Listen) -> Result<(), String> {
    let path = options.backend.as_backend().readiness_path();
    let uri: hyper::Uri = format!("{}{path}", listen.base_url()).parse().map_err(|e| format!("{e}"))?;
    for _ in 0..PROBE_ATTEMPTS {
        if ctx.probe.check(&uri, PROBE_TIMEOUT).await {
            return Ok(());
        }
        tokio::time::sleep(PROBE_PAUSE).await;
    }
    Err(format!("its readiness endpoint {uri} does not answer"))
}

/// The port and the running slot, held from now on.
fn hold(ctx: &Context, stored: &StoredInstance, options: &InstanceOptions, port: u16) -> Result<PortLease, String> {
    let name = stored.name.as_str();
    let lease = ctx.ports.adopt(name, port).map_err(|e| e.to_string())?;
    match ctx.slots.try_reserve(name, options.group.as_deref()) {
        Ok(slot) => slot.commit(),
        Err(limit) => return Err(format!("it would exceed the running limit ({limit})")),
    }
    Ok(lease)
}

async fn check_process(ctx: &Context, stored: &StoredInstance, identity: ProcessIdentity) -> Result<Adoption, String> {
    let (options, listen, status) = basics(ctx, stored)?;
    if ctx.runtime.kind_for(options) != RuntimeKind::Process {
        return Err("its options now say it runs in a container".into());
    }
    let output =
        stored.runtime.output_path.clone().ok_or("its output went to a pipe of the manager that started it")?;
    let expected = build_command(stored.name.as_str(), options, &ctx.config().backends, &listen)
        .map(|c| command_hash(&c.program, &c.args))
        .ok_or("its options give no command")?;
    let running = running_command_hash(identity.pid).ok_or("its command line cannot be read")?;
    if stored.runtime.command_hash.as_deref().is_some_and(|recorded| recorded != running) {
        return Err("it runs another command than the one recorded".into());
    }
    if running != expected {
        return Err("its options changed while no manager ran: it runs an older command line".into());
    }
    if status == InstanceStatus::Running {
        answers(ctx, options, &listen).await?;
    }
    let port = hold(ctx, stored, options, listen.port)?;
    let run = RunIdentity::Process { identity, command_hash: running, output: Some(output) };
    Ok(Adoption { run, port, listen, status, done: None })
}

async fn check_container(
    ctx: &Context,
    stored: &StoredInstance,
    container: &LabelledContainer,
) -> Result<Adoption, String> {
    let (options, listen, status) = basics(ctx, stored)?;
    if ctx.runtime.kind_for(options) != RuntimeKind::Docker {
        return Err("its options now say it runs as a local process".into());
    }
    let expected = crate::docker::spec::options_hash(&serde_json::to_string(&options.run_part()).unwrap_or_default());
    if container.options_hash != expected {
        return Err("its options changed while no manager ran".into());
    }
    if status == InstanceStatus::Running {
        answers(ctx, options, &listen).await?;
    }
    let port = hold(ctx, stored, options, listen.port)?;
    let run = RunIdentity::Container { id: container.id.clone(), name: container.name.clone(), options_hash: expected };
    Ok(Adoption { run, port, listen, status, done: None })
}
