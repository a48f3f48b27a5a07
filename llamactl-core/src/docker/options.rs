//! How a backend's container is run: image, entrypoint, network, mounts, GPUs and limits.
//!
//! [`DockerRunOptions`] comes from two places: the server configuration
//! (`backends.<backend>.docker`) and an instance's own `docker` options, combined with
//! [`DockerRunOptions::overlay`]. The Go llamactl configured the same thing as `docker run`
//! arguments (`backends.<backend>.docker.args`); [`DockerRunOptions::from_run_args`] reads those.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a backend's container is run. Comes from the server configuration
/// (`backends.<backend>.docker`) and from an instance's own `docker` options; see
/// [`overlay`](DockerRunOptions::overlay).
///
/// ```
/// use llamactl_core::docker::options::{DockerNetwork, DockerRunOptions, GpuRequest};
///
/// let options: DockerRunOptions = serde_json::from_str(
///     r#"{"image": "ghcr.io/ggml-org/llama.cpp:server-cuda", "network": "host", "gpus": "all", "shm_size": "1g"}"#,
/// )?;
/// assert_eq!(options.network, Some(DockerNetwork::Host));
/// assert_eq!(options.gpus, Some(GpuRequest::All));
/// assert_eq!(options.shm_size.map(|s| s.bytes()), Some(1 << 30));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerRunOptions {
    /// Image, e.g. `ghcr.io/ggml-org/llama.cpp:server`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Entrypoint replacing the image's, e.g. `["/app/llama-server"]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `bridge` (default: the backend's port is published on the host) or `host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<DockerNetwork>,
    /// Mounts as `SOURCE:TARGET[:ro|:rw]` (an absolute host path or a named volume), like
    /// `docker run -v`. A `~` is not expanded here (only by [`from_run_args`](Self::from_run_args)).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// GPUs: `"all"`, a number, or a list of device ids (`["0", "2"]` or `"device=0,2"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpus: Option<GpuRequest>,
    /// Size of /dev/shm: bytes, or a string with a unit (`"1g"`, `"512m"`, `"64k"`, binary units
    /// like docker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<ByteSize>,
    /// Memory limit, same syntax as `shm_size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// Environment added in the container (the instance's `environment` is added on top
    /// elsewhere).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
}

/// Smallest memory limit the Docker engine accepts (6 MiB).
const MIN_MEMORY: u64 = 6 << 20;

/// What [`DockerRunOptions::from_run_args`] accepts, for its error messages.
const SUPPORTED_RUN_ARGS: &str = "--rm, -d/--detach, -i, -t, -it, --init (all ignored), --network/--net host|bridge, \
     --gpus, -v/--volume, --shm-size, -m/--memory, -e/--env KEY=VALUE, --entrypoint";

impl DockerRunOptions {
    /// `self` with `top` on top: `top`'s `image`, `entrypoint`, `network`, `gpus`, `shm_size` and
    /// `memory` win where set; `environment` is merged (`top` wins per key); `volumes` are
    /// `self`'s then `top`'s, except that a `self` volume is dropped when a `top` volume mounts
    /// the same target.
    ///
    /// ```
    /// use llamactl_core::docker::options::DockerRunOptions;
    ///
    /// let server = DockerRunOptions { volumes: vec!["/models:/models:ro".into()], ..Default::default() };
    /// let instance = DockerRunOptions { volumes: vec!["/fast/models:/models".into()], ..Default::default() };
    /// assert_eq!(server.overlay(&instance).volumes, ["/fast/models:/models"]);
    /// ```
    pub fn overlay(&self, top: &DockerRunOptions) -> DockerRunOptions {
        let top_targets: Vec<&str> = top.volumes.iter().map(|v| volume_target_key(v)).collect();
        let mut volumes: Vec<String> =
            self.volumes.iter().filter(|v| !top_targets.contains(&volume_target_key(v))).cloned().collect();
        volumes.extend(top.volumes.iter().cloned());
        let mut environment = self.environment.clone();
        environment.extend(top.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
        DockerRunOptions {
            image: top.image.clone().or_else(|| self.image.clone()),
            entrypoint: top.entrypoint.clone().or_else(|| self.entrypoint.clone()),
            network: top.network.or(self.network),
            volumes,
            gpus: top.gpus.clone().or_else(|| self.gpus.clone()),
            shm_size: top.shm_size.or(self.shm_size),
            memory: top.memory.or(self.memory),
            environment,
        }
    }

    /// Checks the options and returns `(field, message)` for the first problem, the field being a
    /// path such as `docker.image` or `docker.volumes[1]`.
    ///
    /// Checked: a non-empty image; a non-empty entrypoint; each volume is
    /// `SOURCE:TARGET[:ro|:rw]` with an absolute host path or a volume name as source and an
    /// absolute target, no two volumes with the same target; at least one GPU; sizes above zero
    /// (and a memory limit of at least 6 MiB, Docker's minimum); environment names non-empty
    /// and without `=`, and no NUL anywhere.
    ///
    /// ```
    /// use llamactl_core::docker::options::DockerRunOptions;
    ///
    /// let options = DockerRunOptions { volumes: vec!["/models:/m".into(), "models".into()], ..Default::default() };
    /// let (field, message) = options.validate().unwrap_err();
    /// assert_eq!(field, "docker.volumes[1]");
    /// assert!(message.contains("SOURCE:TARGET"), "{message}");
    /// ```
    pub fn validate(&self) -> Result<(), (String, String)> {
        let invalid = |field: &str, message: String| Err((field.to_owned(), message));
        if let Some(image) = &self.image {
            if image.trim().is_empty() {
                return invalid("docker.image", "must not be empty".into());
            }
            if image.chars().any(|c| c.is_whitespace() || c == '\0') {
                return invalid("docker.image", format!("{image:?} must not contain whitespace"));
            }
        }
        if let Some(entrypoint) = &self.entrypoint {
            if entrypoint.is_empty() {
                return invalid(
                    "docker.entrypoint",
                    "must not be an empty list (leave it out to use the image's)".into(),
                );
            }
            if let Some(i) = entrypoint.iter().position(|part| part.contains('\0')) {
                return invalid(&format!("docker.entrypoint[{i}]"), "must not contain NUL".into());
            }
        }
        for (i, volume) in self.volumes.iter().enumerate() {
            let field = format!("docker.volumes[{i}]");
            let parsed = parse_volume(volume).map_err(|message| (field.clone(), message))?;
            let key = normalize_target(parsed.target);
            if let Some(first) = self.volumes[..i].iter().position(|v| volume_target_key(v) == key) {
                return invalid(&field, format!("target {key} is already mounted by docker.volumes[{first}]"));
            }
        }
        if let Some(gpus) = &self.gpus {
            gpus.check().map_err(|message| ("docker.gpus".to_owned(), message))?;
        }
        if self.shm_size == Some(ByteSize(0)) {
            return invalid("docker.shm_size", "must be greater than zero".into());
        }
        if let Some(memory) = self.memory
            && memory.bytes() < MIN_MEMORY
        {
            return invalid("docker.memory", format!("{memory} is below Docker's minimum of 6m"));
        }
        for (key, value) in &self.environment {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return invalid(
                    "docker.environment",
                    format!("{key:?}: a variable name must be non-empty and contain neither '=' nor NUL"),
                );
            }
            if value.contains('\0') {
                return invalid("docker.environment", format!("{key}: a value must not contain NUL"));
            }
        }
        Ok(())
    }

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
    /// use llamactl_core::docker::options::{DockerNetwork, DockerRunOptions, GpuRequest};
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

fn parse_run_args(args: &[String], home: Option<&str>) -> Result<DockerRunOptions, String> {
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
fn expand_home(volume: &str, home: Option<&str>) -> String {
    match (volume.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') || rest.starts_with(':') => {
            let home = home.trim_end_matches('/');
            format!("{home}{rest}")
        }
        _ => volume.to_owned(),
    }
}

/// One `SOURCE:TARGET[:MODE]` mount, checked.
struct Volume<'a> {
    target: &'a str,
}

