//! Loading as a whole: which file is read, `${...}` expansion, where an error says a value came
//! from, the Go llamactl's documented configuration.

use std::fs;

use super::test_support::{env_of, load_file, no_env, write};
use super::*;

#[test]
fn no_file_gives_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let search = search_paths(dir.path(), Some(&dir.path().join("home")));
    // Leave out /etc/llamactl/config.yaml, which may exist on the machine running the tests.
    let loaded = load_from(None, &no_env, &search[..3]).unwrap();
    assert_eq!(loaded.config, Config::default());
    assert_eq!(loaded.source, None);
    assert!(loaded.warnings.is_empty());
}

#[test]
fn search_paths_are_the_go_ones() {
    let paths = search_paths(Path::new("/work"), Some(Path::new("/home/u")));
    let expected = [
        "/work/llamactl.yaml",
        "/work/config.yaml",
        "/home/u/.config/llamactl/config.yaml",
        "/etc/llamactl/config.yaml",
    ];
    assert_eq!(paths, expected.iter().map(PathBuf::from).collect::<Vec<_>>());
    assert_eq!(search_paths(Path::new("/work"), None).len(), 3);
}

#[test]
fn explicit_file_is_used() {
    let (_dir, path, result) = load_file("server:\n  port: 9999\n", &[]);
    let loaded = result.unwrap();
    assert_eq!(loaded.config.server.port, 9999);
    assert_eq!(loaded.config.server.host, "127.0.0.1", "keys not in the file keep their default");
    assert_eq!(loaded.source, Some(path));
}

#[test]
fn explicit_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let err = load_from(Some(&missing), &no_env, &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&missing.display().to_string()) && text.contains("given explicitly"), "{text}");
}

#[test]
fn explicit_file_wins_over_config_path_variable_and_search() {
    let dir = tempfile::tempdir().unwrap();
    let explicit = write(dir.path(), "explicit.yaml", "server: {port: 1}\n");
    let named = write(dir.path(), "named.yaml", "server: {port: 2}\n");
    let searched = write(dir.path(), "llamactl.yaml", "server: {port: 3}\n");
    let env = env_of(&[(CONFIG_PATH_VAR, named.to_str().unwrap())]);
    let search = [searched.clone()];

    let loaded = load_from(Some(&explicit), &env, &search).unwrap();
    assert_eq!((loaded.config.server.port, loaded.source), (1, Some(explicit)));
    let loaded = load_from(None, &env, &search).unwrap();
    assert_eq!((loaded.config.server.port, loaded.source), (2, Some(named)));
    let loaded = load_from(None, &no_env, &search).unwrap();
    assert_eq!((loaded.config.server.port, loaded.source), (3, Some(searched)));
}

#[test]
fn config_path_variable_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let searched = write(dir.path(), "llamactl.yaml", "");
    let env = env_of(&[(CONFIG_PATH_VAR, missing.to_str().unwrap())]);
    let err = load_from(None, &env, &[searched]).unwrap_err();
    assert!(err.to_string().contains("LLAMACTL_CONFIG_PATH"), "{err}");
    // Empty counts as unset.
    let env = env_of(&[(CONFIG_PATH_VAR, "")]);
    assert!(load_from(None, &env, &[]).is_ok());
}

#[test]
fn search_takes_the_first_existing_file_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("cwd");
    let home = dir.path().join("home");
    fs::create_dir_all(&cwd).unwrap();
    let search = search_paths(&cwd, Some(&home));
    let search = &search[..3];

    let home_file = write(&home, ".config/llamactl/config.yaml", "local_node: home\n");
    let loaded = load_from(None, &no_env, search).unwrap();
    assert_eq!((loaded.config.local_node.as_str(), loaded.source), ("home", Some(home_file)));

    let config_yaml = write(&cwd, "config.yaml", "local_node: config\n");
    let loaded = load_from(None, &no_env, search).unwrap();
    assert_eq!((loaded.config.local_node.as_str(), loaded.source), ("config", Some(config_yaml)));

    let llamactl_yaml = write(&cwd, "llamactl.yaml", "local_node: llamactl\n");
    let loaded = load_from(None, &no_env, search).unwrap();
    assert_eq!((loaded.config.local_node.as_str(), loaded.source), ("llamactl", Some(llamactl_yaml)));

    // A folder with the file's name is not a file.
    let dir2 = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir2.path().join("llamactl.yaml")).unwrap();
    let loaded = load_from(None, &no_env, &search_paths(dir2.path(), None)[..2]).unwrap();
    assert_eq!(loaded.source, None);
}

