//! Delays between automatic restarts: exponential from the instance's `restart_delay`, capped,
//! with up to 25 % random jitter on top so that instances that crashed together do not restart
//! in lockstep.

use std::time::Duration;

use rand::RngExt;

/// The delay before restart number `attempt` (from 1).
///
/// ```
/// use std::time::Duration;
/// use llamactl_core::manager::restart_delay;
/// let d = restart_delay(Duration::from_secs(2), 3, Duration::from_secs(300));
/// assert!(d >= Duration::from_secs(8) && d <= Duration::from_secs(10));
/// ```
pub fn restart_delay(base: Duration, attempt: u32, cap: Duration) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let nominal = base.saturating_mul(1u32 << exponent).min(cap);
    let jitter = rand::rng().random_range(0.0..=0.25);
    nominal.mul_f64(1.0 + jitter).min(cap.max(nominal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_from_the_base_within_the_jitter() {
        let base = Duration::from_millis(100);
        for attempt in 1..=6 {
            let nominal = base * (1 << (attempt - 1));
            for _ in 0..50 {
                let d = restart_delay(base, attempt, Duration::from_secs(3600));
                assert!(d >= nominal && d <= nominal.mul_f64(1.25), "attempt {attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn is_capped_and_never_overflows() {
        let cap = Duration::from_secs(10);
        assert!(restart_delay(Duration::from_secs(1), 40, cap) <= cap);
        assert_eq!(restart_delay(Duration::ZERO, 5, cap), Duration::ZERO);
        assert!(
            restart_delay(Duration::from_secs(366 * 24 * 3600), u32::MAX, cap) <= Duration::from_secs(366 * 24 * 3600)
        );
    }
}
