//! The resource history and the host: `GET /api/v1/system/metrics?window=15m|1h|24h` (series
//! for charts, averaged into steps, and the latest tick) and `GET /api/v1/system/info`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use llamactl_api::resources::{
    GpuDescription, GpuPoint, HostPoint, InstancePoint, LatestSample, MetricsWindow, SystemInfo, SystemMetrics,
};
use llamactl_core::db::{ResourceSample, ResourceScope};
use llamactl_core::resources::{Tick, gpu, system_info};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use super::extract::Query;
use super::system_checks;
use crate::state::AppState;

/// At most this many points per series: longer windows are averaged into longer steps.
pub const MAX_POINTS: u64 = 720;

/// How long `nvidia-smi` and the Docker engine may take to describe the host.
const INFO_TIMEOUT: Duration = Duration::from_secs(5);

/// Query of `GET /api/v1/system/metrics`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct MetricsQuery {
    /// `15m`, `1h` (the default) or `24h`.
    pub window: Option<String>,
}

/// Seconds each point of a `window` covers when samples come every `interval_seconds`: the
/// interval, or longer so that no series has more than [`MAX_POINTS`] points.
pub fn step_seconds(window: MetricsWindow, interval_seconds: u64) -> u64 {
    interval_seconds.max(1).max(window.seconds().div_ceil(MAX_POINTS))
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u32), |(sum, n), v| (sum + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

fn mean_bytes(values: impl Iterator<Item = u64>) -> Option<u64> {
    let (sum, n) = values.fold((0u128, 0u128), |(sum, n), v| (sum + u128::from(v), n + 1));
    (n > 0).then(|| u64::try_from(sum / n).unwrap_or(u64::MAX))
}

/// `samples` (oldest first) averaged per scope into steps of `step` seconds: one sample per
/// scope and step, at the step's start, each field the mean of the values present in it.
pub fn average(samples: &[ResourceSample], step: u64) -> Vec<ResourceSample> {
    let step_ms = i64::try_from(step.max(1)).unwrap_or(i64::MAX / 1000).saturating_mul(1000);
    let mut buckets: BTreeMap<(ResourceScope, i64), Vec<&ResourceSample>> = BTreeMap::new();
    for sample in samples {
        let ms = sample.at.timestamp_millis();
        buckets.entry((sample.scope.clone(), ms - ms.rem_euclid(step_ms))).or_default().push(sample);
    }
    buckets
        .into_iter()
        .map(|((scope, start), group)| ResourceSample {
            at: DateTime::from_timestamp_millis(start).unwrap_or_default(),
            scope,
            cpu_percent: mean(group.iter().filter_map(|s| s.cpu_percent)),
            memory_used_bytes: mean_bytes(group.iter().filter_map(|s| s.memory_used_bytes)),
            memory_total_bytes: mean_bytes(group.iter().filter_map(|s| s.memory_total_bytes)),
            memory_available_bytes: mean_bytes(group.iter().filter_map(|s| s.memory_available_bytes)),
            load1: mean(group.iter().filter_map(|s| s.load1)),
        })
        .collect()
}

fn host_point(s: &ResourceSample) -> HostPoint {
    HostPoint {
        at: s.at,
        cpu_percent: s.cpu_percent,
        memory_used_bytes: s.memory_used_bytes,
        memory_available_bytes: s.memory_available_bytes,
        memory_total_bytes: s.memory_total_bytes,
        load1: s.load1,
    }
}

fn instance_point(s: &ResourceSample) -> InstancePoint {
    InstancePoint { at: s.at, cpu_percent: s.cpu_percent, rss_bytes: s.memory_used_bytes }
}

fn gpu_point(s: &ResourceSample) -> GpuPoint {
    GpuPoint {
        at: s.at,
        utilization_percent: s.cpu_percent,
        memory_used_bytes: s.memory_used_bytes,
        memory_total_bytes: s.memory_total_bytes,
    }
}

/// The series of one set of samples, by scope.
#[derive(Debug, Default)]
pub struct Series {
    /// The host's.
    pub host: Vec<HostPoint>,
    /// Each instance's, by name.
    pub instances: BTreeMap<String, Vec<InstancePoint>>,
    /// Each GPU's, by index.
    pub gpus: BTreeMap<String, Vec<GpuPoint>>,
}

/// Series of `samples` (oldest first), by scope.
pub fn series(samples: &[ResourceSample]) -> Series {
    let mut series = Series::default();
    for sample in samples {
        match &sample.scope {
            ResourceScope::Host => series.host.push(host_point(sample)),
            ResourceScope::Instance(name) => {
                series.instances.entry(name.clone()).or_default().push(instance_point(sample))
            }
            ResourceScope::Gpu(index) => series.gpus.entry(index.to_string()).or_default().push(gpu_point(sample)),
        }
    }
    series
}

/// The latest tick as the answer gives it.
pub fn latest_of(tick: &Tick) -> LatestSample {
    let Series { host, instances, gpus } = series(&tick.samples);
    LatestSample {
        at: tick.at,
        host: host.into_iter().next_back(),
        instances: instances.into_iter().filter_map(|(name, mut points)| Some((name, points.pop()?))).collect(),
        gpus: gpus.into_iter().filter_map(|(index, mut points)| Some((index, points.pop()?))).collect(),
    }
}

/// Read the resource history
///
/// `GET /api/v1/system/metrics?window=15m|1h|24h`: the host's, each instance's and each GPU's
/// CPU and memory over the window, averaged into steps (`step_seconds`), and the latest tick.
#[utoipa::path(get, path = "/api/v1/system/metrics", tag = "System", operation_id = "getSystemMetrics",
    params(MetricsQuery),
    responses(
        (status = 200, description = "Series over the window", body = SystemMetrics),
        (status = 400, description = "A window other than 15m, 1h or 24h (invalid_query)", body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn system_metrics(
    State(state): State<AppState>,
    Query(query): Query<MetricsQuery>,
) -> Result<Json<SystemMetrics>, ApiError> {
    let window = match query.window.as_deref() {
        None => MetricsWindow::default(),
        Some(text) => text
            .parse()
            .map_err(|e: llamactl_api::resources::WindowError| ApiError::bad_request("invalid_query", e.to_string()))?,
    };
    let history = &state.resources;
    let interval_seconds = history.interval_seconds();
    let step = step_seconds(window, interval_seconds);
    let since = Utc::now() - chrono::Duration::seconds(i64::try_from(window.seconds()).unwrap_or(i64::MAX));
    let samples = history.store().resource_samples(since, None).await?;
    let samples = if step > interval_seconds { average(&samples, step) } else { samples };
    let Series { host, instances, gpus } = series(&samples);
    Ok(Json(SystemMetrics {
        window,
        interval_seconds,
        step_seconds: step,
        enabled: history.config().enabled,
        host,
        instances,
        gpus,
        latest: history.latest().as_ref().map(latest_of),
    }))
}

/// Describe the host
///
/// `GET /api/v1/system/info`: the operating system, kernel, CPU model and cores, memory, GPUs
/// (from `nvidia-smi`, where there is one), the Docker engine's version (when one answers), each
/// backend's program as found on this host, and the problems that stop instances from running.
#[utoipa::path(get, path = "/api/v1/system/info", tag = "System", operation_id = "getSystemInfo",
    responses((status = 200, description = "The host", body = SystemInfo)),
    security(("management_key" = [])))]
pub async fn system_info(State(state): State<AppState>) -> Json<SystemInfo> {
    let gpus = match gpu::query(INFO_TIMEOUT).await {
        Ok(gpus) => gpus.unwrap_or_default(),
        Err(error) => {
            tracing::warn!(%error, "cannot read the GPUs");
            Vec::new()
        }
    };
    let docker_version = match tokio::time::timeout(INFO_TIMEOUT, state.manager.docker().version()).await {
        Ok(Ok(version)) => Some(version),
        Ok(Err(error)) => {
            tracing::debug!(%error, "no Docker engine version");
            None
        }
        Err(_) => None,
    };
    let config = state.manager.config().clone();
    let (info, backends) =
        tokio::task::spawn_blocking(move || (system_info::read(&gpus), system_checks::backend_commands(&config)))
            .await
            .unwrap_or_default();
    let used: BTreeSet<String> = state
        .manager
        .list()
        .iter()
        .filter_map(|i| i.state.options.as_ref().ok().map(|o| o.backend.backend_type().as_str().to_owned()))
        .collect();
    let problems = system_checks::problems(&backends, &used);
    Json(SystemInfo {
        hostname: info.hostname,
        os: info.os,
        kernel: info.kernel,
        architecture: info.architecture,
        cpu_model: info.cpu_model,
        cpu_cores: info.cpu_cores,
        cpu_physical_cores: info.cpu_physical_cores,
        memory_total_bytes: info.memory_total_bytes,
        gpus: info
            .gpus
            .into_iter()
            .map(|g| GpuDescription { index: g.index, name: g.name, memory_total_bytes: g.memory_total_bytes })
            .collect(),
        docker_version,
        backends,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + seconds, 0).single().unwrap()
    }

    fn sample(seconds: i64, scope: ResourceScope, cpu: Option<f64>, bytes: Option<u64>) -> ResourceSample {
        let mut s = ResourceSample::new(at(seconds), scope);
        s.cpu_percent = cpu;
        s.memory_used_bytes = bytes;
        s
    }

    #[test]
    fn steps_keep_series_under_the_point_limit() {
        let cases = [
            (MetricsWindow::Minutes15, 10, 10),
            (MetricsWindow::Hour1, 10, 10),
            (MetricsWindow::Hour1, 1, 5),
            (MetricsWindow::Hours24, 10, 120),
            (MetricsWindow::Hours24, 600, 600),
            (MetricsWindow::Minutes15, 0, 2),
        ];
        for (window, interval, expected) in cases {
            let step = step_seconds(window, interval);
            assert_eq!(step, expected, "{window} every {interval} s");
            assert!(window.seconds().div_ceil(step) <= MAX_POINTS);
        }
    }

    #[test]
    fn averaging_takes_the_mean_of_present_values_per_scope_and_step() {
        let a = || ResourceScope::Instance("a".into());
        let samples = [
            sample(0, ResourceScope::Host, None, Some(100)),
            sample(0, a(), Some(10.0), Some(1)),
            sample(10, ResourceScope::Host, Some(30.0), Some(200)),
            sample(10, a(), Some(20.0), Some(2)),
            sample(20, ResourceScope::Host, Some(50.0), Some(300)),
            sample(20, ResourceScope::Gpu(0), None, None),
        ];
        let averaged = average(&samples, 20);
        let Series { host, instances, gpus } = series(&averaged);
        assert_eq!(host.len(), 2);
        assert_eq!((host[0].at, host[0].cpu_percent, host[0].memory_used_bytes), (at(0), Some(30.0), Some(150)));
        assert_eq!((host[1].at, host[1].cpu_percent, host[1].memory_used_bytes), (at(20), Some(50.0), Some(300)));
        assert_eq!(instances["a"].len(), 1);
        assert_eq!((instances["a"][0].cpu_percent, instances["a"][0].rss_bytes), (Some(15.0), Some(1)));
        assert_eq!((gpus["0"].len(), gpus["0"][0].utilization_percent), (1, None), "nothing to average is none");
        assert_eq!(average(&samples, 1).len(), samples.len(), "steps as short as the samples change nothing");
    }

    #[test]
    fn the_latest_tick_gives_the_host_and_each_instance_once() {
        let tick = Tick {
            at: at(5),
            samples: vec![
                sample(5, ResourceScope::Host, Some(1.0), Some(9)),
                sample(5, ResourceScope::Instance("b".into()), Some(2.0), Some(8)),
                sample(5, ResourceScope::Gpu(1), Some(3.0), None),
            ],
            gpu_names: vec![(1, "G".into())],
        };
        let latest = latest_of(&tick);
        assert_eq!(latest.host.unwrap().cpu_percent, Some(1.0));
        assert_eq!(latest.instances["b"].rss_bytes, Some(8));
        assert_eq!(latest.gpus["1"].utilization_percent, Some(3.0));
    }
}
