use super::*;
use crate::backend::{BackendsSettings, Listen, build_command};
use serde_json::json;

fn parse(value: Value) -> Result<InstanceOptions, OptionsError> {
    InstanceOptions::from_json_value(&value)
}

fn args_of(options: &InstanceOptions) -> Vec<String> {
    let listen = Listen { host: "127.0.0.1".into(), port: 8100 };
    build_command("t", options, &BackendsSettings::default(), &listen).unwrap().args
}

/// An instance definition as the Go llamactl stores it (defaults applied, aliases mixed in).
const GO_INSTANCE_OPTIONS: &str = r#"{
    "auto_restart": true, "max_restarts": 3, "restart_delay": 5,
    "on_demand_start": true, "idle_timeout": 10,
    "environment": {"CUDA_VISIBLE_DEVICES": "0"},
    "nodes": ["main"],
    "backend_type": "llama_cpp",
    "backend_options": {"model": "/models/qwen.gguf", "c": 4096, "ngl": 99, "fa": true,
                        "port": 8001, "host": "0.0.0.0", "np": 2, "ctk": "q8_0", "dt": 0.1,
                        "no_mmap": true, "lora": ["/a.gguf", "/b.gguf"]}
}"#;

#[test]
fn go_instance_definitions_load_unchanged() {
    let options = InstanceOptions::from_json(GO_INSTANCE_OPTIONS).unwrap();
    options.validate().unwrap();
    assert_eq!(options.auto_restart, Some(true));
    assert_eq!(options.max_restarts, Some(3));
    assert_eq!(options.restart_delay, Some(Duration::from_secs(5)));
    assert_eq!(options.idle_timeout, Some(Duration::from_secs(600)), "Go idle_timeout is minutes");
    assert_eq!(options.nodes, ["main"]);
    assert_eq!(options.backend.pinned_port(), Some(8001));
    let BackendOptions::LlamaCpp(llama) = &options.backend else { panic!("wrong backend") };
    assert_eq!(llama.ctx_size, Some(4096));
    assert_eq!(llama.gpu_layers, Some(GpuLayers::Count(99)));
    assert_eq!(llama.flash_attn, Some(FlashAttention::On));
    assert_eq!(llama.parallel, Some(2));
    assert_eq!(llama.cache_type_k.as_deref(), Some("q8_0"));
    assert_eq!(llama.extra.get("defrag_thold"), Some(&json!(0.1)), "untyped alias normalised");
    assert_eq!(
        args_of(&options),
        [
            "--host",
            "127.0.0.1",
            "--port",
            "8100",
            "--model",
            "/models/qwen.gguf",
            "--ctx-size",
            "4096",
            "--gpu-layers",
            "99",
            "--parallel",
            "2",
            "--flash-attn",
            "on",
            "--cache-type-k",
            "q8_0",
            "--lora",
            "/a.gguf",
            "--lora",
            "/b.gguf",
            "--defrag-thold",
            "0.1",
            "--no-mmap",
        ]
    );
}

#[test]
fn round_trip_keeps_meaning_and_unknown_fields() {
    let mut value: Value = serde_json::from_str(GO_INSTANCE_OPTIONS).unwrap();
    value["future_field"] = json!({"x": [1, 2]});
    let options = parse(value).unwrap();
    let written = options.to_json_value();
    assert_eq!(written["future_field"], json!({"x": [1, 2]}));
    assert_eq!(written["idle_timeout"], json!(10));
    assert_eq!(written["backend_options"]["ctx_size"], json!(4096));
    assert_eq!(parse(written).unwrap(), options);
}

#[test]
fn explicit_zero_and_false_reach_the_command_line() {
    let options = parse(json!({
        "backend_type": "llama_cpp",
        "backend_options": {"model": "/m.gguf", "gpu_layers": 0, "ctx_size": 0, "cont_batching": false, "jinja": false}
    }))
    .unwrap();
    let args = args_of(&options);
    let joined = args.join(" ");
    assert!(joined.contains("--gpu-layers 0"), "{joined}");
    assert!(joined.contains("--ctx-size 0"), "{joined}");
    assert!(joined.contains("--no-cont-batching"), "{joined}");
    assert!(joined.contains("--no-jinja"), "{joined}");
}

