use crate::config::Config;
use crate::config::load::test_support::{env_of, load_file};
use crate::config::load::{ConfigError, load_from};

#[test]
fn meaning_is_validated_with_key_and_origin() {
    let (_dir, path, result) = load_file("instances:\n  port_range: [9000, 8000]\n", &[]);
    let err = result.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("instances.port_range") && text.contains(&path.display().to_string()), "{text}");

    let (_dir, _path, result) = load_file("instances:\n  port_range: [0, 8000]\n", &[]);
    assert!(result.unwrap_err().to_string().contains("instances.port_range"));

    let (_dir, _path, result) = load_file("instances:\n  port_range: [8000, 8000]\n", &[]);
    assert_eq!(result.unwrap().config.instances.port_range, [8000, 8000], "a single port is a range");

    let env = env_of(&[("LLAMACTL_INSTANCE_PORT_RANGE", "9000-8000")]);
    let err = load_from(None, &env, &[]).unwrap_err();
    let ConfigError::Invalid { key, variable, file, .. } = &err else { panic!("{err:?}") };
    assert_eq!(
        (key.as_str(), variable.as_deref(), file),
        ("instances.port_range", Some("LLAMACTL_INSTANCE_PORT_RANGE"), &None)
    );
    assert!(err.to_string().contains("LLAMACTL_INSTANCE_PORT_RANGE"), "{err}");

    let (_dir, path, result) = load_file("instances:\n  on_demand_start_timeout: 0\n", &[]);
    let text = result.unwrap_err().to_string();
    assert!(text.contains("instances.on_demand_start_timeout") && text.contains(&path.display().to_string()), "{text}");
    let env = env_of(&[("LLAMACTL_ON_DEMAND_START_TIMEOUT", "0")]);
    let text = load_from(None, &env, &[]).unwrap_err().to_string();
    assert!(text.contains("LLAMACTL_ON_DEMAND_START_TIMEOUT"), "{text}");

    let (_dir, path, result) = load_file("auth:\n  management_keys: [\"k1\", \"${UNSET_MANAGEMENT_KEY}\"]\n", &[]);
    let text = result.unwrap_err().to_string();
    assert!(
        text.contains("auth.management_keys")
            && text.contains("key 2 is empty")
            && text.contains(&path.display().to_string()),
        "{text}"
    );
}

#[test]
fn connection_limits_load_from_file_and_environment_and_are_validated() {
    let defaults = Config::default().server;
    assert_eq!(
        (
            defaults.max_connections,
            defaults.header_read_timeout_seconds,
            defaults.keep_alive_timeout_seconds,
            defaults.max_header_bytes
        ),
        (4096, 10, 60, 65_536)
    );
    let text = "server:\n  max_connections: 100\n  header_read_timeout_seconds: 3\n  keep_alive_timeout_seconds: 7\n  max_header_bytes: 8192\n";
    let (_dir, _path, result) = load_file(text, &[("LLAMACTL_MAX_CONNECTIONS", "200")]);
    let server = result.unwrap().config.server;
    assert_eq!(
        (server.max_connections, server.header_read_timeout_seconds, server.keep_alive_timeout_seconds),
        (200, 3, 7),
        "the environment wins over the file"
    );
    assert_eq!(server.max_header_bytes, 8192);
    for (key, text) in [
        ("server.max_connections", "server:\n  max_connections: 0\n"),
        ("server.header_read_timeout_seconds", "server:\n  header_read_timeout_seconds: 0\n"),
        ("server.keep_alive_timeout_seconds", "server:\n  keep_alive_timeout_seconds: 0\n"),
        ("server.max_header_bytes", "server:\n  max_header_bytes: 100\n"),
    ] {
        let (_dir, path, result) = load_file(text, &[]);
        let err = result.unwrap_err();
        let ConfigError::Invalid { key: found, file, .. } = &err else { panic!("{text}: {err:?}") };
        assert_eq!((found.as_str(), file.as_deref()), (key, Some(path.as_path())), "{err}");
    }
    let env = env_of(&[("LLAMACTL_KEEP_ALIVE_TIMEOUT_SECONDS", "0")]);
    let text = load_from(None, &env, &[]).unwrap_err().to_string();
    assert!(text.contains("LLAMACTL_KEEP_ALIVE_TIMEOUT_SECONDS"), "{text}");
}

#[test]
fn docker_settings_llamactl_cannot_apply_stop_the_start_naming_the_key() {
    let (_dir, path, result) = load_file("backends:\n  vllm:\n    docker:\n      args: [run, --privileged]\n", &[]);
    let text = result.unwrap_err().to_string();
    assert!(text.contains("backends.vllm.docker.args") && text.contains("--privileged"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");

    let (_dir, _path, result) =
        load_file("backends:\n  llama-cpp:\n    docker:\n      volumes: ['/a:/m', '/b:/m']\n", &[]);
    let text = result.unwrap_err().to_string();
    assert!(text.contains("backends.llama-cpp.docker.volumes[1]"), "{text}");

    let (_dir, _path, result) = load_file("backends:\n  mlx:\n    docker:\n      enabled: true\n", &[]);
    let text = result.unwrap_err().to_string();
    assert!(text.contains("backends.mlx.docker.enabled") && text.contains("no Docker mode"), "{text}");

    let env = env_of(&[("LLAMACTL_LLAMACPP_DOCKER_ARGS", "run --ipc host")]);
    let text = load_from(None, &env, &[]).unwrap_err().to_string();
    assert!(text.contains("LLAMACTL_LLAMACPP_DOCKER_ARGS") && text.contains("--ipc"), "{text}");
}
