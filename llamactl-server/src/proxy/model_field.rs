//! Finding and rewriting the `model` of a request without re-serialising it: every other byte
//! of the body (field order, number formatting, whitespace) reaches the backend unchanged.

use std::borrow::Cow;
use std::ops::Range;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The top-level `model` string of a JSON body and where its JSON text is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelField {
    /// The decoded value.
    pub value: String,
    /// Byte range of the JSON string (with its quotes) in the body.
    pub span: Range<usize>,
}

/// The raw JSON of an object's `"model"` member (the last one, if repeated): every other
/// member is checked but not kept, so nothing is allocated for them.
struct TopLevelModel<'a>(Option<&'a RawValue>);

impl<'de> Deserialize<'de> for TopLevelModel<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = TopLevelModel<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Self::Value, A::Error> {
                let mut model = None;
                while let Some(name) = members.next_key::<Cow<'de, str>>()? {
                    if name == "model" {
                        model = Some(members.next_value::<&'de RawValue>()?);
                    } else {
                        members.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(TopLevelModel(model))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// Finds the top-level `"model"` of a JSON object. `Ok(None)` if there is none (or it is not a
/// string); `Err` if the body is not a JSON object.
pub fn find_json_model(body: &[u8]) -> Result<Option<ModelField>, String> {
    let TopLevelModel(model) =
        serde_json::from_slice(body).map_err(|e| format!("the body is not a JSON object: {e}"))?;
    let Some(raw) = model else { return Ok(None) };
    let Ok(value) = serde_json::from_str::<String>(raw.get()) else { return Ok(None) };
    // The raw value borrows from `body`: its offset is the distance between the two pointers.
    let start = (raw.get().as_ptr() as usize).saturating_sub(body.as_ptr() as usize);
    let span = start..start + raw.get().len();
    if body.get(span.clone()) != Some(raw.get().as_bytes()) {
        return Err("cannot locate the model field".into());
    }
    Ok(Some(ModelField { value, span }))
}

/// `body` with the JSON string at `span` replaced by `value`.
pub fn replace_json_string(body: &[u8], span: Range<usize>, value: &str) -> Vec<u8> {
    let encoded = serde_json::Value::from(value).to_string();
    let mut out = Vec::with_capacity(body.len() + encoded.len());
    out.extend_from_slice(&body[..span.start]);
    out.extend_from_slice(encoded.as_bytes());
    out.extend_from_slice(&body[span.end..]);
    out
}

/// The boundary of a `multipart/form-data` content type.
pub fn multipart_boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim().eq_ignore_ascii_case("boundary").then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// The `model` form field of a multipart body: its value and the byte range of the value.
pub fn find_multipart_model(body: &[u8], boundary: &str) -> Option<ModelField> {
    // Parts are separated by CRLF "--boundary"; the first delimiter may open the body.
    let delimiter = format!("\r\n--{boundary}");
    let first = format!("--{boundary}");
    let mut part_start = if body.starts_with(first.as_bytes()) {
        first.len()
    } else {
        find(body, delimiter.as_bytes(), 0)? + delimiter.len()
    };
    loop {
        let next = find(body, delimiter.as_bytes(), part_start)?;
        let part = &body[part_start..next];
        if let Some(header_end) = find(part, b"\r\n\r\n", 0) {
            let headers = String::from_utf8_lossy(&part[..header_end]).to_ascii_lowercase();
            let is_model = headers.lines().any(|line| {
                line.starts_with("content-disposition:")
                    && line.split(';').any(|p| matches!(p.trim(), "name=\"model\"" | "name=model"))
            });
            if is_model {
                let value_start = part_start + header_end + 4;
                let value = std::str::from_utf8(&body[value_start..next]).ok()?.to_owned();
                return Some(ModelField { value, span: value_start..next });
            }
        }
        part_start = next + delimiter.len();
    }
}

/// `body` with the bytes at `span` replaced by `value` (for a multipart field).
pub fn replace_bytes(body: &[u8], span: Range<usize>, value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + value.len());
    out.extend_from_slice(&body[..span.start]);
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(&body[span.end..]);
    out
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_the_model_and_keeps_every_other_byte() {
        let body = br#"{ "temperature": 0.10000000000000001, "model" : "mini/qwen",
  "messages":[{"role":"user","content":"hi \"model\""}], "n": 12345678901234567890 }"#;
        let field = find_json_model(body).unwrap().unwrap();
        assert_eq!(field.value, "mini/qwen");
        let rewritten = replace_json_string(body, field.span, "/models/q.gguf");
        let expected = br#"{ "temperature": 0.10000000000000001, "model" : "/models/q.gguf",
  "messages":[{"role":"user","content":"hi \"model\""}], "n": 12345678901234567890 }"#;
        assert_eq!(String::from_utf8(rewritten).unwrap(), String::from_utf8(expected.to_vec()).unwrap());
    }

    #[test]
    fn escaped_values_and_missing_models() {
        let body = br#"{"model":"a\u002fb"}"#;
        assert_eq!(find_json_model(body).unwrap().unwrap().value, "a/b");
        assert_eq!(find_json_model(br#"{"prompt":"x"}"#).unwrap(), None);
        assert_eq!(find_json_model(br#"{"model":42}"#).unwrap(), None);
        assert!(find_json_model(b"[1,2]").is_err());
        assert!(find_json_model(b"not json").is_err());
        // A nested "model" is not the request's model.
        assert_eq!(find_json_model(br#"{"x":{"model":"inner"}}"#).unwrap(), None);
        // Repeated: the last one counts; an escaped name is the same name.
        assert_eq!(find_json_model(br#"{"model":"a","mod\u0065l":"b"}"#).unwrap().unwrap().value, "b");
        // Every member is checked, not only the model.
        assert!(find_json_model(br#"{"model":"a","x":[1,}"#).is_err());
        assert!(find_json_model(br#"{"model":"a"} trailing"#).is_err());
        assert_eq!(
            find_json_model(b"[1,2]").unwrap_err(),
            "the body is not a JSON object: invalid type: sequence, expected a map at line 1 column 0"
        );
    }

    #[test]
    fn bodies_are_refused_as_a_map_of_raw_values_would_refuse_them() {
        use std::collections::HashMap;
        for body in [&b"[1,2]"[..], b"not json", b"", b"{", b"{\"a\":}", b"{\"model\":\"a\"} x", b"\"s\"", b"{1:2}"] {
            let theirs = serde_json::from_slice::<HashMap<Cow<'_, str>, &RawValue>>(body).unwrap_err();
            let ours = find_json_model(body).unwrap_err();
            assert_eq!(ours, format!("the body is not a JSON object: {theirs}"), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn multipart_model_fields() {
        let content_type = "multipart/form-data; boundary=XyZ";
        let boundary = multipart_boundary(content_type).unwrap();
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF--XyZ-ish\r\n--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--XyZ--\r\n";
        let field = find_multipart_model(body, &boundary).unwrap();
        assert_eq!(field.value, "whisper");
        let rewritten = replace_bytes(body, field.span, "whisper-large");
        assert!(String::from_utf8_lossy(&rewritten).contains("name=\"model\"\r\n\r\nwhisper-large\r\n--XyZ--"));
        assert!(find_multipart_model(b"--XyZ\r\n\r\nno headers\r\n--XyZ--", "XyZ").is_none());
        assert_eq!(multipart_boundary("application/json"), None);
        assert_eq!(multipart_boundary("multipart/form-data; boundary=\"q q\"").as_deref(), Some("q q"));
    }
}
