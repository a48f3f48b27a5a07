//! One module per group of commands.

pub mod editor;
pub mod instance;
pub mod key;
pub mod misc;
pub mod options;
pub mod wait;