fn parse_volume(spec: &str) -> Result<Volume<'_>, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [source, target] => (*source, *target, None),
        [source, target, mode] => (*source, *target, Some(*mode)),
        [_] => return Err(format!("{spec:?} must be SOURCE:TARGET[:ro|:rw]")),
        _ => return Err(format!("{spec:?} has too many ':' (use SOURCE:TARGET[:ro|:rw])")),
    };
    if spec.contains('\0') {
        return Err("must not contain NUL".into());
    }
    if source.is_empty() {
        return Err(format!("{spec:?}: the source must not be empty"));
    }
    if source.starts_with('~') {
        return Err(format!("{spec:?}: '~' is not expanded here; write the absolute path of the host directory"));
    }
    if !source.starts_with('/') && !is_volume_name(source) {
        return Err(format!(
            "{spec:?}: the source {source:?} must be an absolute host path or a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)"
        ));
    }
    if target.is_empty() {
        return Err(format!("{spec:?}: the target must not be empty"));
    }
    if !target.starts_with('/') {
        return Err(format!("{spec:?}: the target {target:?} must be an absolute path in the container"));
    }
    if let Some(mode) = mode
        && mode != "ro"
        && mode != "rw"
    {
        return Err(format!("{spec:?}: mode {mode:?} is not supported (use ro or rw)"));
    }
    Ok(Volume { target })
}

/// Docker's rule for named volumes: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn is_volume_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `/data/` and `/data` are the same mount point.
fn normalize_target(target: &str) -> &str {
    let trimmed = target.trim_end_matches('/');
    if trimmed.is_empty() && target.starts_with('/') { "/" } else { trimmed }
}

/// What identifies a volume when overlaying: its target, or the whole text if it has none.
fn volume_target_key(volume: &str) -> &str {
    match volume.split(':').nth(1) {
        Some(target) if !target.is_empty() => normalize_target(target),
        _ => volume,
    }
}

/// The container's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DockerNetwork {
    /// Docker's default bridge network; the backend's port is published on the host.
    Bridge,
    /// The host's network namespace; the backend binds the host's address itself.
    Host,
}

impl DockerNetwork {
    /// `"bridge"` or `"host"`, as in the configuration and in Docker's `NetworkMode`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bridge => "bridge",
            Self::Host => "host",
        }
    }
}

impl fmt::Display for DockerNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which GPUs the container gets, as `docker run --gpus` says it.
///
/// In configuration: `"all"`, a number (`2`), a list of device ids (`["0", "2"]`, or numbers), or
/// docker's `"device=0,2"`. Serialized back as `"all"`, a number, or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GpuRequest {
    /// Every GPU.
    All,
    /// This many GPUs (at least 1).
    Count(u32),
    /// These devices, by index or UUID (at least one).
    Devices(Vec<String>),
}

const GPU_EXPECTED: &str = "expected \"all\", a number of GPUs, or a list of device ids";

