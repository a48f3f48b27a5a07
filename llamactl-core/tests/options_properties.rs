//! Property tests of option parsing and command-line building: no input panics, parsing what
//! was written gives back the same options, and the command line is a pure function of them.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use llamactl_core::backend::{BackendsSettings, Listen, build_command};
use llamactl_core::options::{BackendOptions, FlashAttention, GpuLayers, LlamaCppOptions, MlxLmOptions, VllmOptions};
use llamactl_core::{InstanceOptions, InstanceStatus};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Keys the parser knows, mixed with random ones, so that random values hit typed fields.
fn option_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "model",
            "m",
            "c",
            "ctx_size",
            "ngl",
            "gpu_layers",
            "port",
            "host",
            "fa",
            "lora",
            "jinja",
            "tp",
            "served_model_name",
            "command",
            "args",
            "health_path",
            "extra_args",
            "temp",
            "max_model_len",
        ])
        .prop_map(str::to_owned),
        "[a-z][a-z_]{0,8}",
    ]
}

fn instance_json() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["llama_cpp", "mlx_lm", "vllm", "custom", "other"]),
        prop::collection::btree_map(option_key(), any_json(), 0..8),
        prop::collection::btree_map(
            prop::sample::select(vec![
                "auto_restart",
                "max_restarts",
                "restart_delay",
                "idle_timeout",
                "environment",
                "nodes",
                "group",
                "x",
            ]),
            any_json(),
            0..5,
        ),
    )
        .prop_map(|(backend, backend_options, top)| {
            let mut map: Map<String, Value> = top.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            map.insert("backend_type".into(), Value::from(backend));
            map.insert("backend_options".into(), Value::Object(backend_options.into_iter().collect()));
            Value::Object(map)
        })
}

fn text() -> impl Strategy<Value = String> {
    "[ -~]{1,16}".prop_filter("non-blank", |s| !s.trim().is_empty())
}

