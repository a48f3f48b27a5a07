//! The backend command line built from any valid options: never a panic, and never an argument
//! the operating system cannot take (a NUL byte).
#![no_main]

use libfuzzer_sys::fuzz_target;
use llamactl_core::InstanceOptions;
use llamactl_core::backend::{BackendsSettings, Listen, build_command};

fuzz_target!(|text: &str| {
    let Ok(options) = InstanceOptions::from_json(text) else { return };
    if options.validate().is_err() {
        return;
    }
    let listen = Listen { host: "127.0.0.1".into(), port: 8001 };
    let Some(command) = build_command("fuzz", &options, &BackendsSettings::default(), &listen) else { return };
    assert!(!command.program.contains('\0'), "program with NUL: {:?}", command.program);
    for arg in &command.args {
        assert!(!arg.contains('\0'), "argument with NUL: {arg:?}");
    }
    // The log line of the start is one line whatever the arguments hold.
    assert!(!command.to_string().contains('\n'), "{command}");
});