impl GpuRequest {
    /// Parses docker's `--gpus` syntax: `all`, a number, `count=N`, or `device=0,2`, optionally
    /// in quotes (`"device=0,2"`, as the docker CLI needs them).
    ///
    /// ```
    /// use llamactl_core::docker::options::GpuRequest;
    ///
    /// assert_eq!(GpuRequest::parse("all"), Ok(GpuRequest::All));
    /// assert_eq!(GpuRequest::parse("2"), Ok(GpuRequest::Count(2)));
    /// assert_eq!(GpuRequest::parse("\"device=0,2\""), Ok(GpuRequest::Devices(vec!["0".into(), "2".into()])));
    /// assert!(GpuRequest::parse("driver=nvidia").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<GpuRequest, String> {
        let t = strip_quotes(text.trim()).trim();
        if t.eq_ignore_ascii_case("all") || t.eq_ignore_ascii_case("count=all") {
            return Ok(GpuRequest::All);
        }
        if let Some(ids) = t.strip_prefix("device=") {
            let ids: Vec<String> = ids.split(',').map(|id| id.trim().to_owned()).collect();
            if ids.iter().any(String::is_empty) {
                return Err(format!("{text:?}: empty device id (use e.g. \"device=0,2\")"));
            }
            return Ok(GpuRequest::Devices(ids));
        }
        let count = t.strip_prefix("count=").unwrap_or(t);
        if !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit()) {
            let count = count.parse::<u32>().map_err(|_| format!("{text:?} is too many GPUs"))?;
            let request = GpuRequest::Count(count);
            request.check()?;
            return Ok(request);
        }
        Err(format!("{text:?} is not a GPU request: {GPU_EXPECTED} (e.g. \"device=0,2\")"))
    }

    /// Checks what parsing already guarantees, for values built in code.
    fn check(&self) -> Result<(), String> {
        match self {
            GpuRequest::All => Ok(()),
            GpuRequest::Count(0) => Err("0 GPUs: ask for at least 1 (leave gpus out for none)".into()),
            GpuRequest::Count(_) => Ok(()),
            GpuRequest::Devices(ids) if ids.is_empty() => Err("the list of device ids is empty".into()),
            GpuRequest::Devices(ids) => match ids.iter().find(|id| id.trim().is_empty() || id.contains(',')) {
                Some(id) => Err(format!("{id:?} is not a device id")),
                None => Ok(()),
            },
        }
    }
}

fn strip_quotes(text: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            return inner;
        }
    }
    text
}

impl FromStr for GpuRequest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for GpuRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            GpuRequest::All => serializer.serialize_str("all"),
            GpuRequest::Count(n) => serializer.serialize_u32(*n),
            GpuRequest::Devices(ids) => {
                let mut seq = serializer.serialize_seq(Some(ids.len()))?;
                for id in ids {
                    seq.serialize_element(id)?;
                }
                seq.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for GpuRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(GpuVisitor)
    }
}

struct GpuVisitor;

