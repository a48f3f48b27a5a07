//! A pasted command line for each backend: never a panic; what it gives is read as options
//! without a panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llamactl_core::BackendType;
use llamactl_core::options::parse_command;

fuzz_target!(|text: &str| {
    for backend in [BackendType::LlamaCpp, BackendType::MlxLm, BackendType::Vllm] {
        if let Ok(map) = parse_command(backend, text) {
            let value = serde_json::json!({"backend_type": backend.as_str(), "backend_options": map});
            let _ = llamactl_core::InstanceOptions::from_json_value(&value);
        }
    }
});
