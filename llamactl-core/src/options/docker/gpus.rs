//! [`GpuRequest`]: which GPUs a container gets, in `docker run --gpus` terms.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
    /// use llamactl_core::options::docker::GpuRequest;
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
    pub(super) fn check(&self) -> Result<(), String> {
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
