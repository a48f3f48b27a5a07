//! The conformance suite: the rules an implementation of [`Database`], [`ApiKeyStore`] and
//! [`ActivityStore`] must keep, checked through the traits alone, each rule a named function.
//!
//! Run it from a test of your implementation, with a function that makes a new, empty store
//! for each rule (every rule gets its own, closed after it):
//!
//! ```
//! use llamactl_core::MemoryDatabase;
//! use llamactl_core::testing::conformance::{
//!     activity_store_conformance, api_key_store_conformance, database_conformance,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! database_conformance(async || MemoryDatabase::new()).await;
//! api_key_store_conformance(async || MemoryDatabase::new()).await;
//! activity_store_conformance(async || MemoryDatabase::new()).await;
//! # }
//! ```
//!
//! Each runner runs every rule and panics naming each one that broke, with what it saw
//! (`database rule delete_removes_the_instance: get("a") after delete is Some`). To look at
//! the broken rules without a panic, use [`check_database`], [`check_api_key_store`] and
//! [`check_activity_store`]; to run one rule, call its function in [`database`], [`api_keys`]
//! or [`activity`].
//!
//! The rules are what the traits' documentation promises, and what llamactl relies on:
//! durable answers are not checked (that needs a crash), nor anything only SQLite's files
//! have (the Go llamactl's tables, the file lock).

use std::fmt;

use crate::db::ActivityStore;
use crate::{ApiKeyStore, Database, DbError, NameError, OptionsError};

pub mod activity;
pub mod api_keys;
pub mod database;

/// How a rule is broken: what was seen instead of what the rule wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<DbError> for Failure {
    fn from(error: DbError) -> Self {
        Self(format!("unexpected error: {error}"))
    }
}

impl From<NameError> for Failure {
    fn from(error: NameError) -> Self {
        Self(format!("the suite's own instance name is refused: {error}"))
    }
}

impl From<OptionsError> for Failure {
    fn from(error: OptionsError) -> Self {
        Self(format!("the suite's own options are refused: {error}"))
    }
}

/// What a rule's function answers: `Ok` if the rule holds.
pub type Outcome = Result<(), Failure>;

/// A broken rule: its name (the name of its function) and how it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule's function, e.g. `"delete_removes_the_instance"`.
    pub rule: &'static str,
    /// What went wrong.
    pub failure: Failure,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.failure)
    }
}

/// Returns a [`Failure`] from the rule unless `$cond` holds.
macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err($crate::testing::conformance::Failure(format!($($message)+)));
        }
    };
}

/// Returns a [`Failure`] showing both values from the rule unless they are equal.
macro_rules! ensure_eq {
    ($seen:expr, $wanted:expr, $($message:tt)+) => {{
        let (seen, wanted) = (&$seen, &$wanted);
        if seen != wanted {
            return Err($crate::testing::conformance::Failure(format!(
                "{}: got {:?}, want {:?}",
                format!($($message)+),
                seen,
                wanted
            )));
        }
    }};
}

pub(crate) use {ensure, ensure_eq};

/// Runs each named rule on a new store from `$make` (closed after it), collecting violations.
macro_rules! run_rules {
    ($make:ident, $violations:ident, $call:expr, [$($rule:path),+ $(,)?]) => {
        $(
            let store = $make().await;
            if let Err(failure) = $call(&store, $rule).await {
                $violations.push(Violation { rule: last_segment(stringify!($rule)), failure });
            }
            Database::close(&store).await;
        )+
    };
}

