//! Instance options from any JSON text: never a panic; what parses and validates writes back
//! to JSON that parses to the same options.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llamactl_core::InstanceOptions;

fuzz_target!(|text: &str| {
    let Ok(options) = InstanceOptions::from_json(text) else { return };
    if options.validate().is_err() {
        return;
    }
    let written = options.to_json_value();
    let again = InstanceOptions::from_json_value(&written).expect("written options parse again");
    assert_eq!(again, options, "options change through their JSON: {written}");
});
