//! Instances declared in configuration: `instances.definitions` of the configuration file and
//! the `*.yaml` files of `instances.definitions_dir`, with `templates` they extend. The files
//! are never written by llamactl; the database follows them. At start and at every reload the
//! declarations are read ([`read`]), merged over their templates ([`templates`]), compared with
//! what the manager holds into a plan ([`plan`], pure), and the plan is carried out ([`apply`]);
//! [`reload`] puts these together, one reload at a time, for the API, SIGHUP and the file
//! watch ([`watch`]).
//!
//! A declared instance carries `declared_in` (the file) in its options; the API refuses to
//! change or delete it (409 naming the file). Instances created over the API are never touched
//! by a reload.

pub mod apply;
pub mod plan;
pub mod read;
pub mod reload;
pub mod templates;
pub mod watch;

pub use reload::{Outcome, ReloadReport, Reloader, Trigger};
