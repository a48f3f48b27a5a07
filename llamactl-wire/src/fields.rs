//! The top-level fields of an instance's options.

/// The top-level fields of an instance's options, in the Go llamactl's JSON order. Anything
/// else is kept verbatim as unknown (and refused where strictness is asked for).
///
/// ```
/// use llamactl_wire::INSTANCE_FIELDS;
/// assert!(INSTANCE_FIELDS.contains(&"idle_timeout"));
/// assert!(!INSTANCE_FIELDS.contains(&"ctx_size")); // a backend option
/// ```
pub const INSTANCE_FIELDS: &[&str] = &[
    "backend_type",
    "backend_options",
    "auto_restart",
    "max_restarts",
    "restart_delay",
    "on_demand_start",
    "idle_timeout",
    "startup_timeout",
    "environment",
    "command_override",
    "group",
    "docker_enabled",
    "docker",
    "nodes",
    "preset_ini",
    "sub_models",
    "description",
    "extends",
    "declared_in",
];
