//! Taking over a backend an earlier manager left running (found and checked at boot by
//! `manager/adoption.rs`): no new start; a running one serves at once, a starting one is
//! awaited as after a start.

use chrono::Utc;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Actor, Run};
use crate::InstanceStatus;
use crate::TransitionReason;
use crate::logs::LogStream;
use crate::manager::adoption::Adoption;
use crate::manager::state::Serving;

/// Tells a waiter when dropped.
struct DoneOnDrop(Option<oneshot::Sender<()>>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        if let Some(done) = self.0.take() {
            let _ = done.send(());
        }
    }
}

impl Actor {
    /// Takes over the backend through the runtime that runs the instance, and records it as
    /// `adopted` (or `failed` with the reason when the runtime cannot take it).
    pub(super) async fn on_adopted(&mut self, adoption: Adoption) {
        let Adoption { run, port, listen, status, done } = adoption;
        // However the takeover ends, the boot waiting for it goes on.
        let _done = DoneOnDrop(done);
        let Ok(options) = self.state.options.clone() else { return };
        let process = match self.ctx.runtime.for_options(&options).adopt(run, self.logs.clone()).await {
            Ok(process) => process,
            Err(error) => {
                let why = error.to_string();
                self.fail(TransitionReason::AdoptionRefused { why: why.clone() }, why).await;
                return;
            }
        };
        let settings = self.ctx.config().defaults.apply(&options);
        let (ready, probe) =
            if status == InstanceStatus::Starting { self.start_probe(&options, &listen) } else { (None, None) };
        // A starting backend keeps the rest of its startup time.
        let loading = self.state.runtime.started_at.and_then(|t| (Utc::now() - t).to_std().ok()).unwrap_or_default();
        let startup_deadline = Instant::now() + settings.startup_timeout.saturating_sub(loading);
        let description = process.identity().to_string();
        process.identity().record_in(&mut self.state.runtime);
        self.state.runtime.port = Some(listen.port);
        self.state.listen = Some(listen);
        self.state.serving = Some(Serving::of(&options));
        self.run = Some(Run { process, _port: port, ready, probe, startup_deadline, automatic: false });
        self.logs.push(LogStream::Manager, format!("took over {description}, left running by an earlier manager"));
        if status == InstanceStatus::Running {
            self.activity.open();
        }
        self.transition(status, TransitionReason::Adopted).await;
    }
}