impl<'de> Visitor<'de> for GpuVisitor {
    type Value = GpuRequest;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&GPU_EXPECTED["expected ".len()..])
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<GpuRequest, E> {
        GpuRequest::parse(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<GpuRequest, E> {
        let count = u32::try_from(v).map_err(|_| E::custom(format!("{v} is too many GPUs")))?;
        let request = GpuRequest::Count(count);
        request.check().map_err(E::custom)?;
        Ok(request)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<GpuRequest, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!("{v} GPUs: the number must not be negative"))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<GpuRequest, E> {
        Err(E::custom(format!("{v} is not a whole number of GPUs; {GPU_EXPECTED}")))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<GpuRequest, A::Error> {
        let mut ids = Vec::new();
        while let Some(DeviceId(id)) = seq.next_element()? {
            ids.push(id);
        }
        let request = GpuRequest::Devices(ids);
        request.check().map_err(de::Error::custom)?;
        Ok(request)
    }
}

/// One element of a device id list: a string, or a non-negative integer (a GPU index).
struct DeviceId(String);

impl<'de> Deserialize<'de> for DeviceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = DeviceId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a device id (a GPU index or UUID)")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<DeviceId, E> {
                Ok(DeviceId(v.trim().to_owned()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DeviceId, E> {
                Ok(DeviceId(v.to_string()))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// A size in bytes: `shm_size`, `memory`.
///
/// Reads a positive integer (bytes) or a string `<number>[unit]` with the unit `b`, `k`/`kb`/`kib`,
/// `m`/`mb`/`mib`, `g`/`gb`/`gib` or `t`/`tb`/`tib` (case-insensitive, powers of 1024 like
/// docker). A fraction is accepted when it comes to a whole number of bytes (`"1.5g"`). Written
/// back as the number of bytes; displayed with the largest exact unit (`1g`).
///
/// ```
/// use llamactl_core::docker::options::ByteSize;
///
/// assert_eq!(ByteSize::parse("512m").map(ByteSize::bytes), Ok(512 << 20));
/// assert_eq!(ByteSize::parse("1.5G").map(ByteSize::bytes), Ok(3 << 29));
/// assert!(ByteSize::parse("0").is_err());
/// assert_eq!(ByteSize(1 << 30).to_string(), "1g");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

const BYTE_SIZE_EXPECTED: &str = "a number of bytes or a string with a unit k, m, g or t (e.g. \"1g\")";

impl ByteSize {
    /// Parses `"1g"`, `"512mb"`, `"64K"`, `"1.5g"` or `"1048576"`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let t = text.trim();
        if t.starts_with('-') {
            return Err(format!("{text:?}: a size must not be negative"));
        }
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let shift = match unit.trim_start().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            "t" | "tb" | "tib" => 40,
            _ => return Err(format!("{text:?} is not a size: expected {BYTE_SIZE_EXPECTED}")),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (number.contains('.') && !digits(fraction)) {
            return Err(format!("{text:?} is not a size: expected {BYTE_SIZE_EXPECTED}"));
        }
        let too_large = || format!("{text:?} is too large");
        let unit_bytes: u128 = 1 << shift;
        let mut bytes = whole.parse::<u128>().ok().and_then(|w| w.checked_mul(unit_bytes)).ok_or_else(too_large)?;
        let fraction = fraction.trim_end_matches('0');
        if !fraction.is_empty() {
            let not_whole = || format!("{text:?} is not a whole number of bytes");
            // Exact arithmetic: fraction / 10^len * unit must be an integer.
            let scale =
                u32::try_from(fraction.len()).ok().and_then(|len| 10u128.checked_pow(len)).ok_or_else(not_whole)?;
            let numerator =
                fraction.parse::<u128>().ok().and_then(|f| f.checked_mul(unit_bytes)).ok_or_else(not_whole)?;
            if !numerator.is_multiple_of(scale) {
                return Err(not_whole());
            }
            bytes = bytes.checked_add(numerator / scale).ok_or_else(too_large)?;
        }
        let bytes = u64::try_from(bytes).map_err(|_| too_large())?;
        if bytes == 0 {
            return Err(format!("{text:?}: a size must be greater than zero"));
        }
        Ok(ByteSize(bytes))
    }

    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shift, unit) in [(40, "t"), (30, "g"), (20, "m"), (10, "k")] {
            if self.0 != 0 && self.0.is_multiple_of(1u64 << shift) {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ByteSizeVisitor)
    }
}

struct ByteSizeVisitor;

impl Visitor<'_> for ByteSizeVisitor {
    type Value = ByteSize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(BYTE_SIZE_EXPECTED)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
        ByteSize::parse(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
        if v == 0 {
            return Err(E::custom("a size must be greater than zero"));
        }
        Ok(ByteSize(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!("{v}: a size must not be negative"))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ByteSize, E> {
        Err(E::custom(format!("{v} is not a whole number of bytes; expected {BYTE_SIZE_EXPECTED}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn run_args(list: &[&str]) -> Result<DockerRunOptions, String> {
        parse_run_args(&args(list), Some("/home/me"))
    }

    fn run_err(list: &[&str]) -> String {
        run_args(list).unwrap_err()
    }

    fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    fn ids(list: &[&str]) -> GpuRequest {
        GpuRequest::Devices(list.iter().map(|s| (*s).to_owned()).collect())
    }

    // ---- ByteSize ----

    #[test]
    fn byte_size_parses_units_case_insensitively() {
        let cases: &[(&str, u64)] = &[
            ("1", 1),
            ("1048576", 1 << 20),
            ("100b", 100),
            ("100B", 100),
            ("64k", 64 << 10),
            ("64kb", 64 << 10),
            ("64KiB", 64 << 10),
            ("512m", 512 << 20),
            ("512MB", 512 << 20),
            ("512mib", 512 << 20),
            ("1g", 1 << 30),
            ("1G", 1 << 30),
            ("16gb", 16 << 30),
            ("2GiB", 2 << 30),
            ("1t", 1 << 40),
            ("1TB", 1 << 40),
            (" 8g ", 8 << 30),
            ("8 g", 8 << 30),
            ("1.5g", 3 << 29),
            ("0.5k", 512),
            ("1.50g", 3 << 29),
            ("2.0m", 2 << 20),
            ("0.25m", 256 << 10),
            ("18446744073709551615", u64::MAX),
            ("16777215t", 16_777_215 << 40),
        ];
        for (text, bytes) in cases {
            assert_eq!(ByteSize::parse(text), Ok(ByteSize(*bytes)), "{text}");
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(*bytes)), "{text}");
        }
    }

    #[test]
    fn byte_size_refuses_bad_values_clearly() {
        let cases: &[(&str, &str)] = &[
            ("0", "greater than zero"),
            ("0g", "greater than zero"),
            ("0.0m", "greater than zero"),
            ("-1", "negative"),
            ("-1g", "negative"),
            ("", "not a size"),
            ("g", "not a size"),
            ("1x", "not a size"),
            ("1gg", "not a size"),
            ("1p", "not a size"),
            ("1.g", "not a size"),
            (".5g", "not a size"),
            ("1.2.3g", "not a size"),
            ("1,5g", "not a size"),
            ("0.1k", "not a whole number of bytes"),
            ("1.5", "not a whole number of bytes"),
            ("1.0000000000000000000000000000000000000000001g", "not a whole number of bytes"),
            ("18446744073709551616", "too large"),
            ("16777216t", "too large"),
            ("99999999999999999999999999999999999999999999", "too large"),
        ];
        for (text, expected) in cases {
            let err = ByteSize::parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.contains(&format!("{text:?}")), "the error quotes the value: {err}");
        }
    }

    #[test]
    fn byte_size_serde() {
        assert_eq!(from_json::<ByteSize>(json!(1024)), Ok(ByteSize(1024)));
        assert_eq!(from_json::<ByteSize>(json!("1g")), Ok(ByteSize(1 << 30)));
        assert_eq!(serde_json::to_value(ByteSize(1 << 30)).unwrap(), json!(1_073_741_824));
        let back: ByteSize = serde_json::from_value(serde_json::to_value(ByteSize(12345)).unwrap()).unwrap();
        assert_eq!(back, ByteSize(12345));
        for (value, expected) in [
            (json!(0), "greater than zero"),
            (json!(-5), "negative"),
            (json!(1.5), "whole number of bytes"),
            (json!("1x"), "not a size"),
            (json!(true), "a number of bytes or a string with a unit"),
            (json!(null), "a number of bytes or a string with a unit"),
        ] {
            let err = from_json::<ByteSize>(value.clone()).unwrap_err();
            assert!(err.contains(expected), "{value}: {err}");
        }
    }

    #[test]
    fn byte_size_display_uses_the_largest_exact_unit() {
        assert_eq!(ByteSize(1 << 30).to_string(), "1g");
        assert_eq!(ByteSize(3 << 29).to_string(), "1536m");
        assert_eq!(ByteSize(64 << 10).to_string(), "64k");
        assert_eq!(ByteSize(2 << 40).to_string(), "2t");
        assert_eq!(ByteSize(1000).to_string(), "1000");
        for size in [ByteSize(1 << 30), ByteSize(3 << 29), ByteSize(1000), ByteSize(u64::MAX)] {
            assert_eq!(ByteSize::parse(&size.to_string()), Ok(size));
        }
    }

    // ---- GpuRequest ----

    #[test]
    fn gpu_request_parses_docker_syntax() {
        assert_eq!(GpuRequest::parse("all"), Ok(GpuRequest::All));
        assert_eq!(GpuRequest::parse("ALL"), Ok(GpuRequest::All));
        assert_eq!(GpuRequest::parse("\"all\""), Ok(GpuRequest::All));
        assert_eq!(GpuRequest::parse("count=all"), Ok(GpuRequest::All));
        assert_eq!(GpuRequest::parse("2"), Ok(GpuRequest::Count(2)));
        assert_eq!(GpuRequest::parse("count=3"), Ok(GpuRequest::Count(3)));
        assert_eq!(GpuRequest::parse("device=0"), Ok(ids(&["0"])));
        assert_eq!(GpuRequest::parse("device=0,2"), Ok(ids(&["0", "2"])));
        assert_eq!(GpuRequest::parse("\"device=0,2\""), Ok(ids(&["0", "2"])));
        assert_eq!(GpuRequest::parse("'device=0, 2'"), Ok(ids(&["0", "2"])));
        assert_eq!(GpuRequest::parse("device=GPU-3a23c669-1f69"), Ok(ids(&["GPU-3a23c669-1f69"])));
        assert_eq!("all".parse::<GpuRequest>(), Ok(GpuRequest::All));
    }

    #[test]
    fn gpu_request_refuses_bad_syntax() {
        for (text, expected) in [
            ("", "expected \"all\", a number of GPUs, or a list of device ids"),
            ("some", "expected \"all\", a number of GPUs, or a list of device ids"),
            ("driver=nvidia", "is not a GPU request"),
            ("all,capabilities=utility", "is not a GPU request"),
            ("-1", "is not a GPU request"),
            ("0", "at least 1"),
            ("99999999999", "too many GPUs"),
            ("device=", "empty device id"),
            ("device=0,,1", "empty device id"),
        ] {
            let err = GpuRequest::parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn gpu_request_serde_round_trips() {
        for (value, request) in [
            (json!("all"), GpuRequest::All),
            (json!(2), GpuRequest::Count(2)),
            (json!(["0", "2"]), ids(&["0", "2"])),
            (json!(["GPU-abc"]), ids(&["GPU-abc"])),
        ] {
            assert_eq!(from_json::<GpuRequest>(value.clone()), Ok(request.clone()), "{value}");
            assert_eq!(serde_json::to_value(&request).unwrap(), value);
        }
        // Other accepted spellings, written back in the canonical form.
        assert_eq!(from_json::<GpuRequest>(json!("device=0,2")), Ok(ids(&["0", "2"])));
        assert_eq!(serde_json::to_value(ids(&["0", "2"])).unwrap(), json!(["0", "2"]));
        assert_eq!(from_json::<GpuRequest>(json!([0, 2])), Ok(ids(&["0", "2"])));
        assert_eq!(from_json::<GpuRequest>(json!("3")), Ok(GpuRequest::Count(3)));
    }

    #[test]
    fn gpu_request_serde_errors_say_what_is_expected() {
        for (value, expected) in [
            (json!(true), "expected \"all\", a number of GPUs, or a list of device ids"),
            (json!({"count": 1}), "expected \"all\", a number of GPUs, or a list of device ids"),
            (json!(null), "expected \"all\", a number of GPUs, or a list of device ids"),
            (json!("most"), "expected \"all\", a number of GPUs, or a list of device ids"),
            (json!(1.5), "expected \"all\", a number of GPUs, or a list of device ids"),
            (json!(0), "at least 1"),
            (json!(-1), "must not be negative"),
            (json!(5_000_000_000u64), "too many GPUs"),
            (json!([]), "list of device ids is empty"),
            (json!([""]), "not a device id"),
            (json!(["0,1"]), "not a device id"),
            (json!([true]), "a device id"),
        ] {
            let err = from_json::<GpuRequest>(value.clone()).unwrap_err();
            assert!(err.contains(expected), "{value}: {err}");
        }
    }

    // ---- DockerNetwork ----

    #[test]
    fn docker_network_serde() {
        assert_eq!(from_json::<DockerNetwork>(json!("bridge")), Ok(DockerNetwork::Bridge));
        assert_eq!(from_json::<DockerNetwork>(json!("host")), Ok(DockerNetwork::Host));
        assert_eq!(serde_json::to_value(DockerNetwork::Host).unwrap(), json!("host"));
        assert_eq!(serde_json::to_value(DockerNetwork::Bridge).unwrap(), json!("bridge"));
        assert_eq!(DockerNetwork::Host.to_string(), "host");
        assert_eq!(DockerNetwork::Bridge.as_str(), "bridge");
        let err = from_json::<DockerNetwork>(json!("overlay")).unwrap_err();
        assert!(err.contains("overlay") && err.contains("bridge") && err.contains("host"), "{err}");
        assert!(from_json::<DockerNetwork>(json!("Host")).is_err());
    }

    // ---- DockerRunOptions serde ----

    fn full_options() -> DockerRunOptions {
        DockerRunOptions {
            image: Some("ghcr.io/ggml-org/llama.cpp:server-cuda".into()),
            entrypoint: Some(vec!["/app/llama-server".into()]),
            network: Some(DockerNetwork::Bridge),
            volumes: vec!["/models:/models:ro".into(), "hf-cache:/root/.cache/huggingface".into()],
            gpus: Some(ids(&["0", "2"])),
            shm_size: Some(ByteSize(1 << 30)),
            memory: Some(ByteSize(16 << 30)),
            environment: BTreeMap::from([("HF_HOME".into(), "/root/.cache/huggingface".into())]),
        }
    }

    #[test]
    fn run_options_round_trip() {
        let options = full_options();
        let value = serde_json::to_value(&options).unwrap();
        assert_eq!(
            value,
            json!({
                "image": "ghcr.io/ggml-org/llama.cpp:server-cuda",
                "entrypoint": ["/app/llama-server"],
                "network": "bridge",
                "volumes": ["/models:/models:ro", "hf-cache:/root/.cache/huggingface"],
                "gpus": ["0", "2"],
                "shm_size": 1_073_741_824u64,
                "memory": 17_179_869_184u64,
                "environment": {"HF_HOME": "/root/.cache/huggingface"},
            })
        );
        options.validate().unwrap();
        assert_eq!(from_json::<DockerRunOptions>(value), Ok(options));
    }

    #[test]
    fn run_options_empty_serializes_to_an_empty_object() {
        assert_eq!(serde_json::to_value(DockerRunOptions::default()).unwrap(), json!({}));
        assert_eq!(from_json::<DockerRunOptions>(json!({})), Ok(DockerRunOptions::default()));
    }

    #[test]
    fn run_options_read_human_sizes_and_gpu_forms() {
        let options: DockerRunOptions =
            from_json(json!({"gpus": "device=1", "shm_size": "512m", "memory": "8g", "network": "host"})).unwrap();
        assert_eq!(options.gpus, Some(ids(&["1"])));
        assert_eq!(options.shm_size, Some(ByteSize(512 << 20)));
        assert_eq!(options.memory, Some(ByteSize(8 << 30)));
        assert_eq!(options.network, Some(DockerNetwork::Host));
    }

    #[test]
    fn run_options_refuse_unknown_fields_naming_them() {
        let err = from_json::<DockerRunOptions>(json!({"image": "x", "privileged": true})).unwrap_err();
        assert!(err.contains("unknown field `privileged`"), "{err}");
        let err = from_json::<DockerRunOptions>(json!({"args": ["run"]})).unwrap_err();
        assert!(err.contains("`args`"), "{err}");
    }

    #[test]
    fn run_options_wrong_types_are_refused() {
        let err = from_json::<DockerRunOptions>(json!({"gpus": true})).unwrap_err();
        assert!(err.contains("a number of GPUs"), "{err}");
        let err = from_json::<DockerRunOptions>(json!({"shm_size": "lots"})).unwrap_err();
        assert!(err.contains("\"lots\""), "{err}");
        let err = from_json::<DockerRunOptions>(json!({"volumes": "/a:/b"})).unwrap_err();
        assert!(err.contains("sequence"), "{err}");
    }

    // ---- overlay ----

    #[test]
    fn overlay_top_scalars_win_where_set() {
        let base = full_options();
        assert_eq!(base.overlay(&DockerRunOptions::default()), base);
        assert_eq!(DockerRunOptions::default().overlay(&base), base);
        let top = DockerRunOptions {
            image: Some("vllm/vllm-openai:latest".into()),
            network: Some(DockerNetwork::Host),
            gpus: Some(GpuRequest::All),
            memory: Some(ByteSize(32 << 30)),
            ..Default::default()
        };
        let merged = base.overlay(&top);
        assert_eq!(merged.image.as_deref(), Some("vllm/vllm-openai:latest"));
        assert_eq!(merged.network, Some(DockerNetwork::Host));
        assert_eq!(merged.gpus, Some(GpuRequest::All));
        assert_eq!(merged.memory, Some(ByteSize(32 << 30)));
        assert_eq!(merged.entrypoint, base.entrypoint, "unset in top: kept");
        assert_eq!(merged.shm_size, base.shm_size);
        let top = DockerRunOptions { entrypoint: Some(vec!["python3".into(), "-m".into()]), ..Default::default() };
        assert_eq!(base.overlay(&top).entrypoint, top.entrypoint, "lists are replaced whole");
    }

    #[test]
    fn overlay_merges_environment_top_winning() {
        let base = DockerRunOptions {
            environment: BTreeMap::from([("A".into(), "1".into()), ("B".into(), "base".into())]),
            ..Default::default()
        };
        let top = DockerRunOptions {
            environment: BTreeMap::from([("B".into(), "top".into()), ("C".into(), "3".into())]),
            ..Default::default()
        };
        assert_eq!(
            base.overlay(&top).environment,
            BTreeMap::from([("A".into(), "1".into()), ("B".into(), "top".into()), ("C".into(), "3".into())])
        );
    }

    #[test]
    fn overlay_volumes_base_then_top_replacing_same_target() {
        let base = DockerRunOptions {
            volumes: vec!["/models:/models:ro".into(), "/cache:/root/.cache".into(), "/data:/data/".into()],
            ..Default::default()
        };
        let top = DockerRunOptions {
            volumes: vec!["/other:/extra".into(), "/fast/models:/models".into(), "vol:/data".into()],
            ..Default::default()
        };
        assert_eq!(
            base.overlay(&top).volumes,
            ["/cache:/root/.cache", "/other:/extra", "/fast/models:/models", "vol:/data"]
        );
        let top = DockerRunOptions { volumes: vec!["/x:/y".into()], ..Default::default() };
        assert_eq!(base.overlay(&top).volumes, ["/models:/models:ro", "/cache:/root/.cache", "/data:/data/", "/x:/y"]);
    }

    // ---- validate ----

    fn invalid(options: DockerRunOptions) -> (String, String) {
        options.validate().unwrap_err()
    }

    #[test]
    fn validate_accepts_good_options() {
        full_options().validate().unwrap();
        DockerRunOptions::default().validate().unwrap();
        DockerRunOptions {
            volumes: vec!["/a:/a".into(), "/b:/b:rw".into(), "my_vol.1:/c:ro".into(), "/:/host:ro".into()],
            gpus: Some(GpuRequest::Count(1)),
            memory: Some(ByteSize(6 << 20)),
            shm_size: Some(ByteSize(1)),
            ..Default::default()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn validate_names_the_field() {
        let o = |f: fn(&mut DockerRunOptions)| {
            let mut options = full_options();
            f(&mut options);
            invalid(options)
        };
        let cases: Vec<((String, String), &str, &str)> = vec![
            (o(|x| x.image = Some(String::new())), "docker.image", "must not be empty"),
            (o(|x| x.image = Some("  ".into())), "docker.image", "must not be empty"),
            (o(|x| x.image = Some("a b".into())), "docker.image", "whitespace"),
            (o(|x| x.entrypoint = Some(vec![])), "docker.entrypoint", "empty list"),
            (o(|x| x.entrypoint = Some(vec!["a".into(), "b\0".into()])), "docker.entrypoint[1]", "NUL"),
            (o(|x| x.gpus = Some(GpuRequest::Count(0))), "docker.gpus", "at least 1"),
            (o(|x| x.gpus = Some(GpuRequest::Devices(vec![]))), "docker.gpus", "empty"),
            (o(|x| x.shm_size = Some(ByteSize(0))), "docker.shm_size", "greater than zero"),
            (o(|x| x.memory = Some(ByteSize(0))), "docker.memory", "minimum"),
            (o(|x| x.memory = Some(ByteSize(4 << 20))), "docker.memory", "4m is below Docker's minimum"),
            (o(|x| _ = x.environment.insert(String::new(), "v".into())), "docker.environment", "non-empty"),
            (o(|x| _ = x.environment.insert("A=B".into(), "v".into())), "docker.environment", "\"A=B\""),
            (o(|x| _ = x.environment.insert("A".into(), "\0".into())), "docker.environment", "NUL"),
        ];
        for ((field, message), expected_field, expected_message) in cases {
            assert_eq!(field, expected_field, "{message}");
            assert!(message.contains(expected_message), "{field}: {message}");
        }
    }

    #[test]
    fn validate_checks_volume_syntax() {
        let cases: &[(&str, &str)] = &[
            ("", "must be SOURCE:TARGET"),
            ("/models", "must be SOURCE:TARGET"),
            ("/a:/b:ro:z", "too many ':'"),
            (":/b", "source must not be empty"),
            ("/a:", "target must not be empty"),
            ("/a:b", "must be an absolute path in the container"),
            ("/a:/b:z", "mode \"z\" is not supported"),
            ("/a:/b:", "mode \"\" is not supported"),
            ("/a:/b:RO", "mode \"RO\""),
            ("~/models:/models", "'~' is not expanded"),
            ("./models:/models", "absolute host path or a volume name"),
            ("models/x:/models", "absolute host path or a volume name"),
            ("m:/models", "absolute host path or a volume name"),
            ("-vol:/models", "absolute host path or a volume name"),
        ];
        for (volume, expected) in cases {
            let options = DockerRunOptions { volumes: vec!["/ok:/ok".into(), (*volume).into()], ..Default::default() };
            let (field, message) = invalid(options);
            assert_eq!(field, "docker.volumes[1]", "{volume}");
            assert!(message.contains(expected), "{volume}: {message}");
        }
    }

    #[test]
    fn validate_refuses_two_mounts_on_one_target() {
        let options = DockerRunOptions {
            volumes: vec!["/a:/data".into(), "/b:/other".into(), "/c:/data/:ro".into()],
            ..Default::default()
        };
        assert_eq!(
            invalid(options),
            ("docker.volumes[2]".into(), "target /data is already mounted by docker.volumes[0]".into())
        );
    }

    // ---- from_run_args ----

    #[test]
    fn go_default_style_args() {
        let options = run_args(&[
            "run",
            "--rm",
            "--network",
            "host",
            "--gpus",
            "all",
            "-v",
            "~/.cache/llama.cpp:/root/.cache/llama.cpp",
            "--shm-size",
            "1g",
        ])
        .unwrap();
        assert_eq!(
            options,
            DockerRunOptions {
                network: Some(DockerNetwork::Host),
                gpus: Some(GpuRequest::All),
                volumes: vec!["/home/me/.cache/llama.cpp:/root/.cache/llama.cpp".into()],
                shm_size: Some(ByteSize(1 << 30)),
                ..Default::default()
            }
        );
        options.validate().unwrap();
        // The Go llamactl's vLLM default.
        let options = run_args(&[
            "run",
            "--rm",
            "--network",
            "host",
            "--gpus",
            "all",
            "--shm-size",
            "1g",
            "-v",
            "~/.cache/huggingface:/root/.cache/huggingface",
        ])
        .unwrap();
        assert_eq!(options.volumes, ["/home/me/.cache/huggingface:/root/.cache/huggingface"]);
    }

    #[test]
    fn empty_args_and_bare_run_give_defaults() {
        assert_eq!(run_args(&[]), Ok(DockerRunOptions::default()));
        assert_eq!(run_args(&["run"]), Ok(DockerRunOptions::default()));
        assert_eq!(run_args(&["--rm", "-d", "--detach", "-i", "-t", "-it", "-ti", "--init"]), Ok(Default::default()));
        assert_eq!(run_args(&["--rm=true", "--init=false"]), Ok(Default::default()));
        assert!(run_err(&["--rm=yes"]).contains("not true or false"));
    }

    #[test]
    fn each_flag_in_both_forms() {
        let cases: Vec<(Vec<&str>, Vec<&str>, DockerRunOptions)> = vec![
            (
                vec!["--network", "host"],
                vec!["--network=host"],
                DockerRunOptions { network: Some(DockerNetwork::Host), ..Default::default() },
            ),
            (
                vec!["--net", "bridge"],
                vec!["--net=bridge"],
                DockerRunOptions { network: Some(DockerNetwork::Bridge), ..Default::default() },
            ),
            (
                vec!["--gpus", "2"],
                vec!["--gpus=2"],
                DockerRunOptions { gpus: Some(GpuRequest::Count(2)), ..Default::default() },
            ),
            (
                vec!["--gpus", "\"device=0,1\""],
                vec!["--gpus=device=0,1"],
                DockerRunOptions { gpus: Some(ids(&["0", "1"])), ..Default::default() },
            ),
            (
                vec!["-v", "/m:/models:ro"],
                vec!["-v=/m:/models:ro"],
                DockerRunOptions { volumes: vec!["/m:/models:ro".into()], ..Default::default() },
            ),
            (
                vec!["--volume", "vol:/data"],
                vec!["--volume=vol:/data"],
                DockerRunOptions { volumes: vec!["vol:/data".into()], ..Default::default() },
            ),
            (
                vec!["--shm-size", "512m"],
                vec!["--shm-size=512m"],
                DockerRunOptions { shm_size: Some(ByteSize(512 << 20)), ..Default::default() },
            ),
            (
                vec!["-m", "8g"],
                vec!["-m=8g"],
                DockerRunOptions { memory: Some(ByteSize(8 << 30)), ..Default::default() },
            ),
            (
                vec!["--memory", "8g"],
                vec!["--memory=8g"],
                DockerRunOptions { memory: Some(ByteSize(8 << 30)), ..Default::default() },
            ),
            (
                vec!["-e", "A=b=c"],
                vec!["-e=A=b=c"],
                DockerRunOptions { environment: BTreeMap::from([("A".into(), "b=c".into())]), ..Default::default() },
            ),
            (
                vec!["--env", "EMPTY="],
                vec!["--env=EMPTY="],
                DockerRunOptions {
                    environment: BTreeMap::from([("EMPTY".into(), String::new())]),
                    ..Default::default()
                },
            ),
            (
                vec!["--entrypoint", "/app/llama-server"],
                vec!["--entrypoint=/app/llama-server"],
                DockerRunOptions { entrypoint: Some(vec!["/app/llama-server".into()]), ..Default::default() },
            ),
        ];
        for (spaced, joined, expected) in cases {
            assert_eq!(run_args(&spaced).as_ref(), Ok(&expected), "{spaced:?}");
            assert_eq!(run_args(&joined).as_ref(), Ok(&expected), "{joined:?}");
            let mut with_run = vec!["run"];
            with_run.extend(&spaced);
            assert_eq!(run_args(&with_run), Ok(expected), "{with_run:?}");
        }
    }

    #[test]
    fn repeated_flags_accumulate_or_last_wins() {
        let options = run_args(&[
            "-v",
            "/a:/a",
            "-v",
            "/b:/b",
            "-e",
            "A=1",
            "-e",
            "B=2",
            "-e",
            "A=3",
            "--network",
            "host",
            "--net",
            "bridge",
        ])
        .unwrap();
        assert_eq!(options.volumes, ["/a:/a", "/b:/b"]);
        assert_eq!(options.environment, BTreeMap::from([("A".into(), "3".into()), ("B".into(), "2".into())]));
        assert_eq!(options.network, Some(DockerNetwork::Bridge));
    }

    #[test]
    fn home_expansion() {
        assert_eq!(expand_home("~/x:/y", Some("/home/me")), "/home/me/x:/y");
        assert_eq!(expand_home("~/x:/y", Some("/home/me/")), "/home/me/x:/y");
        assert_eq!(expand_home("~:/y", Some("/root")), "/root:/y");
        assert_eq!(expand_home("~bob/x:/y", Some("/root")), "~bob/x:/y");
        assert_eq!(expand_home("/a/~/x:/y", Some("/root")), "/a/~/x:/y");
        assert_eq!(expand_home("~/x:/y", None), "~/x:/y");
        let err = parse_run_args(&args(&["-v", "~/x:/y"]), None).unwrap_err();
        assert!(err.contains("'~' is not expanded"), "{err}");
        assert!(err.contains("-v \"~/x:/y\""), "{err}");
    }

    #[test]
    fn from_run_args_reads_home_from_the_environment() {
        // Whatever HOME is here, the public function agrees with the explicit one.
        let home = std::env::var("HOME").ok().filter(|h| !h.is_empty());
        let list = args(&["-v", "/a:/a"]);
        assert_eq!(DockerRunOptions::from_run_args(&list), parse_run_args(&list, home.as_deref()));
    }

    #[test]
    fn refusals_name_the_argument() {
        let cases: &[(&[&str], &str)] = &[
            (&["--network", "none"], "--network \"none\" is not supported (use host or bridge)"),
            (&["--net=my-net"], "--net \"my-net\" is not supported"),
            (&["--network", "container:x"], "\"container:x\""),
            (&["--network"], "--network: missing value"),
            (&["--gpus"], "--gpus: missing value"),
            (&["--gpus", "some"], "--gpus: \"some\" is not a GPU request"),
            (&["--gpus", "0"], "--gpus: 0 GPUs"),
            (&["-v"], "-v: missing value"),
            (&["-v", "/models"], "-v \"/models\": \"/models\" must be SOURCE:TARGET"),
            (&["--volume=/a:b"], "--volume \"/a:b\""),
            (&["-v", "/a:/b:z"], "mode \"z\""),
            (&["--shm-size", "big"], "--shm-size: \"big\" is not a size"),
            (&["--shm-size=0"], "--shm-size: \"0\": a size must be greater than zero"),
            (&["-m", "1.1"], "-m: \"1.1\" is not a whole number of bytes"),
            (&["--memory"], "--memory: missing value"),
            (&["-e", "HOME"], "-e \"HOME\": give the value as KEY=VALUE"),
            (&["--env=PATH"], "--env \"PATH\": give the value as KEY=VALUE"),
            (&["-e", "=x"], "the variable name is empty"),
            (&["--entrypoint="], "--entrypoint: must not be empty"),
            (&["--ipc", "host"], "--ipc is not supported"),
            (&["--ipc=host"], "--ipc is not supported"),
            (&["--name", "x"], "--name is not supported: llamactl names its containers itself"),
            (&["--name=x"], "--name is not supported"),
            (&["--privileged"], "unsupported docker run argument \"--privileged\" (supported: --rm"),
            (&["-p", "8080:8080"], "unsupported docker run argument \"-p\""),
            (&["--cpus=2"], "unsupported docker run argument \"--cpus=2\""),
            (&["-vfoo"], "unsupported docker run argument \"-vfoo\""),
            (&["ghcr.io/ggml-org/llama.cpp:server"], "unexpected argument \"ghcr.io/ggml-org/llama.cpp:server\""),
            (&["--rm", "run"], "unexpected argument \"run\""),
        ];
        for (list, expected) in cases {
            let err = run_err(list);
            assert!(err.contains(expected), "{list:?}: {err}");
        }
        let err = run_err(&["--privileged"]);
        for flag in ["--network", "--gpus", "-v/--volume", "--shm-size", "-m/--memory", "-e/--env"] {
            assert!(err.contains(flag), "the list of supported arguments names {flag}: {err}");
        }
        assert!(run_err(&["image"]).contains("supported: "), "positional arguments list them too");
    }
}