#[test]
fn placeholders_are_expanded_in_the_file() {
    let text = "server:\n  host: ${HOST}\n  port: ${PORT:-7000}\nlocal_node: \"${NODE:-main}-x\"\ndata_dir: ${UNSET_DIR:-/srv/llamactl}\n";
    let (_dir, _path, result) = load_file(text, &[("HOST", "0.0.0.0"), ("NODE", "")]);
    let config = result.unwrap().config;
    assert_eq!(config.server.host, "0.0.0.0");
    assert_eq!(config.server.port, 7000);
    assert_eq!(config.local_node, "main-x");
    assert_eq!(config.data_dir, Some(PathBuf::from("/srv/llamactl")));

    let (_dir, _path, result) = load_file("server:\n  port: ${PORT:-7000}\n", &[("PORT", "7100")]);
    assert_eq!(result.unwrap().config.server.port, 7100);
}

#[test]
fn bad_placeholder_names_file_and_line() {
    let (_dir, path, result) = load_file("server:\n  host: ${HOST\n", &[]);
    let err = result.unwrap_err();
    assert!(matches!(err, ConfigError::Expand { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()) && text.contains("line 2"), "{text}");
}

#[test]
fn unknown_key_in_the_file_names_key_and_file() {
    let text = "instances:\n  max_runing_instances: 2\n";
    // Also with the environment setting another key of the same section.
    for vars in [&[][..], &[("LLAMACTL_MAX_INSTANCES", "3")][..]] {
        let (_dir, path, result) = load_file(text, vars);
        let err = result.unwrap_err();
        let ConfigError::Invalid { key, file, variable, .. } = &err else { panic!("{err:?}") };
        assert_eq!(key, "instances.max_runing_instances");
        assert_eq!(file.as_ref(), Some(&path));
        assert_eq!(variable, &None);
        let text = err.to_string();
        assert!(text.contains("instances.max_runing_instances"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("unknown key") && text.contains("max_running_instances"), "{text}");
    }

    let (_dir, path, result) = load_file("serverr:\n  port: 1\n", &[]);
    let text = result.unwrap_err().to_string();
    assert!(text.contains("`serverr`") && text.contains(&path.display().to_string()), "{text}");
}

#[test]
fn invalid_value_type_names_key_and_file() {
    for (text, key) in [
        ("server:\n  port: abc\n", "server.port"),
        ("server:\n  port: 70000\n", "server.port"),
        ("instances:\n  port_range: [8000]\n", "instances.port_range"),
        ("auth:\n  require_management_auth: \"maybe\"\n", "auth.require_management_auth"),
        ("server:\n  log_format: xml\n", "server.log_format"),
        ("server:\n  allowed_origins: [a, [b]]\n", "server.allowed_origins.1"),
        ("server: 5\n", "server"),
    ] {
        let (_dir, path, result) = load_file(text, &[("LLAMACTL_HOST", "0.0.0.0")]);
        let err = result.unwrap_err();
        let ConfigError::Invalid { key: found, file, .. } = &err else { panic!("{text}: {err:?}") };
        assert_eq!(found, key, "{text}");
        assert_eq!(file.as_ref(), Some(&path), "{text}");
        let message = err.to_string();
        assert!(message.contains(key) && message.contains(&path.display().to_string()), "{message}");
    }
}

/// The Go llamactl's documented configuration, with all sections.
const GO_CONFIG: &str = r#"
server:
  host: "0.0.0.0"                # Server host to bind to
  port: 8080
  allowed_origins: ["*"]
  allowed_headers: ["*"]
  enable_swagger: false
  response_headers:
    X-Accel-Buffering: "no"

backends:
  llama-cpp:
    command: "llama-server"
    args: []
    environment: {}
    docker:
      enabled: false
      image: "ghcr.io/ggml-org/llama.cpp:server"
      args: ["run", "--rm", "--network", "host", "--gpus", "all"]
      environment: {}
    response_headers: {}
  vllm:
    command: "vllm"
    args: ["serve"]
    environment: {CUDA_VISIBLE_DEVICES: "0"}
    docker:
      enabled: false
      image: "vllm/vllm-openai:latest"
      args: ["run", "--rm", "--network", "host", "--gpus", "all", "--shm-size", "1g"]
      environment: {}
    response_headers: {}
  mlx:
    command: "mlx_lm.server"
    args: []
    environment: {}
    response_headers: {}

data_dir: ${HOME:-/root}/.local/share/llamactl

instances:
  port_range: [8000, 9000]
  configs_dir: /var/lib/llamactl/instances
  logs_dir: /var/log/llamactl
  auto_create_dirs: true
  max_instances: -1
  max_running_instances: -1
  enable_lru_eviction: true
  default_auto_restart: true
  default_max_restarts: 3
  default_restart_delay: 5
  default_on_demand_start: true
  on_demand_start_timeout: 120
  timeout_check_interval: 5
  log_rotation_enabled: true
  log_rotation_max_size_mb: 50
  log_rotation_compress: false

database:
  path: /var/lib/llamactl/llamactl.db
  max_open_connections: 25
  max_idle_connections: 5
  connection_max_lifetime: 5m

auth:
  require_inference_auth: true
  inference_keys: []
  require_management_auth: true
  management_keys: ["${MGMT_KEY}"]

local_node: "main"
nodes:
  main:
  worker1:
    address: "http://192.168.1.10:8080"
    api_key: "worker1-api-key"
"#;

#[test]
fn go_llamactl_configuration_loads() {
    let (_dir, _path, result) = load_file(GO_CONFIG, &[("HOME", "/home/me"), ("MGMT_KEY", "sk-management")]);
    let loaded = result.unwrap();
    let c = &loaded.config;
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(c.server.host, "0.0.0.0");
    assert_eq!(c.server.allowed_headers, ["*"]);
    assert_eq!(c.server.response_headers.get("X-Accel-Buffering").map(String::as_str), Some("no"));
    assert!(!c.server.enable_swagger);
    assert_eq!(c.backends.vllm.args, ["serve"]);
    assert_eq!(c.backends.vllm.environment.get("CUDA_VISIBLE_DEVICES").map(String::as_str), Some("0"));
    assert_eq!(c.backends.llama_cpp.docker.image.as_deref(), Some("ghcr.io/ggml-org/llama.cpp:server"));
    assert_eq!(c.backends.mlx.command.as_deref(), Some("mlx_lm.server"));
    assert_eq!(c.data_dir, Some(PathBuf::from("/home/me/.local/share/llamactl")));
    assert_eq!(c.instances.instances_dir, Some(PathBuf::from("/var/lib/llamactl/instances")), "configs_dir");
    assert_eq!(c.instances.log_rotation_max_size, 50, "log_rotation_max_size_mb");
    assert_eq!(c.instances.max_instances, -1);
    assert_eq!(c.instances.on_demand_start_timeout, 120);
    assert_eq!(c.database.connection_max_lifetime, "5m");
    assert_eq!(c.auth.management_keys, ["sk-management"]);
    assert_eq!(c.local_node, "main");
    assert_eq!(c.nodes.len(), 1, "`main:` without a value is not set");
    assert_eq!(c.nodes["worker1"].address, "http://192.168.1.10:8080");
    assert_eq!(c.nodes["worker1"].api_key.as_deref(), Some("worker1-api-key"));
}

#[test]
fn go_docker_run_arguments_become_container_settings() {
    use llamactl_core::docker::{DockerNetwork, GpuRequest};
    let text = "backends:\n  llama-cpp:\n    docker:\n      enabled: true\n      image: ghcr.io/ggml-org/llama.cpp:server-cuda\n      \
                args: [run, --rm, --network, host, --gpus, all, -v, /srv/models:/models:ro, --shm-size, 1g]\n      \
                environment: {CUDA_VISIBLE_DEVICES: '0'}\n  vllm:\n    docker:\n      volumes: ['/srv/hf:/root/.cache/huggingface']\n      \
                gpus: [0, 1]\ndocker:\n  host: tcp://10.0.0.5:2375\n";
    let (_dir, _path, result) = load_file(text, &[]);
    let config = result.unwrap().config;
    let docker = config.manager_config().docker;
    assert_eq!(docker.host.as_deref(), Some("tcp://10.0.0.5:2375"));
    let llama = &docker.llama_cpp;
    assert!(llama.enabled);
    assert_eq!(llama.run.image.as_deref(), Some("ghcr.io/ggml-org/llama.cpp:server-cuda"));
    assert_eq!(llama.run.entrypoint, Some(vec!["/app/llama-server".to_owned()]), "the default entrypoint stays");
    assert_eq!(llama.run.network, Some(DockerNetwork::Host));
    assert_eq!(llama.run.gpus, Some(GpuRequest::All));
    assert_eq!(llama.run.volumes, ["/srv/models:/models:ro"]);
    assert_eq!(llama.run.shm_size.map(|s| s.bytes()), Some(1 << 30));
    assert_eq!(llama.run.environment["CUDA_VISIBLE_DEVICES"], "0");
    let vllm = &docker.vllm;
    assert!(!vllm.enabled);
    assert_eq!(vllm.run.image.as_deref(), Some("vllm/vllm-openai:latest"));
    assert_eq!(vllm.run.gpus, Some(GpuRequest::Devices(vec!["0".into(), "1".into()])));
    let env = env_of(&[("LLAMACTL_DOCKER_HOST", "unix:///run/user/1000/docker.sock")]);
    let config = load_from(None, &env, &[]).unwrap().config;
    assert_eq!(config.docker.host.as_deref(), Some("unix:///run/user/1000/docker.sock"));
}