#[test]
fn argument_order_is_deterministic_and_follows_declaration_then_input_order() {
    let a =
        parse(json!({"backend_type": "llama_cpp", "backend_options": {"zeta": 1, "model": "/m", "alpha": 2, "c": 8}}))
            .unwrap();
    let b =
        parse(json!({"backend_type": "llama_cpp", "backend_options": {"c": 8, "zeta": 1, "alpha": 2, "model": "/m"}}))
            .unwrap();
    assert_eq!(
        args_of(&a),
        ["--host", "127.0.0.1", "--port", "8100", "--model", "/m", "--ctx-size", "8", "--zeta", "1", "--alpha", "2"]
    );
    assert_eq!(args_of(&a), args_of(&b));
}

#[test]
fn vllm_model_is_positional_and_mlx_uses_model_flag() {
    let vllm = parse(json!({"backend_type": "vllm", "backend_options": {"model": "/hf", "served_model_name": "tiny", "max_model_len": 512}})).unwrap();
    assert_eq!(
        args_of(&vllm),
        [
            "serve",
            "/hf",
            "--host",
            "127.0.0.1",
            "--port",
            "8100",
            "--served-model-name",
            "tiny",
            "--max-model-len",
            "512"
        ]
    );
    assert_eq!(vllm.backend.as_backend().request_model().as_deref(), Some("tiny"));

    let mlx = parse(json!({"backend_type": "mlx_lm", "backend_options": {"model": "/hf", "temp": 0.5}})).unwrap();
    assert_eq!(args_of(&mlx), ["--model", "/hf", "--host", "127.0.0.1", "--port", "8100", "--temp", "0.5"]);
    assert_eq!(mlx.backend.as_backend().request_model().as_deref(), Some("/hf"));
}

#[test]
fn custom_backend_fills_placeholders() {
    let custom = parse(json!({"backend_type": "custom", "backend_options": {
        "command": "/bin/srv", "args": ["--bind={host}:{port}", "{model}", "--id", "{name}"],
        "model": "/m", "health_path": "/ready", "threads": 2}}))
    .unwrap();
    custom.validate().unwrap();
    let listen = Listen { host: "127.0.0.1".into(), port: 9 };
    let command = build_command("inst", &custom, &BackendsSettings::default(), &listen).unwrap();
    assert_eq!(command.program, "/bin/srv");
    assert_eq!(command.args, ["--bind=127.0.0.1:9", "/m", "--id", "inst", "--threads", "2"]);
    assert_eq!(custom.backend.as_backend().readiness_path(), "/ready");
}

#[test]
fn configured_command_args_and_environment_apply_with_instance_precedence() {
    let mut settings = BackendsSettings::default();
    settings.llama_cpp.command = Some("/opt/llama-server".into());
    settings.llama_cpp.args = vec!["--log-disable".into()];
    settings.llama_cpp.environment.insert("A".into(), "config".into());
    settings.llama_cpp.environment.insert("B".into(), "config".into());
    let options = parse(
        json!({"backend_type": "llama_cpp", "backend_options": {"model": "/m"}, "environment": {"B": "instance"}}),
    )
    .unwrap();
    let listen = Listen { host: "127.0.0.1".into(), port: 1 };
    let command = build_command("x", &options, &settings, &listen).unwrap();
    assert_eq!(command.program, "/opt/llama-server");
    assert_eq!(command.args[0], "--log-disable");
    assert_eq!(command.environment["A"], "config");
    assert_eq!(command.environment["B"], "instance");

    let overridden = parse(
        json!({"backend_type": "llama_cpp", "backend_options": {"model": "/m"}, "command_override": "/my/llama"}),
    )
    .unwrap();
    assert_eq!(build_command("x", &overridden, &settings, &listen).unwrap().program, "/my/llama");
}

