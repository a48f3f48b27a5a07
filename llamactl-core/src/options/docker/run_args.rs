//! The Go llamactl's `docker run` arguments (`backends.<backend>.docker.args`) read as
//! [`DockerRunOptions`].

use super::DockerRunOptions;
use super::byte_size::ByteSize;
use super::gpus::GpuRequest;
use super::network::DockerNetwork;
use super::volume::parse_volume;

/// What [`DockerRunOptions::from_run_args`] accepts, for its error messages.
const SUPPORTED_RUN_ARGS: &str = "--rm, -d/--detach, -i, -t, -it, --init (all ignored), --network/--net host|bridge, \
     --gpus, -v/--volume, --shm-size, -m/--memory, -e/--env KEY=VALUE, --entrypoint";

impl DockerRunOptions {
    /// Reads the Go llamactl's `backends.<backend>.docker.args`: `docker run` arguments such as
    /// `["run", "--rm", "--network", "host", "--gpus", "all", "-v", "~/.cache/llama.cpp:/root/.cache/llama.cpp"]`.
    ///
    /// Accepted (both `--flag value` and `--flag=value`): a leading `run`; `--rm`, `-d`/`--detach`,
    /// `-i`, `-t`, `-it`, `--init` (ignored: the runtime removes its containers itself and always
    /// runs an init); `--network`/`--net` `host` or `bridge`; `--gpus` (`all`, a number,
    /// `device=0,1`, quoted or not); `-v`/`--volume`; `--shm-size`; `-m`/`--memory`;
    /// `-e`/`--env KEY=VALUE`; `--entrypoint`. Anything else is an error naming the argument.
    ///
    /// A volume source `~` or `~/...` is expanded with the `HOME` environment variable when it is
    /// set (the Go llamactl's default arguments mount `~/.cache/llama.cpp`); without `HOME` it is
    /// left as is and the volume is refused.
    ///
    /// ```
    /// use llamactl_core::options::docker::{DockerNetwork, DockerRunOptions, GpuRequest};
    ///
    /// let args: Vec<String> = ["run", "--rm", "--network", "host", "--gpus", "all", "--shm-size", "1g"]
    ///     .map(String::from)
    ///     .to_vec();
    /// let options = DockerRunOptions::from_run_args(&args)?;
    /// assert_eq!(options.network, Some(DockerNetwork::Host));
    /// assert_eq!(options.gpus, Some(GpuRequest::All));
    /// assert!(DockerRunOptions::from_run_args(&["--privileged".to_owned()]).is_err());
    /// # Ok::<(), String>(())
    /// ```
    pub fn from_run_args(args: &[String]) -> Result<DockerRunOptions, String> {
        let home = std::env::var("HOME").ok().filter(|home| !home.is_empty());
        parse_run_args(args, home.as_deref())
    }
}

/// [`DockerRunOptions::from_run_args`] with the home folder given (`None`: `~` stays as it is).
pub(super) fn parse_run_args(args: &[String], home: Option<&str>) -> Result<DockerRunOptions, String> {
    let mut options = DockerRunOptions::default();
    let skip = usize::from(args.first().is_some_and(|first| first == "run"));
    let mut iter = args.iter().skip(skip).map(String::as_str);
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with('-') => (flag, Some(value)),
            _ => (arg, None),
        };
        let mut value = || inline.or_else(|| iter.next()).ok_or_else(|| format!("{flag}: missing value"));
        match flag {
            "--rm" | "-d" | "--detach" | "-i" | "--interactive" | "-t" | "--tty" | "-it" | "-ti" | "--init" => {
                if let Some(v) = inline
                    && v != "true"
                    && v != "false"
                {
                    return Err(format!("{flag}: {v:?} is not true or false"));
                }
            }
            "--network" | "--net" => {
                let v = value()?;
                options.network = Some(match v {
                    "host" => DockerNetwork::Host,
                    "bridge" => DockerNetwork::Bridge,
                    other => return Err(format!("{flag} {other:?} is not supported (use host or bridge)")),
                });
            }
            "--gpus" => options.gpus = Some(GpuRequest::parse(value()?).map_err(|e| format!("{flag}: {e}"))?),
            "-v" | "--volume" => {
                let v = expand_home(value()?, home);
                parse_volume(&v).map_err(|e| format!("{flag} {v:?}: {e}"))?;
                options.volumes.push(v);
            }
            "--shm-size" => options.shm_size = Some(ByteSize::parse(value()?).map_err(|e| format!("{flag}: {e}"))?),
            "-m" | "--memory" => options.memory = Some(ByteSize::parse(value()?).map_err(|e| format!("{flag}: {e}"))?),
            "-e" | "--env" => {
                let v = value()?;
                let Some((key, val)) = v.split_once('=') else {
                    return Err(format!(
                        "{flag} {v:?}: give the value as KEY=VALUE (a bare name would copy llamactl's own variable)"
                    ));
                };
                if key.is_empty() {
                    return Err(format!("{flag} {v:?}: the variable name is empty"));
                }
                options.environment.insert(key.to_owned(), val.to_owned());
            }
            "--entrypoint" => {
                let v = value()?;
                if v.is_empty() {
                    return Err(format!("{flag}: must not be empty"));
                }
                options.entrypoint = Some(vec![v.to_owned()]);
            }
            "--ipc" => {
                return Err(format!(
                    "{flag} is not supported (the container keeps its own IPC namespace; use --shm-size to size /dev/shm)"
                ));
            }
            "--name" => return Err(format!("{flag} is not supported: llamactl names its containers itself")),
            _ if flag.starts_with('-') => {
                return Err(format!("unsupported docker run argument {arg:?} (supported: {SUPPORTED_RUN_ARGS})"));
            }
            _ => {
                return Err(format!(
                    "unexpected argument {arg:?}: only docker run options belong here, the image and command are set \
                     by llamactl (supported: {SUPPORTED_RUN_ARGS})"
                ));
            }
        }
    }
    Ok(options)
}

/// Replaces a leading `~` of a volume's source (`~` alone or `~/...`) with `home`.
pub(super) fn expand_home(volume: &str, home: Option<&str>) -> String {
    match (volume.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') || rest.starts_with(':') => {
            let home = home.trim_end_matches('/');
            format!("{home}{rest}")
        }
        _ => volume.to_owned(),
    }
}
