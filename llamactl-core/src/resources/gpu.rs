//! NVIDIA GPUs' utilisation and memory, from `nvidia-smi`'s CSV output (run only when the
//! program is on `PATH`, and never for longer than a timeout).

use std::time::Duration;

use super::ResourceError;

/// The query `nvidia-smi` is run with; [`parse`] reads its output.
pub const QUERY_ARGS: [&str; 2] =
    ["--query-gpu=index,name,utilization.gpu,memory.used,memory.total", "--format=csv,noheader,nounits"];

const MIB: u64 = 1024 * 1024;

/// One GPU as `nvidia-smi` reported it. A value it gave as `[N/A]` or `[Not Supported]` is
/// `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuReading {
    /// The GPU's index (as `CUDA_VISIBLE_DEVICES` counts them).
    pub index: u32,
    /// Its product name.
    pub name: String,
    /// Utilisation, in percent.
    pub utilization_percent: Option<f64>,
    /// Memory in use, in bytes.
    pub memory_used_bytes: Option<u64>,
    /// Memory in all, in bytes.
    pub memory_total_bytes: Option<u64>,
}

/// A line of `nvidia-smi`'s output that is not what [`QUERY_ARGS`] asks for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}: {text:?}")]
pub struct GpuParseError {
    /// The line's number, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub problem: &'static str,
    /// The line.
    pub text: String,
}

/// A value `nvidia-smi` could not give: `[N/A]`, `N/A`, `[Not Supported]`, `[Unknown Error]`
/// or nothing.
fn unavailable(value: &str) -> bool {
    value.is_empty() || value.starts_with('[') || value.eq_ignore_ascii_case("n/a")
}

fn number(value: &str) -> Result<Option<f64>, ()> {
    if unavailable(value) {
        return Ok(None);
    }
    value.parse::<f64>().map(Some).map_err(|_| ())
}

fn mebibytes(value: &str) -> Result<Option<u64>, ()> {
    // Whole MiB as printed; a fraction, should a driver print one, rounds down.
    number(value).map(|v| v.filter(|v| *v >= 0.0).map(|v| v as u64 * MIB))
}

/// Reads the output of `nvidia-smi` run with [`QUERY_ARGS`]: one GPU per line (`index, name,
/// utilization %, memory used MiB, memory total MiB`). Blank lines are skipped; a name may
/// hold commas.
///
/// ```
/// use llamactl_core::resources::gpu::parse;
/// let gpus = parse("0, NVIDIA A100-SXM4-80GB, 37, 10240, 81920\n1, Tesla K80, [N/A], 3, 11441\n")?;
/// assert_eq!((gpus[0].utilization_percent, gpus[0].memory_used_bytes), (Some(37.0), Some(10240 << 20)));
/// assert_eq!((gpus[1].name.as_str(), gpus[1].utilization_percent), ("Tesla K80", None));
/// # Ok::<(), llamactl_core::resources::GpuParseError>(())
/// ```
pub fn parse(output: &str) -> Result<Vec<GpuReading>, GpuParseError> {
    let mut gpus = Vec::new();
    for (i, text) in output.lines().enumerate() {
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let error = |problem| GpuParseError { line: i + 1, problem, text: text.to_owned() };
        let fields: Vec<&str> = text.split(',').map(str::trim).collect();
        if fields.len() < 5 {
            return Err(error("expected 5 comma-separated fields"));
        }
        let (index, rest) = (fields[0], &fields[1..]);
        let (name, values) = rest.split_at(rest.len() - 3);
        let index = index.parse::<u32>().map_err(|_| error("the index is not a number"))?;
        gpus.push(GpuReading {
            index,
            name: name.join(", "),
            utilization_percent: number(values[0]).map_err(|()| error("the utilization is not a number"))?,
            memory_used_bytes: mebibytes(values[1]).map_err(|()| error("the memory used is not a number"))?,
            memory_total_bytes: mebibytes(values[2]).map_err(|()| error("the memory total is not a number"))?,
        });
    }
    Ok(gpus)
}