fn last_segment(path: &'static str) -> &'static str {
    path.rsplit("::").next().unwrap_or(path).trim()
}

fn panic_on(kind: &str, violations: &[Violation]) {
    if violations.is_empty() {
        return;
    }
    let lines: Vec<String> = violations.iter().map(|v| format!("{kind} rule {v}")).collect();
    panic!("{} {kind} rule(s) broke:\n{}", violations.len(), lines.join("\n"));
}

/// Checks every [`Database`] rule (the functions of [`database`]) on a new store from `make`
/// each, and returns the broken ones (empty when all hold).
pub async fn check_database<D, F>(make: F) -> Vec<Violation>
where
    D: Database,
    F: AsyncFn() -> D,
{
    async fn call<D: Database, R: AsyncFn(&dyn Database) -> Outcome>(store: &D, rule: R) -> Outcome {
        rule(store).await
    }
    let mut violations = Vec::new();
    run_rules!(
        make,
        violations,
        call,
        [
            database::create_stores_a_stopped_instance,
            database::create_refuses_a_taken_name,
            database::ids_are_never_reused,
            database::save_inserts_or_replaces_the_options,
            database::get_of_an_unknown_name_is_none,
            database::load_all_is_in_name_order,
            database::delete_removes_the_instance,
            database::delete_takes_the_events_with_it,
            database::record_transition_writes_the_runtime_and_an_event,
            database::save_runtime_writes_no_event,
            database::runtime_records_come_back_as_written,
            database::an_unknown_instance_has_no_runtime_to_write,
            database::events_are_in_id_order_and_paged,
            database::import_is_all_or_none,
            database::import_keeps_creation_time_and_desired_state,
            database::concurrent_creates_of_one_name_admit_one,
            database::manager_id_is_stable,
            database::a_closed_database_says_so,
        ]
    );
    violations
}

/// Checks every [`ApiKeyStore`] rule (the functions of [`api_keys`]) on a new store from
/// `make` each, and returns the broken ones (empty when all hold). The store is a
/// [`Database`] too: rights name its instances.
pub async fn check_api_key_store<D, F>(make: F) -> Vec<Violation>
where
    D: Database + ApiKeyStore,
    F: AsyncFn() -> D,
{
    async fn call<D, R>(store: &D, rule: R) -> Outcome
    where
        D: Database + ApiKeyStore,
        R: AsyncFn(&dyn Database, &dyn ApiKeyStore) -> Outcome,
    {
        rule(store, store).await
    }
    let mut violations = Vec::new();
    run_rules!(
        make,
        violations,
        call,
        [
            api_keys::a_created_key_is_found_by_id_and_lookup_id,
            api_keys::keys_are_listed_by_id,
            api_keys::rights_come_back_as_given_in_name_order,
            api_keys::a_key_naming_an_unknown_instance_is_not_stored,
            api_keys::lookup_ids_are_unique,
            api_keys::a_new_token_replaces_the_lookup_id,
            api_keys::an_unknown_key_gets_no_token,
            api_keys::touch_records_the_last_use,
            api_keys::delete_removes_the_key,
            api_keys::rights_go_with_their_instance,
            api_keys::keys_made_here_are_not_legacy,
            api_keys::a_closed_store_says_so,
        ]
    );
    violations
}

/// Checks every [`ActivityStore`] rule (the functions of [`activity`]) on a new store from
/// `make` each, and returns the broken ones (empty when all hold).
pub async fn check_activity_store<D, F>(make: F) -> Vec<Violation>
where
    D: Database + ActivityStore,
    F: AsyncFn() -> D,
{
    async fn call<D, R>(store: &D, rule: R) -> Outcome
    where
        D: Database + ActivityStore,
        R: AsyncFn(&dyn ActivityStore) -> Outcome,
    {
        rule(store).await
    }
    let mut violations = Vec::new();
    run_rules!(
        make,
        violations,
        call,
        [
            activity::records_come_back_as_written,
            activity::queries_page_and_filter,
            activity::stats_are_the_summary_of_the_records,
            activity::prune_keeps_the_newest,
        ]
    );
    violations
}

/// Checks every [`Database`] rule on a new store from `make` each, and panics naming every
/// broken rule.
///
/// # Panics
///
/// If a rule is broken.
pub async fn database_conformance<D, F>(make: F)
where
    D: Database,
    F: AsyncFn() -> D,
{
    panic_on("database", &check_database(make).await);
}

/// Checks every [`ApiKeyStore`] rule on a new store from `make` each, and panics naming every
/// broken rule.
///
/// # Panics
///
/// If a rule is broken.
pub async fn api_key_store_conformance<D, F>(make: F)
where
    D: Database + ApiKeyStore,
    F: AsyncFn() -> D,
{
    panic_on("API key store", &check_api_key_store(make).await);
}

/// Checks every [`ActivityStore`] rule on a new store from `make` each, and panics naming every
/// broken rule.
///
/// # Panics
///
/// If a rule is broken.
pub async fn activity_store_conformance<D, F>(make: F)
where
    D: Database + ActivityStore,
    F: AsyncFn() -> D,
{
    panic_on("activity store", &check_activity_store(make).await);
}
