//! The restart policy, row by row: no process, no clock, no randomness.

use std::time::Duration;

use chrono::{TimeZone, Utc};

use super::*;
use crate::ExitInfo;

const S: Duration = Duration::from_secs(1);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// auto_restart, max_restarts 3, restart_delay 1 s, at most 300 s, series reset after 60 s.
fn policy() -> RestartPolicy {
    RestartPolicy {
        auto_restart: true,
        max_restarts: 3,
        restart_delay: S,
        max_restart_delay: secs(300),
        reset_after: secs(60),
    }
}

const CODE_1: ExitInfo = ExitInfo { code: Some(1), signal: None };
const KILLED: ExitInfo = ExitInfo { code: None, signal: Some(9) };
const OOM: RunExit = RunExit { exit: ExitInfo { code: Some(137), signal: None }, oom_killed: true };

fn exit(exit: ExitInfo) -> RunExit {
    RunExit { exit, oom_killed: false }
}

/// A run that was ready for `ready_for` and crashed with exit code 1 after `restarts` restarts.
fn crashed(restarts: u32, ready_for: Duration) -> Ended {
    Ended { status: InstanceStatus::Running, exit: exit(CODE_1), automatic: false, restarts, ready_for }
}

/// A run that exited with code 1 before it was ready.
fn exited_starting(restarts: u32, automatic: bool) -> Ended {
    Ended { status: InstanceStatus::Starting, exit: exit(CODE_1), automatic, restarts, ready_for: Duration::ZERO }
}

fn restart(attempt: u32, after: Duration, reason: TransitionReason) -> AfterExit {
    AfterExit::Restart { attempt, after, reason }
}

fn fail(reason: TransitionReason) -> AfterExit {
    AfterExit::Fail { reason }
}

fn give_up(restarts: u32, exit: ExitInfo) -> AfterExit {
    AfterExit::GiveUp { reason: TransitionReason::GaveUp { restarts, exit } }
}

const CRASHED: TransitionReason = TransitionReason::Crashed { exit: CODE_1 };
const STARTUP_EXITED: TransitionReason = TransitionReason::StartupExited { exit: CODE_1 };

