//! A legacy (Go llamactl) instance file with any content: an error naming the problem or an
//! instance to import with valid options, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let path = std::path::Path::new("instances/fuzz.json");
    if let Ok(instance) = llamactl_server::legacy_import::parse_legacy_file(path, bytes) {
        assert!(instance.options.validate().is_ok(), "an imported instance must have valid options");
    }
});