#[test]
fn schema_errors_name_the_field() {
    let cases = [
        (json!({"backend_options": {}}), "backend_type"),
        (json!({"backend_type": 3}), "backend_type"),
        (json!({"backend_type": "gpt5"}), "backend_type"),
        (json!({"backend_type": "vllm", "backend_options": []}), "backend_options"),
        (json!({"backend_type": "llama_cpp", "backend_options": {"ctx_size": "big"}}), "backend_options.ctx_size"),
        (json!({"backend_type": "llama_cpp", "backend_options": {"c": -5}}), "backend_options.c"),
        (json!({"backend_type": "llama_cpp", "backend_options": {"port": 70000}}), "backend_options.port"),
        (json!({"backend_type": "llama_cpp", "backend_options": {"nested": {"a": 1}}}), "backend_options.nested"),
        (json!({"backend_type": "vllm", "max_restarts": -1}), "max_restarts"),
        (json!({"backend_type": "vllm", "idle_timeout": "soon"}), "idle_timeout"),
        (json!({"backend_type": "vllm", "environment": {"A": [1]}}), "environment.A"),
        (json!({"backend_type": "vllm", "auto_restart": "yes"}), "auto_restart"),
        (json!({"backend_type": "vllm", "nodes": 5}), "nodes"),
    ];
    for (input, field) in cases {
        let err = parse(input.clone()).unwrap_err();
        assert_eq!(err.field(), field, "{input} gave {err}");
        assert!(err.to_string().starts_with(field), "{err}");
    }
}

#[test]
fn duplicate_aliases_are_rejected() {
    let err = parse(json!({"backend_type": "llama_cpp", "backend_options": {"ctx_size": 1, "c": 2}})).unwrap_err();
    assert!(matches!(err, OptionsError::Duplicate { .. }), "{err}");
    assert_eq!(err.field(), "backend_options.c");
    let err = parse(json!({"backend_type": "llama_cpp", "backend_options": {"dt": 1, "defrag_thold": 2}})).unwrap_err();
    assert!(matches!(err, OptionsError::Duplicate { .. }), "{err}");
}

#[test]
fn semantic_errors_name_the_field() {
    let cases = [
        (json!({"backend_type": "vllm"}), "backend_options.model"),
        (json!({"backend_type": "mlx_lm", "backend_options": {}}), "backend_options.model"),
        (json!({"backend_type": "llama_cpp", "backend_options": {}}), "backend_options.model"),
        (json!({"backend_type": "custom", "backend_options": {}}), "backend_options.command"),
        (
            json!({"backend_type": "custom", "backend_options": {"command": "x", "health_path": "health"}}),
            "backend_options.health_path",
        ),
        (
            json!({"backend_type": "vllm", "backend_options": {"model": "m", "gpu_memory_utilization": 1.5}}),
            "backend_options.gpu_memory_utilization",
        ),
        (
            json!({"backend_type": "vllm", "backend_options": {"model": "m", "tp": 0}}),
            "backend_options.tensor_parallel_size",
        ),
        (json!({"backend_type": "vllm", "backend_options": {"model": " "}}), "backend_options.model"),
        (
            json!({"backend_type": "vllm", "backend_options": {"model": "m"}, "environment": {"A=B": "x"}}),
            "environment.A=B",
        ),
        (json!({"backend_type": "vllm", "backend_options": {"model": "m"}, "group": "a/b"}), "group"),
        (
            json!({"backend_type": "vllm", "backend_options": {"model": "m"}, "command_override": ""}),
            "command_override",
        ),
        (
            json!({"backend_type": "vllm", "backend_options": {"model": "m"}, "command_override": "x", "docker_enabled": true}),
            "command_override",
        ),
        (
            json!({"backend_type": "mlx_lm", "backend_options": {"model": "m"}, "docker_enabled": true}),
            "docker_enabled",
        ),
        (json!({"backend_type": "vllm", "backend_options": {"model": "m"}, "startup_timeout": 0}), "startup_timeout"),
    ];
    for (input, field) in cases {
        let options = parse(input.clone()).unwrap_or_else(|e| panic!("{input}: {e}"));
        let err = options.validate().unwrap_err();
        assert_eq!(err.field(), field, "{input} gave {err}");
    }
}