#[test]
fn the_decision_after_an_exit() {
    let no_auto = RestartPolicy { auto_restart: false, ..policy() };
    let no_restarts = RestartPolicy { max_restarts: 0, ..policy() };
    let slow = RestartPolicy { restart_delay: secs(200), ..policy() };
    let too_slow = RestartPolicy { restart_delay: secs(600), ..policy() };
    let instant = RestartPolicy { restart_delay: Duration::ZERO, ..policy() };
    let many = RestartPolicy { max_restarts: 100, ..policy() };
    let short = ms(500);
    // (what, policy, ended, jitter, restart count recorded, action)
    let rows: Vec<(&str, RestartPolicy, Ended, f64, u32, AfterExit)> = vec![
        (
            "a ready backend that crashes restarts after the base delay",
            policy(),
            crashed(0, short),
            0.0,
            1,
            restart(1, S, CRASHED),
        ),
        (
            "the second restart in a row waits twice as long",
            policy(),
            crashed(1, short),
            0.0,
            2,
            restart(2, secs(2), CRASHED),
        ),
        ("the third, four times", policy(), crashed(2, short), 0.0, 3, restart(3, secs(4), CRASHED)),
        ("after max_restarts in a row it gives up", policy(), crashed(3, short), 0.0, 3, give_up(3, CODE_1)),
        ("and keeps giving up past it", policy(), crashed(7, short), 0.0, 7, give_up(7, CODE_1)),
        ("ready for restart_reset_after: a new series", policy(), crashed(3, secs(60)), 0.0, 1, restart(1, S, CRASHED)),
        ("ready for longer still: a new series", policy(), crashed(2, secs(3600)), 0.0, 1, restart(1, S, CRASHED)),
        ("ready just short of it: the series goes on", policy(), crashed(3, secs(59)), 0.0, 3, give_up(3, CODE_1)),
        (
            "a first start that exits is reported, not retried",
            policy(),
            exited_starting(0, false),
            0.0,
            0,
            fail(STARTUP_EXITED),
        ),
        (
            "a user's start that exits keeps the count",
            policy(),
            exited_starting(2, false),
            0.0,
            2,
            fail(STARTUP_EXITED),
        ),
        (
            "a restart that exits while starting is retried",
            policy(),
            exited_starting(1, true),
            0.0,
            2,
            restart(2, secs(2), STARTUP_EXITED),
        ),
        ("until max_restarts", policy(), exited_starting(3, true), 0.0, 3, give_up(3, CODE_1)),
        (
            "no series reset for a backend that was not ready",
            policy(),
            Ended { ready_for: secs(3600), ..exited_starting(3, true) },
            0.0,
            3,
            give_up(3, CODE_1),
        ),
        (
            "a crash of an automatic restart that became ready",
            policy(),
            Ended { automatic: true, ..crashed(1, short) },
            0.0,
            2,
            restart(2, secs(2), CRASHED),
        ),
        ("without auto_restart a crash fails", no_auto, crashed(0, short), 0.0, 0, fail(CRASHED)),
        (
            "without auto_restart a long-lived crash fails with the count reset",
            no_auto,
            crashed(2, secs(120)),
            0.0,
            0,
            fail(CRASHED),
        ),
        (
            "without auto_restart an automatic restart's exit fails",
            no_auto,
            exited_starting(1, true),
            0.0,
            1,
            fail(STARTUP_EXITED),
        ),
        ("max_restarts 0: a crash gives up at once", no_restarts, crashed(0, short), 0.0, 0, give_up(0, CODE_1)),
        ("max_restarts 0: even after a long run", no_restarts, crashed(0, secs(3600)), 0.0, 0, give_up(0, CODE_1)),
        (
            "max_restarts 0: a first start still just fails",
            no_restarts,
            exited_starting(0, false),
            0.0,
            0,
            fail(STARTUP_EXITED),
        ),
        (
            "out of memory while ready: restarted, said so",
            policy(),
            Ended { exit: OOM, ..crashed(0, short) },
            0.0,
            1,
            restart(1, S, TransitionReason::OutOfMemory { exit: OOM.exit }),
        ),
        (
            "out of memory while starting: said so, not retried",
            policy(),
            Ended { exit: OOM, ..exited_starting(0, false) },
            0.0,
            0,
            fail(TransitionReason::OutOfMemory { exit: OOM.exit }),
        ),
        (
            "out of memory, given up on: the exit is kept",
            policy(),
            Ended { exit: OOM, ..crashed(3, short) },
            0.0,
            3,
            give_up(3, OOM.exit),
        ),
        (
            "killed by a signal",
            policy(),
            Ended { exit: exit(KILLED), ..crashed(0, short) },
            0.0,
            1,
            restart(1, S, TransitionReason::Crashed { exit: KILLED }),
        ),
        (
            "an unknown exit (a backend taken over)",
            policy(),
            Ended { exit: RunExit::default(), ..crashed(0, short) },
            0.0,
            1,
            restart(1, S, TransitionReason::Crashed { exit: ExitInfo::default() }),
        ),
        ("the jitter adds up to a quarter", policy(), crashed(0, short), 0.25, 1, restart(1, ms(1250), CRASHED)),
        ("a tenth", policy(), crashed(1, short), 0.1, 2, restart(2, ms(2200), CRASHED)),
        ("never more than a quarter", policy(), crashed(0, short), 1.0, 1, restart(1, ms(1250), CRASHED)),
        ("never less than nothing", policy(), crashed(0, short), -0.5, 1, restart(1, S, CRASHED)),
        ("a jitter that is not a number is none", policy(), crashed(0, short), f64::NAN, 1, restart(1, S, CRASHED)),
        ("the delay is capped", slow, crashed(1, short), 0.0, 2, restart(2, secs(300), CRASHED)),
        ("and the jitter does not go beyond the cap", slow, crashed(1, short), 0.25, 2, restart(2, secs(300), CRASHED)),
        ("a base above the cap is capped too", too_slow, crashed(0, short), 0.25, 1, restart(1, secs(300), CRASHED)),
        ("a zero delay restarts at once", instant, crashed(2, short), 0.25, 3, restart(3, Duration::ZERO, CRASHED)),
        (
            "a long series reaches the cap and stays there",
            many,
            crashed(40, short),
            0.0,
            41,
            restart(41, secs(300), CRASHED),
        ),
    ];
    for (what, policy, ended, jitter, restart_count, action) in rows {
        let decision = after_exit(&policy, &ended, jitter);
        assert_eq!(decision.action, action, "{what}");
        assert_eq!(decision.restart_count, restart_count, "{what}: restart count");
        assert_eq!(decision.cause, exit_cause(ended.status, ended.exit), "{what}: cause");
    }
}

#[test]
fn the_cause_of_an_exit() {
    let rows = [
        (InstanceStatus::Running, exit(CODE_1), CRASHED),
        (InstanceStatus::Starting, exit(CODE_1), STARTUP_EXITED),
        (InstanceStatus::Running, OOM, TransitionReason::OutOfMemory { exit: OOM.exit }),
        (InstanceStatus::Starting, OOM, TransitionReason::OutOfMemory { exit: OOM.exit }),
        (InstanceStatus::Running, exit(KILLED), TransitionReason::Crashed { exit: KILLED }),
    ];
    for (status, ended, cause) in rows {
        assert_eq!(exit_cause(status, ended), cause, "{status} {ended}");
    }
}

