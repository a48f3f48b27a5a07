//! Token usage read from a backend's own answer, as it passes: OpenAI's `usage` (chat,
//! completions, embeddings; `input_tokens`/`output_tokens` of the Responses API, also inside
//! `response`), Anthropic's (`/v1/messages`, also inside `message`), and llama.cpp's `timings`.
//!
//! [`UsageTap`] sees every chunk of the answer on its way to the client and keeps only what it
//! needs, without copying or delaying anything: the chunks of a JSON answer (reference-counted,
//! up to a bound), or, of an event stream, only the lines that carry usage or timings. The
//! parsing happens later, in the recorder's task ([`UsageTap::usage`]).

use bytes::Bytes;
use memchr::memmem;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// Most bytes of a JSON answer kept for its usage (a larger answer, say of embeddings, is
/// reported without tokens).
const MAX_JSON_BYTES: usize = 8 << 20;
/// Most bytes of event-stream lines kept (the lines with usage are few and short).
const MAX_LINE_BYTES: usize = 256 << 10;

/// What a backend reported of a request's tokens; `None` where it reported nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Prompt (input) tokens.
    pub prompt_tokens: Option<u64>,
    /// Generated (output) tokens.
    pub completion_tokens: Option<u64>,
    /// Prompt tokens taken from the cache.
    pub cached_tokens: Option<u64>,
    /// Prompt processing speed, tokens per second.
    pub prompt_tps: Option<f64>,
    /// Generation speed, tokens per second.
    pub generation_tps: Option<f64>,
}

impl Usage {
    /// What `value` (one JSON answer or one event's data) reports.
    pub fn of(value: &Value) -> Self {
        let mut usage = Self::default();
        for holder in [value, &value["response"], &value["message"]] {
            usage.merge(Self::of_usage(&holder["usage"]));
        }
        usage.merge_missing(Self::of_timings(&value["timings"]));
        usage
    }

    fn of_usage(usage: &Value) -> Self {
        let first = |keys: &[&str]| keys.iter().find_map(|k| pointer_u64(usage, k));
        Self {
            prompt_tokens: first(&["/prompt_tokens", "/input_tokens"]),
            completion_tokens: first(&["/completion_tokens", "/output_tokens"]),
            cached_tokens: first(&[
                "/prompt_tokens_details/cached_tokens",
                "/input_tokens_details/cached_tokens",
                "/cache_read_input_tokens",
            ]),
            prompt_tps: None,
            generation_tps: None,
        }
    }

    fn of_timings(timings: &Value) -> Self {
        Self {
            prompt_tokens: pointer_u64(timings, "/prompt_n"),
            completion_tokens: pointer_u64(timings, "/predicted_n"),
            cached_tokens: pointer_u64(timings, "/cache_n"),
            prompt_tps: timings["prompt_per_second"].as_f64().filter(|v| v.is_finite()),
            generation_tps: timings["predicted_per_second"].as_f64().filter(|v| v.is_finite()),
        }
    }

    /// Takes every value `later` has (a later event reports the final counts).
    fn merge(&mut self, later: Self) {
        self.prompt_tokens = later.prompt_tokens.or(self.prompt_tokens);
        self.completion_tokens = later.completion_tokens.or(self.completion_tokens);
        self.cached_tokens = later.cached_tokens.or(self.cached_tokens);
        self.prompt_tps = later.prompt_tps.or(self.prompt_tps);
        self.generation_tps = later.generation_tps.or(self.generation_tps);
    }

    /// Takes only the values this one lacks (`usage` wins over `timings`).
    fn merge_missing(&mut self, other: Self) {
        self.prompt_tokens = self.prompt_tokens.or(other.prompt_tokens);
        self.completion_tokens = self.completion_tokens.or(other.completion_tokens);
        self.cached_tokens = self.cached_tokens.or(other.cached_tokens);
        self.prompt_tps = self.prompt_tps.or(other.prompt_tps);
        self.generation_tps = self.generation_tps.or(other.generation_tps);
    }
}

fn pointer_u64(value: &Value, pointer: &str) -> Option<u64> {
    value.pointer(pointer).and_then(Value::as_u64)
}

/// Collects what an answer's usage is read from, chunk by chunk.
#[derive(Debug)]
pub struct UsageTap {
    kind: TapKind,
}