#[test]
fn backend_hosts_must_be_ip_addresses_or_host_names() {
    let with_host = |host: &str| {
        parse(json!({"backend_type": "vllm", "backend_options": {"model": "m", "host": host}})).unwrap().validate()
    };
    for host in ["127.0.0.1", "0.0.0.0", "::", "::1", "fe80::1", "localhost", "gpu-box-2", "node1.example.com", "x"] {
        with_host(host).unwrap_or_else(|e| panic!("{host}: {e}"));
    }
    let refused = [
        ("127.0.0.1; touch x", "character ';' at position 9 is not allowed"),
        ("localhost/../x", "character '/' at position 9 is not allowed"),
        ("-rf", r#"the label "-rf" starts or ends with '-'"#),
        ("a.-b.c", r#"the label "-b" starts or ends with '-'"#),
        ("host-", r#"the label "host-" starts or ends with '-'"#),
        ("a..b", "empty label"),
        (".local", "empty label"),
        ("under_score", "character '_' at position 5"),
        ("café", "character 'é' at position 3"),
        ("a\nb", "character '\\n' at position 1"),
        ("[::1]", "without brackets"),
        ("127.0.0.1:8080", "character ':' at position 9"),
        ("999.1.1.1", "not a valid one"),
        ("1.2.3", "not a valid one"),
        (" 127.0.0.1", "character ' ' at position 0"),
    ];
    for (host, mention) in refused {
        let error = with_host(host).unwrap_err();
        assert_eq!(error.field(), "backend_options.host", "{host:?}: {error}");
        let text = error.to_string();
        assert!(text.contains("is not an IP address or a host name") && text.contains(mention), "{host:?}: {text}");
        assert!(!text.contains('\n'), "control characters are escaped: {text:?}");
    }
    let long = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(63)].join(".");
    assert!(with_host(&long).unwrap_err().to_string().contains("255 characters is too long (at most 253)"));
    assert!(with_host(&"a".repeat(64)).unwrap_err().to_string().contains("is longer than 63 characters"));
}

#[test]
fn health_paths_must_be_url_paths() {
    let with_path = |path: &str| {
        parse(json!({"backend_type": "custom", "backend_options": {"command": "x", "health_path": path}}))
            .unwrap()
            .validate()
    };
    for path in ["/", "/health", "/v1/models?ready=1&x=a:b", "/a%20b", "/~user/(x)*,;=@!$'+"] {
        with_path(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let refused = [
        ("health", "must start with '/'"),
        ("/he alth", "character ' ' at position 3 is not allowed in a URL path or query (percent-encode it)"),
        ("/x\r\nHost: evil", "character '\\r' at position 2"),
        ("/a#b", "character '#' at position 2"),
        ("/é", "character 'é' at position 1"),
        ("/a\\b", "character '\\\\' at position 2"),
        ("/a%2", "'%' at position 2 must be followed by two hex digits"),
        ("/a%zz", "'%' at position 2 must be followed by two hex digits"),
        ("/{x}", "character '{' at position 1"),
    ];
    for (path, mention) in refused {
        let error = with_path(path).unwrap_err();
        assert_eq!(error.field(), "backend_options.health_path", "{path:?}: {error}");
        let text = error.to_string();
        assert!(text.contains(mention), "{path:?}: {text}");
        assert!(!text.contains(['\r', '\n']), "control characters are escaped: {text:?}");
    }
}

#[test]
fn port_zero_means_unset_and_models_from_other_sources_count() {
    let options =
        parse(json!({"backend_type": "llama_cpp", "backend_options": {"hf": "org/repo:Q4", "port": 0}})).unwrap();
    assert_eq!(options.backend.pinned_port(), None);
    options.validate().unwrap();
}

#[test]
fn null_values_are_unset() {
    let options =
        parse(json!({"backend_type": "vllm", "backend_options": {"model": "m", "dtype": null}, "group": null}))
            .unwrap();
    let BackendOptions::Vllm(vllm) = &options.backend else { panic!() };
    assert_eq!(vllm.dtype, None);
    assert_eq!(options.group, None);
}