/// Runs `nvidia-smi` with [`QUERY_ARGS`] and reads its answer; `Ok(None)` when there is no
/// `nvidia-smi` on `PATH` (no NVIDIA GPU to report). A run that takes longer than `timeout`
/// is killed and is an error.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// match llamactl_core::resources::gpu::query(Duration::from_secs(5)).await {
///     Ok(None) => println!("no nvidia-smi"),
///     Ok(Some(gpus)) => println!("{} GPUs", gpus.len()),
///     Err(error) => println!("{error}"),
/// }
/// # }
/// ```
pub async fn query(timeout: Duration) -> Result<Option<Vec<GpuReading>>, ResourceError> {
    let Ok(program) = which::which("nvidia-smi") else {
        return Ok(None);
    };
    let run = tokio::process::Command::new(program)
        .args(QUERY_ARGS)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| ResourceError::Gpu(format!("no answer within {timeout:?}")))?
        .map_err(|e| ResourceError::Gpu(e.to_string()))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(ResourceError::Gpu(format!("{}: {said}", output.status)));
    }
    parse(&String::from_utf8_lossy(&output.stdout)).map(Some).map_err(|e| ResourceError::Gpu(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from two machines (an 8-GPU server and a laptop with an old card).
    const SERVER: &str = "\
0, NVIDIA H100 80GB HBM3, 98, 71234, 81559
1, NVIDIA H100 80GB HBM3, 0, 4, 81559
";
    const LAPTOP: &str = "0, NVIDIA GeForce GTX 1050 Ti with Max-Q Design, [N/A], 412, 4096\r\n\r\n";

    fn gpu(index: u32, name: &str, util: Option<f64>, used: Option<u64>, total: Option<u64>) -> GpuReading {
        GpuReading {
            index,
            name: name.into(),
            utilization_percent: util,
            memory_used_bytes: used.map(|m| m * MIB),
            memory_total_bytes: total.map(|m| m * MIB),
        }
    }

    #[test]
    fn captured_output_is_read() {
        let cases: [(&str, Vec<GpuReading>); 6] = [
            (
                SERVER,
                vec![
                    gpu(0, "NVIDIA H100 80GB HBM3", Some(98.0), Some(71234), Some(81559)),
                    gpu(1, "NVIDIA H100 80GB HBM3", Some(0.0), Some(4), Some(81559)),
                ],
            ),
            (LAPTOP, vec![gpu(0, "NVIDIA GeForce GTX 1050 Ti with Max-Q Design", None, Some(412), Some(4096))]),
            ("3, Tesla M60, [Not Supported], [N/A], [Unknown Error]", vec![gpu(3, "Tesla M60", None, None, None)]),
            ("0, Some, Card, 7.5, 10, 20", vec![gpu(0, "Some, Card", Some(7.5), Some(10), Some(20))]),
            ("0,GRID,N/A,,1", vec![gpu(0, "GRID", None, None, Some(1))]),
            ("\n\n", vec![]),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).unwrap(), expected, "{text:?}");
        }
    }

    #[test]
    fn what_is_not_the_query_s_answer_is_an_error_naming_the_line() {
        let cases = [
            ("0, A100, 1, 2, 3\nNVIDIA-SMI has failed", 2, "expected 5 comma-separated fields"),
            ("x, A100, 1, 2, 3", 1, "the index is not a number"),
            ("0, A100, busy, 2, 3", 1, "the utilization is not a number"),
            ("0, A100, 1, 2 MiB, 3", 1, "the memory used is not a number"),
            ("0, A100, 1, 2, lots", 1, "the memory total is not a number"),
        ];
        for (text, line, problem) in cases {
            let error = parse(text).unwrap_err();
            assert_eq!((error.line, error.problem), (line, problem), "{text:?}");
        }
    }

    #[tokio::test]
    async fn without_nvidia_smi_on_path_there_is_nothing_to_report() {
        if which::which("nvidia-smi").is_err() {
            assert!(query(Duration::from_secs(5)).await.unwrap().is_none());
        } else {
            assert!(query(Duration::from_secs(30)).await.unwrap().is_some());
        }
    }
}
