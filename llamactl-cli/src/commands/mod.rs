//! One module per group of commands.

pub mod activity;
pub mod config;
pub mod editor;
pub mod inflight;
pub mod instance;
pub mod key;
pub mod misc;
pub mod options;
pub mod router_models;
pub mod top;
pub mod wait;
