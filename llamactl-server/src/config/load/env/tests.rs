use std::path::PathBuf;

use super::*;
use crate::config::load::load_from;
use crate::config::load::test_support::{env_of, load_file};
use crate::config::{Config, LogFormat};

#[test]
fn environment_overrides_the_file() {
    let text = "server:\n  host: 10.0.0.1\n  port: 9000\n  allowed_origins: [a]\ninstances:\n  max_instances: 4\n  default_auto_restart: true\nbackends:\n  llama-cpp:\n    command: /opt/llama-server\n    environment: {A: file, B: file}\n";
    let vars = [
        ("LLAMACTL_PORT", "3000"),
        ("LLAMACTL_ALLOWED_ORIGINS", "http://a.example, http://b.example,"),
        ("LLAMACTL_MAX_INSTANCES", "20"),
        ("LLAMACTL_DEFAULT_AUTO_RESTART", "false"),
        ("LLAMACTL_LLAMACPP_ENV", "B=env,C=env"),
        ("LLAMACTL_VLLM_DOCKER_ENABLED", "1"),
        ("LLAMACTL_VLLM_DOCKER_IMAGE", "vllm/vllm-openai:v1"),
        ("LLAMACTL_LLAMACPP_ARGS", "--threads  8 -ngl 99"),
        ("LLAMACTL_MANAGEMENT_KEYS", "k1,k2"),
        ("LLAMACTL_REQUIRE_INFERENCE_AUTH", "FALSE"),
        ("LLAMACTL_DATA_DIRECTORY", "/data"),
        ("LLAMACTL_LOGS_DIRECTORY", "/logs-old-name"),
        ("LLAMACTL_LOG_FORMAT", "json"),
        ("LLAMACTL_DATABASE_PATH", "/db/llamactl.db"),
        ("LLAMACTL_LOCAL_NODE", "worker"),
        ("LLAMACTL_HOST", ""),
        ("LLAMACTL_SERVER", "http://ignored"),
        ("LLAMACTL_API_KEY", "ignored"),
    ];
    let (_dir, _path, result) = load_file(text, &vars);
    let loaded = result.unwrap();
    let c = &loaded.config;
    assert_eq!(c.server.host, "10.0.0.1", "an empty variable counts as unset");
    assert_eq!(c.server.port, 3000);
    assert_eq!(c.server.allowed_origins, ["http://a.example", "http://b.example"]);
    assert_eq!(c.server.log_format, LogFormat::Json);
    assert_eq!(c.instances.max_instances, 20);
    assert!(!c.instances.default_auto_restart);
    assert_eq!(c.backends.llama_cpp.command.as_deref(), Some("/opt/llama-server"));
    assert_eq!(c.backends.llama_cpp.args, ["--threads", "8", "-ngl", "99"]);
    let environment: Vec<_> = c.backends.llama_cpp.environment.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(environment, [("A", "file"), ("B", "env"), ("C", "env")], "maps are merged, the environment wins");
    assert!(c.backends.vllm.docker.enabled);
    assert_eq!(c.backends.vllm.docker.image.as_deref(), Some("vllm/vllm-openai:v1"));
    assert_eq!(c.auth.management_keys, ["k1", "k2"]);
    assert!(!c.auth.require_inference_auth);
    assert_eq!(c.data_dir, Some(PathBuf::from("/data")));
    assert_eq!(c.instances.logs_dir, Some(PathBuf::from("/logs-old-name")));
    assert_eq!(c.database.path, Some(PathBuf::from("/db/llamactl.db")));
    assert_eq!(c.local_node, "worker");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn environment_without_a_file() {
    let env = env_of(&[("LLAMACTL_PORT", "1234"), ("LLAMACTL_ENABLE_SWAGGER", "f")]);
    let loaded = load_from(None, &env, &[]).unwrap();
    assert_eq!(loaded.config.server.port, 1234);
    assert!(!loaded.config.server.enable_swagger);
    assert_eq!(loaded.source, None);
}

#[test]
fn current_name_wins_over_alias() {
    let env = env_of(&[("LLAMACTL_LOGS_DIR", "/new"), ("LLAMACTL_LOGS_DIRECTORY", "/old")]);
    let loaded = load_from(None, &env, &[]).unwrap();
    assert_eq!(loaded.config.instances.logs_dir, Some(PathBuf::from("/new")));
}

#[test]
fn go_style_port_ranges_in_the_environment() {
    for (value, expected) in [("5000-6000", [5000, 6000]), ("5000,6000", [5000, 6000]), (" 7000 - 7001 ", [7000, 7001])]
    {
        let env = env_of(&[("LLAMACTL_INSTANCE_PORT_RANGE", value)]);
        let loaded = load_from(None, &env, &[]).unwrap();
        assert_eq!(loaded.config.instances.port_range, expected, "{value}");
        assert_eq!(loaded.config.manager_config().port_range, expected[0]..=expected[1]);
    }
    for value in ["5000", "a-b", "5000-70000", "1-2-3", "5000;6000"] {
        let env = env_of(&[("LLAMACTL_INSTANCE_PORT_RANGE", value)]);
        let err = load_from(None, &env, &[]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("LLAMACTL_INSTANCE_PORT_RANGE") && text.contains("port range"), "{value}: {text}");
    }
}

#[test]
fn bad_environment_values_name_the_variable_and_the_type() {
    for (name, value, expected) in [
        ("LLAMACTL_PORT", "eighty", "integer"),
        ("LLAMACTL_PORT", "70000", "65535"),
        ("LLAMACTL_ENABLE_SWAGGER", "yes please", "boolean"),
        ("LLAMACTL_MAX_INSTANCES", "1.5", "integer"),
        ("LLAMACTL_DEFAULT_MAX_RESTARTS", "-1", "integer"),
        ("LLAMACTL_LOG_FORMAT", "xml", "plain or json"),
        ("LLAMACTL_VLLM_ENV", "NOEQUALS", "KEY=value"),
    ] {
        let env = env_of(&[(name, value)]);
        let err = load_from(None, &env, &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Env { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(name) && text.contains(expected), "{name}={value}: {text}");
    }
    // Values that may hold secrets are not repeated.
    let err = load_from(None, &env_of(&[("LLAMACTL_VLLM_ENV", "HF_TOKEN")]), &[]).unwrap_err();
    assert!(!err.to_string().contains("HF_TOKEN"), "{err}");
}

#[test]
fn every_environment_variable_sets_an_existing_key() {
    let samples = |kind| -> &'static [&'static str] {
        match kind {
            EnvKind::Text => &["/x"],
            EnvKind::Bool => &["true", "false"],
            EnvKind::U16 | EnvKind::U32 | EnvKind::U64 | EnvKind::I64 => &["4096", "8192"],
            EnvKind::PortRange => &["8000-8100"],
            EnvKind::List => &["a,b"],
            // Valid both as backend arguments and as `docker run` arguments.
            EnvKind::Args => &["--rm --init"],
            EnvKind::Pairs => &["A=1,B=2"],
            EnvKind::Headers => &["X-A=1;X-B=2"],
            EnvKind::LogFormat => &["json"],
            EnvKind::ShutdownPolicy => &["keep"],
            EnvKind::Ignored(_) => &["x"],
        }
    };
    for var in ENV_VARS {
        let mut changed = false;
        for sample in samples(var.kind) {
            let env = env_of(&[(var.name, sample)]);
            let loaded = load_from(None, &env, &[]).unwrap_or_else(|e| panic!("{}: {e}", var.name));
            if let EnvKind::Ignored(_) = var.kind {
                assert_eq!(loaded.warnings.len(), 1, "{}", var.name);
                assert_eq!(loaded.config, Config::default());
                changed = true;
            } else {
                assert!(loaded.warnings.is_empty(), "{}", var.name);
                changed |= loaded.config != Config::default();
            }
        }
        assert!(changed, "{} changes nothing", var.name);
    }
}
