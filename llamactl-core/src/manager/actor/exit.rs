//! A backend that ended by itself: its run is finished (output drained, group or container
//! gone), and the restart policy says whether it restarts, after which delay, or fails.

use chrono::Utc;
use tokio::time::Instant;

use super::{Actor, RestartDue};
use crate::logs::LogStream;
use crate::manager::restart_policy::{self, AfterExit, Ended, RestartPolicy};
use crate::runtime::RunExit;
use crate::{ExitInfo, InstanceStatus, TransitionReason};

/// Lines of a failed backend's output attached to its error.
const FAILURE_LOG_LINES: usize = 20;

/// The error message of a run that ended by itself, with its last output.
fn exit_message(cause: &TransitionReason, exit: ExitInfo, tail: &str) -> String {
    match cause {
        TransitionReason::OutOfMemory { .. } => format!("killed for lack of memory ({exit}); last output:\n{tail}"),
        TransitionReason::StartupExited { .. } => format!("exited while starting ({exit}); last output:\n{tail}"),
        _ => format!("crashed ({exit}); last output:\n{tail}"),
    }
}

impl Actor {
    /// Ends the current run after its process exited: drains its output, reaps its group, and
    /// returns the last lines it wrote, and whether the run was an automatic restart.
    pub(super) async fn finish_run(&mut self, exit: ExitInfo) -> (String, bool) {
        self.activity.close();
        let mut automatic = false;
        if let Some(mut run) = self.run.take() {
            automatic = run.automatic;
            run.process.finish(self.ctx.config().kill_timeout).await;
        }
        self.clear_process(exit);
        let tail: Vec<String> = self.logs.tail(FAILURE_LOG_LINES).iter().map(|l| l.text.clone()).collect();
        (tail.join("\n"), automatic)
    }

    /// The backend ended by itself (a stop is handled where it is asked): restarted later, or
    /// `failed`, as the restart policy decides.
    pub(super) async fn on_exit(&mut self, ended: RunExit) {
        let status = self.state.runtime.status;
        let exit = ended.exit;
        self.logs.push(LogStream::Manager, format!("process exited ({ended})"));
        let (tail, automatic) = self.finish_run(exit).await;
        let Some(settings) = self.settings() else {
            self.fail(TransitionReason::Crashed { exit }, format!("exited ({exit})")).await;
            return;
        };
        let runtime = &mut self.state.runtime;
        let ready_for = match status {
            InstanceStatus::Running => {
                runtime.ready_at.and_then(|t| (Utc::now() - t).to_std().ok()).unwrap_or_default()
            }
            _ => Default::default(),
        };
        let policy = RestartPolicy::new(&settings, &self.ctx.config());
        let ended = Ended { status, exit: ended, automatic, restarts: runtime.restart_count, ready_for };
        let decision = restart_policy::after_exit(&policy, &ended, restart_policy::random_jitter());
        runtime.restart_count = decision.restart_count;
        let message = exit_message(&decision.cause, exit, &tail);
        match decision.action {
            AfterExit::Fail { reason } | AfterExit::GiveUp { reason } => self.fail(reason, message).await,
            AfterExit::Restart { attempt, after, reason } => {
                runtime.last_error = Some(message);
                self.restart_due = Some(RestartDue { at: Instant::now() + after, attempt, delay: after });
                self.transition(InstanceStatus::Restarting, reason).await;
            }
        }
    }

    /// The restart delay is over: the backend is started again (the slot has been held since
    /// it ended; a failure is recorded by `spawn`).
    pub(super) async fn on_restart_due(&mut self) {
        let Some(RestartDue { attempt, delay, .. }) = self.restart_due.take() else { return };
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let _ = self.spawn(TransitionReason::RestartBackoff { attempt, delay_ms }, None, true).await;
    }
}
