//! # llamactl-api
//!
//! The wire types of llamactl-server's REST API ([`types`]) and a typed [`Client`] for it. The
//! server builds its answers and its OpenAPI document (feature `openapi`) from these types; the
//! `llamactl` command and other Rust programs read them back with the same types.

#![warn(missing_docs)]

pub mod activity;
mod client;
pub mod reload;
pub mod resources;
pub mod router;
pub mod types;

pub use client::{Answer, Client, ClientError, Lifecycle, ServerEvent, install_tls_provider, is_temporary};
