//! The server's configuration file with any content: an error or a configuration, never a
//! panic. (The process's own LLAMACTL_* variables take part, as they do for the server.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let path = std::env::temp_dir().join(format!("llamactl-fuzz-config-{}.yaml", std::process::id()));
    if std::fs::write(&path, bytes).is_err() {
        return;
    }
    let _ = llamactl_server::config::load(Some(&path));
});