#[test]
fn backoff_doubles_from_the_base_up_to_the_cap() {
    let hour = secs(3600);
    // (base, attempt, cap, jitter, delay)
    let rows = [
        (ms(100), 1, hour, 0.0, ms(100)),
        (ms(100), 2, hour, 0.0, ms(200)),
        (ms(100), 3, hour, 0.0, ms(400)),
        (ms(100), 6, hour, 0.0, ms(3200)),
        (ms(100), 1, hour, 0.25, ms(125)),
        (ms(100), 3, hour, 0.25, ms(500)),
        (S, 0, hour, 0.0, S),
        (S, 40, secs(10), 0.0, secs(10)),
        (S, 40, secs(10), 0.25, secs(10)),
        (secs(8), 1, secs(9), 0.25, secs(9)),
        (Duration::ZERO, 5, secs(10), 0.25, Duration::ZERO),
        (secs(366 * 24 * 3600), u32::MAX, secs(10), 0.25, secs(10)),
        (S, 30, Duration::MAX, 0.0, secs(1 << 20)),
        (Duration::MAX, 2, Duration::MAX, 0.25, Duration::MAX),
    ];
    for (base, attempt, cap, jitter, delay) in rows {
        assert_eq!(
            backoff(base, attempt, cap, jitter),
            delay,
            "{base:?} attempt {attempt} cap {cap:?} jitter {jitter}"
        );
    }
}

#[test]
fn restart_delay_grows_exponentially_from_the_base_within_the_jitter() {
    let base = ms(100);
    for attempt in 1..=6 {
        let nominal = base * (1 << (attempt - 1));
        for _ in 0..50 {
            let d = restart_delay(base, attempt, hour());
            assert!(d >= nominal && d <= nominal.mul_f64(1.25), "attempt {attempt}: {d:?}");
        }
    }
}

fn hour() -> Duration {
    secs(3600)
}

#[test]
fn restart_delay_is_capped_and_never_overflows() {
    let cap = secs(10);
    assert!(restart_delay(S, 40, cap) <= cap);
    assert_eq!(restart_delay(Duration::ZERO, 5, cap), Duration::ZERO);
    assert!(restart_delay(secs(366 * 24 * 3600), u32::MAX, cap) <= secs(366 * 24 * 3600));
    for _ in 0..100 {
        let jitter = random_jitter();
        assert!((0.0..=MAX_JITTER).contains(&jitter), "{jitter}");
    }
}

#[test]
fn a_policy_takes_the_instance_settings_and_the_manager_limits() {
    let settings =
        InstanceSettings { auto_restart: false, max_restarts: 7, restart_delay: secs(2), ..Default::default() };
    let config =
        ManagerConfig { max_restart_delay: secs(30), restart_reset_after: secs(90), ..ManagerConfig::default() };
    assert_eq!(
        RestartPolicy::new(&settings, &config),
        RestartPolicy {
            auto_restart: false,
            max_restarts: 7,
            restart_delay: secs(2),
            max_restart_delay: secs(30),
            reset_after: secs(90),
        }
    );
}

#[test]
fn an_on_demand_start_after_a_failed_one_waits_for_the_restart_delay() {
    let now = Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).single().expect("a valid time");
    let ago = |d: Duration| Some(now - chrono::Duration::from_std(d).expect("a short duration"));
    let five = InstanceSettings { restart_delay: secs(5), ..Default::default() };
    let zero = InstanceSettings { restart_delay: Duration::ZERO, ..Default::default() };
    // (what, settings, failed at, decision)
    let rows = [
        ("failed just now", Some(&five), ago(Duration::ZERO), OnDemand::RetryAfter(secs(5))),
        ("failed a second ago", Some(&five), ago(S), OnDemand::RetryAfter(secs(4))),
        ("failed 4.5 s ago", Some(&five), ago(ms(4500)), OnDemand::RetryAfter(ms(500))),
        ("failed exactly restart_delay ago", Some(&five), ago(secs(5)), OnDemand::StartNow),
        ("failed long ago", Some(&five), ago(secs(3600)), OnDemand::StartNow),
        ("the time of the failure is unknown", Some(&five), None, OnDemand::StartNow),
        (
            "a failure in the future (the clock went back)",
            Some(&five),
            Some(now + chrono::Duration::seconds(3)),
            OnDemand::StartNow,
        ),
        ("no restart delay", Some(&zero), ago(Duration::ZERO), OnDemand::StartNow),
        ("invalid options: no settings, no cooldown", None, ago(Duration::ZERO), OnDemand::StartNow),
    ];
    for (what, settings, failed_at, decision) in rows {
        assert_eq!(after_failed_start(settings, failed_at, now), decision, "{what}");
    }
}
