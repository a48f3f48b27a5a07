//! The meaning checks serde cannot do, section by section: the port range and on-demand start
//! timeout of `instances`, the connection limits of `server`, the Docker settings of each
//! backend, and the management keys of `auth`.

use llamactl_core::options::docker::DockerRunOptions;

use crate::config::Config;

/// The smallest `server.max_header_bytes` allowed: below it, ordinary requests (a browser's
/// headers, a bearer key) would be refused.
const MIN_HEADER_BYTES: usize = 4096;

/// Meaning checks serde cannot do. Returns the key and what is wrong.
pub(super) fn validate(config: &Config) -> Result<(), (String, String)> {
    let [start, end] = config.instances.port_range;
    if start == 0 {
        return Err((
            "instances.port_range".into(),
            format!("the range [{start}, {end}] starts at 0; ports start at 1"),
        ));
    }
    if start > end {
        return Err(("instances.port_range".into(), format!("the range [{start}, {end}] ends before it starts")));
    }
    let server = &config.server;
    for (key, value) in [
        ("server.max_connections", server.max_connections as u64),
        ("server.header_read_timeout_seconds", server.header_read_timeout_seconds),
        ("server.keep_alive_timeout_seconds", server.keep_alive_timeout_seconds),
    ] {
        if value == 0 {
            return Err((key.into(), "must be at least 1".to_owned()));
        }
    }
    if server.max_header_bytes < MIN_HEADER_BYTES {
        return Err((
            "server.max_header_bytes".into(),
            format!("{} is too small for ordinary requests; give at least {MIN_HEADER_BYTES}", server.max_header_bytes),
        ));
    }
    if config.resource_history.enabled && config.resource_history.interval_seconds == 0 {
        return Err(("resource_history.interval_seconds".into(), "must be at least 1 second".to_owned()));
    }
    if config.activity.enabled && config.activity.queue_size == 0 {
        return Err(("activity.queue_size".into(), "must be at least 1 (or set activity.enabled: false)".to_owned()));
    }
    if config.instances.on_demand_start_timeout == 0 {
        return Err(("instances.on_demand_start_timeout".into(), "must be at least 1 second".to_owned()));
    }
    for (key, backend) in [
        ("backends.llama-cpp.docker", &config.backends.llama_cpp),
        ("backends.vllm.docker", &config.backends.vllm),
        ("backends.mlx.docker", &config.backends.mlx),
    ] {
        let docker = &backend.docker;
        if key == "backends.mlx.docker" && docker.enabled {
            return Err(("backends.mlx.docker.enabled".to_owned(), "mlx_lm has no Docker mode".to_owned()));
        }
        if let Err(message) = DockerRunOptions::from_run_args(&docker.args) {
            return Err((format!("{key}.args"), message));
        }
        if let Ok(run) = docker.run_options()
            && let Err((field, message)) = run.validate()
        {
            // `docker.volumes[1]` in the instance's terms is `<backend>.docker.volumes[1]` here.
            return Err((format!("{key}.{}", field.trim_start_matches("docker.")), message));
        }
    }
    // An empty key would let in anyone who sends an empty one; it is usually a `${VAR}` whose
    // variable is not set (expanded to nothing, as a shell does).
    if let Some(position) = config.auth.management_keys.iter().position(|k| k.trim().is_empty()) {
        return Err((
            "auth.management_keys".into(),
            format!("key {} is empty (is the variable it names unset?); remove it or give a key", position + 1),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
