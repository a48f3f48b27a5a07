//! llamactl-server as a library: configuration, the one-time import of the Go llamactl's JSON
//! instance files, the REST API, the OpenAI-compatible proxy, request activity and authentication. The binary in
//! `main.rs` only parses its arguments and calls [`app::run`].

pub mod activity;
pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod dashboard;
pub mod declared;
pub mod legacy_import;
pub mod proxy;
pub mod resource_history;
pub mod serve;
pub mod state;