#[derive(Debug)]
enum TapKind {
    /// A JSON answer: its chunks, while under the bound.
    Json { chunks: Vec<Bytes>, bytes: usize, over: bool },
    /// An event stream: the lines that mention usage or timings, and the unfinished line.
    Stream { lines: Vec<u8>, partial: Vec<u8> },
    /// Anything else: nothing is kept.
    Other,
}

impl UsageTap {
    /// A tap for an answer of `content_type`.
    pub fn for_content_type(content_type: &str) -> Self {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        let kind = if essence.eq_ignore_ascii_case("text/event-stream") {
            TapKind::Stream { lines: Vec::new(), partial: Vec::new() }
        } else if essence.eq_ignore_ascii_case("application/json") {
            TapKind::Json { chunks: Vec::new(), bytes: 0, over: false }
        } else {
            TapKind::Other
        };
        Self { kind }
    }

    /// Whether the answer is an event stream.
    pub fn is_stream(&self) -> bool {
        matches!(self.kind, TapKind::Stream { .. })
    }

    /// Sees one chunk of the answer.
    pub fn observe(&mut self, chunk: &Bytes) {
        match &mut self.kind {
            TapKind::Json { chunks, bytes, over } => {
                *bytes += chunk.len();
                if *bytes > MAX_JSON_BYTES {
                    *over = true;
                    chunks.clear();
                } else if !*over {
                    chunks.push(chunk.clone());
                }
            }
            TapKind::Stream { lines, partial } => keep_usage_lines(lines, partial, chunk),
            TapKind::Other => {}
        }
    }

    /// The usage of what was seen (parsing happens here, off the request path).
    pub fn usage(&self) -> Usage {
        match &self.kind {
            TapKind::Json { chunks, over: false, .. } => match chunks.as_slice() {
                [one] => usage_of_json(one),
                _ => usage_of_json(&chunks.concat()),
            },
            TapKind::Stream { lines, partial } => {
                let mut usage = Usage::default();
                for line in lines.split(|b| *b == b'\n').chain([partial.as_slice()]) {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let Some(data) = line.strip_prefix(b"data:") else { continue };
                    usage.merge(usage_of_json(data.trim_ascii()));
                }
                usage
            }
            _ => Usage::default(),
        }
    }
}

/// The members of an answer (or an event's data) that usage is read from, left unparsed; the
/// rest of the answer (the generated text) is skipped without being built into values.
#[derive(Deserialize)]
struct UsageParts<'a> {
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
    #[serde(borrow, default)]
    response: Option<&'a RawValue>,
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
    #[serde(borrow, default)]
    timings: Option<&'a RawValue>,
}

/// What the JSON object in `bytes` reports (nothing if it is not one).
fn usage_of_json(bytes: &[u8]) -> Usage {
    let Ok(parts) = serde_json::from_slice::<UsageParts<'_>>(bytes) else { return Usage::default() };
    let mut object = serde_json::Map::new();
    for (name, raw) in
        [("usage", parts.usage), ("response", parts.response), ("message", parts.message), ("timings", parts.timings)]
    {
        if let Some(value) = raw.and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok()) {
            object.insert(name.to_owned(), value);
        }
    }
    Usage::of(&Value::Object(object))
}

fn mentions_usage(line: &[u8]) -> bool {
    memmem::find(line, b"\"usage\"").is_some() || memmem::find(line, b"\"timings\"").is_some()
}

/// Appends to `lines` the complete lines of `chunk` (with `partial`, the unfinished line
/// before it) that mention usage, and keeps the chunk's unfinished end in `partial`.
fn keep_usage_lines(lines: &mut Vec<u8>, partial: &mut Vec<u8>, chunk: &[u8]) {
    let mut rest = chunk;
    while let Some(end) = memchr::memchr(b'\n', rest) {
        let piece = &rest[..end];
        if partial.is_empty() {
            if mentions_usage(piece) && lines.len() + piece.len() < MAX_LINE_BYTES {
                lines.extend_from_slice(piece);
                lines.push(b'\n');
            }
        } else {
            partial.extend_from_slice(piece);
            if mentions_usage(partial) && lines.len() + partial.len() < MAX_LINE_BYTES {
                lines.extend_from_slice(partial);
                lines.push(b'\n');
            }
            partial.clear();
        }
        rest = &rest[end + 1..];
    }
    // A line split across chunks: kept while it might still turn out to matter.
    if partial.len() + rest.len() < MAX_LINE_BYTES {
        partial.extend_from_slice(rest);
    } else {
        partial.clear();
    }
}

#[cfg(test)]
mod tests;
