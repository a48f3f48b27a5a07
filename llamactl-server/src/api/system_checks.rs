//! What the System page warns about: each backend's program, looked for as an instance's start
//! would look for it, and the problems that follow from what is missing.

use std::collections::BTreeSet;

use llamactl_api::resources::{BackendCommand, SystemProblem};
use llamactl_core::BackendType;
use llamactl_core::manager::ManagerConfig;

use crate::config::{command_hint, command_setting};

/// The backends whose programs the server runs (custom backends name their own).
const CHECKED: [BackendType; 3] = [BackendType::LlamaCpp, BackendType::MlxLm, BackendType::Vllm];

/// Looks each backend's program up on PATH (or at its configured path) as a start would;
/// blocking. A backend whose instances run in Docker by default is not looked up.
pub fn backend_commands(config: &ManagerConfig) -> Vec<BackendCommand> {
    CHECKED
        .into_iter()
        .map(|backend| {
            let command = config.backends.program(backend).unwrap_or_default();
            let docker = config.docker.for_backend(backend).is_some_and(|d| d.enabled);
            let path = if docker { None } else { which::which(&command).ok().map(|p| p.display().to_string()) };
            let setting = command_setting(backend).map(|(key, variable)| format!("{key} ({variable})"));
            BackendCommand {
                backend: backend.as_str().to_owned(),
                command,
                path,
                docker,
                setting: setting.unwrap_or_default(),
            }
        })
        .collect()
}

/// The problems: a program not found for llama.cpp (the default backend) or for a backend
/// some instance uses, unless that backend runs in Docker.
pub fn problems(commands: &[BackendCommand], used: &BTreeSet<String>) -> Vec<SystemProblem> {
    commands
        .iter()
        .filter(|c| !c.docker && c.path.is_none())
        .filter(|c| c.backend == BackendType::LlamaCpp.as_str() || used.contains(&c.backend))
        .map(|c| SystemProblem {
            what: format!(
                "the {} backend's program `{}` is not found: instances of this backend cannot start",
                c.backend, c.command
            ),
            looked_for: c.command.clone(),
            setting: c
                .backend
                .parse::<BackendType>()
                .map(|backend| match backend {
                    BackendType::LlamaCpp => {
                        format!("{} (scripts/backends/provision.sh llama builds one)", command_hint(backend))
                    }
                    _ => command_hint(backend),
                })
                .unwrap_or_else(|_| format!("set {} to the program's path", c.setting)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(backend: &str, found: bool, docker: bool) -> BackendCommand {
        BackendCommand {
            backend: backend.into(),
            command: format!("{backend}-cmd"),
            path: found.then(|| "/usr/bin/x".into()),
            docker,
            setting: "backends.x.command".into(),
        }
    }

    #[test]
    fn a_missing_program_is_a_problem_where_it_matters() {
        let commands =
            [command("llama_cpp", false, false), command("mlx_lm", false, false), command("vllm", false, true)];
        let none = problems(&commands, &BTreeSet::new());
        assert_eq!(none.len(), 1, "llama.cpp always matters, unused mlx does not: {none:?}");
        assert_eq!(none[0].looked_for, "llama_cpp-cmd");
        assert!(none[0].setting.contains("backends.llama-cpp.command"), "{}", none[0].setting);
        let used = BTreeSet::from(["mlx_lm".to_owned(), "vllm".to_owned()]);
        let with_mlx = problems(&commands, &used);
        assert_eq!(with_mlx.len(), 2, "vllm runs in Docker: no program needed here");
        assert!(problems(&[command("llama_cpp", true, false)], &used).is_empty());
    }

    #[test]
    fn a_configured_path_is_looked_up_as_it_is() {
        let mut config = crate::config::Config::default();
        config.backends.llama_cpp.command = Some("/nonexistent/llama-server".into());
        config.backends.vllm.docker.enabled = true;
        let commands = backend_commands(&config.manager_config());
        let llama = commands.iter().find(|c| c.backend == "llama_cpp").unwrap();
        assert_eq!((llama.command.as_str(), llama.path.as_deref()), ("/nonexistent/llama-server", None));
        let vllm = commands.iter().find(|c| c.backend == "vllm").unwrap();
        assert!(vllm.docker && vllm.path.is_none());
    }
}