/// Typed options generated directly, including explicit zeros and falses.
fn typed_options() -> impl Strategy<Value = InstanceOptions> {
    let llama = (
        text(),
        prop::option::of(any::<u32>()),
        prop::option::of(prop_oneof![
            any::<i32>().prop_map(GpuLayers::Count),
            Just(GpuLayers::Auto),
            Just(GpuLayers::All)
        ]),
        prop::option::of(prop::sample::select(vec![FlashAttention::On, FlashAttention::Off, FlashAttention::Auto])),
        prop::option::of(any::<bool>()),
        prop::option::of(prop::collection::vec(text(), 0..3)),
        prop::option::of(1u16..),
    )
        .prop_map(|(model, ctx, ngl, fa, jinja, lora, port)| {
            BackendOptions::LlamaCpp(LlamaCppOptions {
                model: Some(model),
                ctx_size: ctx,
                gpu_layers: ngl,
                flash_attn: fa,
                jinja,
                lora,
                port,
                ..Default::default()
            })
        });
    let vllm = (text(), prop::option::of(1u32..8), prop::option::of(any::<bool>()), prop::option::of(0.01f64..=1.0))
        .prop_map(|(model, tp, eager, mem)| {
            BackendOptions::Vllm(VllmOptions {
                model: Some(model),
                tensor_parallel_size: tp,
                enforce_eager: eager,
                gpu_memory_utilization: mem,
                ..Default::default()
            })
        });
    let mlx = (text(), prop::option::of(0.0f64..2.0)).prop_map(|(model, temp)| {
        BackendOptions::MlxLm(MlxLmOptions { model: Some(model), temp, ..Default::default() })
    });
    (
        prop_oneof![llama, vllm, mlx],
        prop::option::of(any::<bool>()),
        prop::option::of(any::<u32>()),
        prop::option::of((0u64..1_000_000).prop_map(Duration::from_millis)),
        prop::option::of((0u64..100_000).prop_map(Duration::from_secs)),
        prop::collection::btree_map("[A-Z_]{1,8}", "[ -~]{0,8}", 0..3),
    )
        .prop_map(|(backend, auto_restart, max_restarts, restart_delay, idle_timeout, environment)| {
            let mut options = InstanceOptions::new(backend);
            options.auto_restart = auto_restart;
            options.max_restarts = max_restarts;
            options.restart_delay = restart_delay;
            options.idle_timeout = idle_timeout;
            options.environment = environment.into_iter().collect::<BTreeMap<_, _>>();
            options
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsing_never_panics_and_errors_name_a_field(value in prop_oneof![any_json(), instance_json()]) {
        match InstanceOptions::from_json_value(&value) {
            Ok(options) => {
                let _ = options.validate();
                let _ = options.reject_unknown_fields();
                let listen = Listen { host: "127.0.0.1".into(), port: 8000 };
                let _ = build_command("x", &options, &BackendsSettings::default(), &listen);
            }
            Err(error) => prop_assert!(!error.field().is_empty()),
        }
    }

    #[test]
    fn whatever_parses_round_trips(value in instance_json()) {
        if let Ok(options) = InstanceOptions::from_json_value(&value) {
            let written = options.to_json_value();
            let again = InstanceOptions::from_json_value(&written).expect("written options parse");
            prop_assert_eq!(&again, &options);
            prop_assert_eq!(again.to_json_value(), written);
        }
    }

    #[test]
    fn typed_options_round_trip_through_json_text(options in typed_options()) {
        let text = serde_json::to_string(&options).unwrap();
        let back: InstanceOptions = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, options);
    }

    #[test]
    fn command_lines_are_deterministic_and_carry_explicit_values(options in typed_options(), port in 1u16..) {
        let listen = Listen { host: "127.0.0.1".into(), port };
        let settings = BackendsSettings::default();
        let first = build_command("x", &options, &settings, &listen).unwrap();
        let reparsed = InstanceOptions::from_json_value(&options.to_json_value()).unwrap();
        prop_assert_eq!(&build_command("x", &reparsed, &settings, &listen).unwrap(), &first);
        let port_text = port.to_string();
        prop_assert!(first.args.windows(2).any(|w| w[0] == "--port" && w[1] == port_text));
        if let BackendOptions::LlamaCpp(llama) = &options.backend {
            if let Some(GpuLayers::Count(n)) = llama.gpu_layers {
                let n = n.to_string();
                prop_assert!(first.args.windows(2).any(|w| w[0] == "--gpu-layers" && w[1] == n));
            }
            if llama.jinja == Some(false) {
                prop_assert!(first.args.contains(&"--no-jinja".to_owned()));
            }
        }
        if let BackendOptions::Vllm(vllm) = &options.backend {
            prop_assert_eq!(&first.args[0], "serve");
            prop_assert_eq!(Some(&first.args[1]), vllm.model.as_ref());
            prop_assert!(!first.args.contains(&"--model".to_owned()), "vLLM's model is positional");
        }
    }

    #[test]
    fn statuses_parse_only_what_they_print(text in ".{0,16}") {
        if let Ok(status) = text.parse::<InstanceStatus>() {
            prop_assert_eq!(status.as_str(), text.as_str());
        }
    }
}

#[test]
fn extra_arguments_keep_their_order() {
    let options = InstanceOptions::from_json_value(&json!({
        "backend_type": "llama_cpp",
        "backend_options": {"model": "/m", "z_last": 1, "a_first": 2, "m_middle": 3}
    }))
    .unwrap();
    let listen = Listen { host: "h".into(), port: 1 };
    let args = build_command("x", &options, &BackendsSettings::default(), &listen).unwrap().args;
    let tail: Vec<&str> = args.iter().map(String::as_str).skip_while(|a| *a != "--z-last").collect();
    assert_eq!(tail, ["--z-last", "1", "--a-first", "2", "--m-middle", "3"]);
}
