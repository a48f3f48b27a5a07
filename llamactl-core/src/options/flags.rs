//! The machinery shared by the typed backend options: how a JSON value becomes a typed field,
//! how a field becomes command-line arguments, and the ordered list of untyped extra options.

use serde_json::{Map, Value};

use super::{OptionsError, describe};

/// One typed command-line flag: its canonical JSON key, the other keys accepted for it (the
/// backend's short flags, as the Go llamactl accepts them) and how it is written on the command
/// line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    /// Canonical snake_case key in `backend_options`.
    pub key: &'static str,
    /// Other accepted keys (short aliases).
    pub aliases: &'static [&'static str],
    /// The flag written on the command line for a value or for `true`.
    pub long: &'static str,
    /// The flag written for an explicit `false`, when the backend has one.
    pub negation: Option<&'static str>,
}

/// A Rust type that a typed option can hold.
pub trait FlagValue: Sized {
    /// Converts a JSON value; the error says what was expected (the caller adds the field).
    fn from_json(value: &Value) -> Result<Self, String>;
    /// The JSON form written back (parsing it gives the same value).
    fn to_json(&self) -> Value;
    /// Appends this value's command-line arguments for `flag`.
    fn push_args(&self, flag: &Flag, args: &mut Vec<String>);
}

fn expected(what: &str, value: &Value) -> String {
    format!("expected {what}, got {}", describe(value))
}

fn no_nul(text: &str) -> Result<(), String> {
    if text.contains('\0') {
        Err("contains a NUL character, which cannot be passed to a process".into())
    } else {
        Ok(())
    }
}

impl FlagValue for String {
    fn from_json(value: &Value) -> Result<Self, String> {
        let text = match value {
            Value::String(s) => s.clone(),
            // The Go llamactl's JSON sometimes carries numbers where a string is meant.
            Value::Number(n) => n.to_string(),
            other => return Err(expected("a string", other)),
        };
        no_nul(&text)?;
        Ok(text)
    }
    fn to_json(&self) -> Value {
        Value::String(self.clone())
    }
    fn push_args(&self, flag: &Flag, args: &mut Vec<String>) {
        args.push(flag.long.to_owned());
        args.push(self.clone());
    }
}

impl FlagValue for bool {
    fn from_json(value: &Value) -> Result<Self, String> {
        match value {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s == "true" => Ok(true),
            Value::String(s) if s == "false" => Ok(false),
            other => Err(expected("true or false", other)),
        }
    }
    fn to_json(&self) -> Value {
        Value::Bool(*self)
    }
    fn push_args(&self, flag: &Flag, args: &mut Vec<String>) {
        match (*self, flag.negation) {
            (true, _) => args.push(flag.long.to_owned()),
            (false, Some(negation)) => args.push(negation.to_owned()),
            // A switch without a negative form is simply left off.
            (false, None) => {}
        }
    }
}

macro_rules! integer_flag_value {
    ($($ty:ty),*) => {$(
        impl FlagValue for $ty {
            fn from_json(value: &Value) -> Result<Self, String> {
                let wanted = concat!("an integer in the range of ", stringify!($ty));
                match value {
                    Value::Number(n) => n
                        .as_i64()
                        .and_then(|v| <$ty>::try_from(v).ok())
                        .or_else(|| n.as_u64().and_then(|v| <$ty>::try_from(v).ok()))
                        .ok_or_else(|| format!("expected {wanted}, got {n}")),
                    // Accepted for compatibility: the Go llamactl parses numeric strings.
                    Value::String(s) => s.trim().parse::<$ty>().map_err(|_| expected(wanted, value)),
                    other => Err(expected(wanted, other)),
                }
            }
            fn to_json(&self) -> Value {
                Value::from(*self)
            }
            fn push_args(&self, flag: &Flag, args: &mut Vec<String>) {
                args.push(flag.long.to_owned());
                args.push(self.to_string());
            }
        }
    )*};
}
integer_flag_value!(u16, u32, i32, i64, u64);

impl FlagValue for f64 {
    fn from_json(value: &Value) -> Result<Self, String> {
        let parsed = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match parsed {
            Some(v) if v.is_finite() => Ok(v),
            _ => Err(expected("a finite number", value)),
        }
    }
    fn to_json(&self) -> Value {
        serde_json::Number::from_f64(*self).map_or(Value::Null, Value::Number)
    }
    fn push_args(&self, flag: &Flag, args: &mut Vec<String>) {
        args.push(flag.long.to_owned());
        args.push(self.to_string());
    }
}

/// A list value: written as the flag repeated once per element (`--lora a --lora b`).
impl FlagValue for Vec<String> {
    fn from_json(value: &Value) -> Result<Self, String> {
        match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| String::from_json(item).map_err(|e| format!("element {i}: {e}")))
                .collect(),
            // A single string is a list of one.
            Value::String(_) => Ok(vec![String::from_json(value)?]),
            other => Err(expected("a list of strings", other)),
        }
    }
    fn to_json(&self) -> Value {
        Value::Array(self.iter().cloned().map(Value::String).collect())
    }
    fn push_args(&self, flag: &Flag, args: &mut Vec<String>) {
        for item in self {
            args.push(flag.long.to_owned());
            args.push(item.clone());
        }
    }
}

/// llama.cpp's layer count for `--gpu-layers`: a number, or `auto` / `all`.
///
/// ```
/// use llamactl_core::options::GpuLayers;
/// use llamactl_core::options::flags::FlagValue;
/// assert_eq!(GpuLayers::from_json(&serde_json::json!(0)), Ok(GpuLayers::Count(0)));
/// assert_eq!(GpuLayers::from_json(&serde_json::json!("all")), Ok(GpuLayers::All));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuLayers {
    /// This many layers (`-1` lets llama.cpp decide, as `auto` does in newer versions).
    Count(i32),
    /// `auto`.
    Auto,
    /// `all`.
    All,
}

impl FlagValue for GpuLayers {
    fn from_json(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(s) if s == "auto" => Ok(Self::Auto),
            Value::String(s) if s == "all" => Ok(Self::All),
            other => i32::from_json(other)
                .map(Self::Count)
                .map_err(|_| expected("a layer count, \"auto\" or \"all\"", other)),
        }
    }
    fn to_json(&self) -> Value {
        match self {
            Self::Count(n) => Value::from(*n),
            Self::Auto => Value::from("auto"),
            Self::All => Value::from("all"),
        }
    }
    fn push_args(&self, flag: &Flag, args: &mut Vec<String>) {
        args.push(flag.long.to_owned());
        args.push(match self {
            Self::Count(n) => n.to_string(),
            Self::Auto => "auto".into(),
            Self::All => "all".into(),
        });
    }
}

/// llama.cpp's `--flash-attn on|off|auto`. `true` and `false` (the Go llamactl's form) mean
/// `on` and `off`.
///
/// ```
/// use llamactl_core::options::FlashAttention;
/// use llamactl_core::options::flags::FlagValue;
/// assert_eq!(FlashAttention::from_json(&serde_json::json!(true)), Ok(FlashAttention::On));
/// assert_eq!(FlashAttention::from_json(&serde_json::json!("auto")), Ok(FlashAttention::Auto));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashAttention {
    /// `on`.
    On,
    /// `off`.
    Off,
    /// `auto`.
    Auto,
}

impl FlagValue for FlashAttention {
    fn from_json(value: &Value) -> Result<Self, String> {
        match value {
            Value::Bool(true) => Ok(Self::On),
            Value::Bool(false) => Ok(Self::Off),
            Value::String(s) => match s.as_str() {
                "on" | "true" => Ok(Self::On),
                "off" | "false" => Ok(Self::Off),
                "auto" => Ok(Self::Auto),
                _ => Err(expected("on, off, auto, true or false", value)),
            },
            other => Err(expected("on, off, auto, true or false", other)),
        }
    }
    fn to_json(&self) -> Value {
        Value::from(self.as_str())
    }
    fn push_args(&self, flag: &Flag, args: &mut Vec<String>) {
        args.push(flag.long.to_owned());
        args.push(self.as_str().to_owned());
    }
}

impl FlashAttention {
    fn as_str(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Off => "off",
            Self::Auto => "auto",
        }
    }
}

/// Backend options without a typed field, kept in the order they were given.
///
/// Each entry becomes command-line arguments after the typed ones: a `snake_case` key becomes
/// `--kebab-case`, a one-letter key `-k`; a string or number is the flag's value, `true` the bare
/// flag, `false` and `null` nothing, and a list repeats the flag per element. The special key
/// `extra_args` holds either a list of raw arguments, passed as they are, or an object of
/// `flag: value` pairs.
///
/// ```
/// use llamactl_core::options::ExtraArgs;
///
/// let extra = ExtraArgs::from_pairs([
///     ("top_k", serde_json::json!(40)),
///     ("no_webui", serde_json::json!(true)),
///     ("extra_args", serde_json::json!(["--override-kv", "a=int:1"])),
/// ])
/// .unwrap();
/// assert_eq!(extra.to_args(), ["--top-k", "40", "--no-webui", "--override-kv", "a=int:1"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExtraArgs {
    entries: Vec<(String, Value)>,
}

/// The key whose value is a raw argument list (or an object of flag/value pairs).
pub const RAW_EXTRA_KEY: &str = "extra_args";

impl ExtraArgs {
    /// Builds the list from `(key, value)` pairs, checking each as [`ExtraArgs::push`] does.
    pub fn from_pairs<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Result<Self, OptionsError> {
        let mut extra = Self::default();
        for (key, value) in pairs {
            extra.push(key.into(), value, "backend_options")?;
        }
        Ok(extra)
    }

    /// Appends an entry after checking that its key is a plausible flag name and its value can
    /// be passed on a command line; `parent` is the dotted path used in errors.
    pub fn push(&mut self, key: String, value: Value, parent: &str) -> Result<(), OptionsError> {
        let field = format!("{parent}.{key}");
        check_key(&key).map_err(|message| OptionsError::invalid(&field, message))?;
        check_value(&key, &value).map_err(|message| OptionsError::wrong_type(&field, message))?;
        self.entries.push((key, value));
        Ok(())
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[(String, Value)] {
        &self.entries
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Command-line arguments for all entries, in order.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        self.push_args(&mut args);
        args
    }

    /// Appends the command-line arguments for all entries, in order.
    pub fn push_args(&self, args: &mut Vec<String>) {
        self.push_args_except(&[], args);
    }

    /// [`push_args`](Self::push_args) without the entries whose keys are in `skip`.
    pub fn push_args_except(&self, skip: &[&str], args: &mut Vec<String>) {
        for (key, value) in &self.entries {
            if skip.contains(&key.replace('-', "_").as_str()) {
                continue;
            }
            if key == RAW_EXTRA_KEY {
                push_raw(value, args);
            } else {
                push_flag(&flag_for_key(key), value, args);
            }
        }
    }

    pub(crate) fn write_into(&self, map: &mut Map<String, Value>) {
        for (key, value) in &self.entries {
            map.insert(key.clone(), value.clone());
        }
    }
}

/// `snake_case` key to flag: `ctx_size` -> `--ctx-size`, `c` -> `-c`.
pub fn flag_for_key(key: &str) -> String {
    if key.chars().count() == 1 { format!("-{key}") } else { format!("--{}", key.replace('_', "-")) }
}

fn check_key(key: &str) -> Result<(), String> {
    let first_ok = key.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if first_ok && rest_ok && key.len() <= 100 {
        Ok(())
    } else {
        Err("an option name must start with a letter or digit and hold only letters, digits, '_', '-' and '.' (at most 100 characters)".into())
    }
}

fn scalar_ok(value: &Value) -> Result<(), String> {
    match value {
        Value::String(s) => no_nul(s),
        Value::Number(_) | Value::Bool(_) | Value::Null => Ok(()),
        other => Err(expected("a string, number or boolean", other)),
    }
}

fn check_value(key: &str, value: &Value) -> Result<(), String> {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if matches!(item, Value::Bool(_) | Value::Null) {
                    return Err(format!("element {i}: expected a string or number, got {}", describe(item)));
                }
                scalar_ok(item).map_err(|e| format!("element {i}: {e}"))?;
            }
            Ok(())
        }
        Value::Object(map) if key == RAW_EXTRA_KEY => {
            for (flag, item) in map {
                check_key(flag.trim_start_matches('-')).map_err(|e| format!("{flag}: {e}"))?;
                scalar_ok(item).map_err(|e| format!("{flag}: {e}"))?;
            }
            Ok(())
        }
        Value::Object(_) => Err("expected a string, number, boolean or list, got an object".into()),
        scalar => scalar_ok(scalar),
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn push_flag(flag: &str, value: &Value, args: &mut Vec<String>) {
    match value {
        Value::Bool(true) => args.push(flag.to_owned()),
        Value::Bool(false) | Value::Null => {}
        Value::Array(items) => {
            for item in items {
                if let Some(text) = scalar_text(item) {
                    args.push(flag.to_owned());
                    args.push(text);
                }
            }
        }
        other => {
            if let Some(text) = scalar_text(other) {
                args.push(flag.to_owned());
                args.push(text);
            }
        }
    }
}

fn push_raw(value: &Value, args: &mut Vec<String>) {
    match value {
        Value::Array(items) => args.extend(items.iter().filter_map(scalar_text)),
        Value::Object(map) => {
            for (flag, item) in map {
                let flag = if flag.starts_with('-') { flag.clone() } else { flag_for_key(flag) };
                match item {
                    // `"flag": ""` is a bare switch, as in the Go llamactl's extra_args map.
                    Value::String(s) if s.is_empty() => args.push(flag),
                    other => push_flag(&flag, other, args),
                }
            }
        }
        other => args.extend(scalar_text(other)),
    }
}

/// Declares a typed backend options struct: one `Option` field per flag, in command-line order,
/// plus [`ExtraArgs`] for everything else.
macro_rules! typed_flags {
    (
        $(#[$struct_meta:meta])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty => $long:literal
                    $(, aliases = [$($alias:literal),* $(,)?])?
                    $(, negation = $negation:literal)?
                ;
            )*
        }
    ) => {
        $(#[$struct_meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $(
                $(#[doc = $doc])*
                #[doc = concat!("\n\nKey `", stringify!($field), "`, flag `", $long, "`.")]
                pub $field: Option<$ty>,
            )*
            /// Options without a typed field, in the order given.
            pub extra: $crate::options::ExtraArgs,
        }

        impl $name {
            /// The typed flags, in the order they are written on the command line.
            pub const FLAGS: &'static [$crate::options::flags::Flag] = &[
                $(
                    $crate::options::flags::Flag {
                        key: stringify!($field),
                        aliases: &[$($($alias),*)?],
                        long: $long,
                        negation: typed_flags!(@negation $($negation)?),
                    },
                )*
            ];

            /// Parses `backend_options`; unknown keys go to `extra` (after alias normalisation).
            pub(crate) fn from_map(
                map: &serde_json::Map<String, serde_json::Value>,
                parent: &str,
                aliases: &[(&str, &str)],
            ) -> Result<Self, $crate::options::OptionsError> {
                let mut out = Self::default();
                let mut seen: Vec<(&'static str, String)> = Vec::new();
                for (key, value) in map {
                    if value.is_null() {
                        continue;
                    }
                    let index = Self::FLAGS
                        .iter()
                        .position(|flag| flag.key == key || flag.aliases.contains(&key.as_str()));
                    let Some(index) = index else {
                        let canonical = aliases
                            .iter()
                            .find(|(alias, _)| *alias == key)
                            .map_or(key.as_str(), |(_, canonical)| *canonical);
                        if out.extra.get(canonical).is_some() {
                            return Err($crate::options::OptionsError::Duplicate {
                                field: format!("{parent}.{key}"),
                                other: format!("{parent}.{canonical}"),
                            });
                        }
                        out.extra.push(canonical.to_owned(), value.clone(), parent)?;
                        continue;
                    };
                    let flag = &Self::FLAGS[index];
                    if let Some((_, other)) = seen.iter().find(|(k, _)| *k == flag.key) {
                        return Err($crate::options::OptionsError::Duplicate {
                            field: format!("{parent}.{key}"),
                            other: format!("{parent}.{other}"),
                        });
                    }
                    seen.push((flag.key, key.clone()));
                    out.set(index, value).map_err(|message| {
                        $crate::options::OptionsError::wrong_type(format!("{parent}.{key}"), message)
                    })?;
                }
                Ok(out)
            }

            #[allow(unused_assignments)]
            fn set(&mut self, index: usize, value: &serde_json::Value) -> Result<(), String> {
                let mut position = 0;
                $(
                    if index == position {
                        self.$field = Some(<$ty as $crate::options::flags::FlagValue>::from_json(value)?);
                        return Ok(());
                    }
                    position += 1;
                )*
                Err(format!("no typed field at index {index}"))
            }

            /// The JSON object form: typed fields first (canonical keys), then the extras.
            pub(crate) fn to_map(&self) -> serde_json::Map<String, serde_json::Value> {
                let mut map = serde_json::Map::new();
                $(
                    if let Some(value) = &self.$field {
                        map.insert(
                            stringify!($field).to_owned(),
                            $crate::options::flags::FlagValue::to_json(value),
                        );
                    }
                )*
                self.extra.write_into(&mut map);
                map
            }

            /// Appends the typed fields' arguments in declaration order, leaving out `skip` keys
            /// (those the backend writes itself, such as host and port).
            #[allow(unused_assignments, dead_code)]
            pub(crate) fn push_typed_args(&self, skip: &[&str], args: &mut Vec<String>) {
                let mut position = 0;
                $(
                    if let Some(value) = &self.$field {
                        let flag = &Self::FLAGS[position];
                        if !skip.contains(&flag.key) {
                            $crate::options::flags::FlagValue::push_args(value, flag, args);
                        }
                    }
                    position += 1;
                )*
            }
        }
    };
    (@negation $negation:literal) => { Some($negation) };
    (@negation) => { None };
}

pub(crate) use typed_flags;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn explicit_zero_and_false_are_kept() {
        let flag = Flag { key: "gpu_layers", aliases: &[], long: "--gpu-layers", negation: None };
        let mut args = Vec::new();
        GpuLayers::Count(0).push_args(&flag, &mut args);
        assert_eq!(args, ["--gpu-layers", "0"]);

        let toggle = Flag { key: "mmap", aliases: &[], long: "--mmap", negation: Some("--no-mmap") };
        let mut args = Vec::new();
        false.push_args(&toggle, &mut args);
        assert_eq!(args, ["--no-mmap"]);
    }

    #[test]
    fn integers_accept_numeric_strings_and_reject_the_rest() {
        assert_eq!(u32::from_json(&json!("4096")), Ok(4096));
        assert!(u32::from_json(&json!(-1)).is_err());
        assert!(u32::from_json(&json!(1.5)).is_err());
        assert!(u16::from_json(&json!(70000)).is_err());
        assert!(i32::from_json(&json!("lots")).is_err());
        assert!(i32::from_json(&json!(null)).is_err());
    }

    #[test]
    fn extra_keys_and_values_are_checked() {
        let mut extra = ExtraArgs::default();
        assert!(extra.push("ok_key".into(), json!(1), "backend_options").is_ok());
        let err = extra.push("bad key".into(), json!(1), "backend_options").unwrap_err();
        assert_eq!(err.field(), "backend_options.bad key");
        let err = extra.push("nested".into(), json!({"a": 1}), "backend_options").unwrap_err();
        assert_eq!(err.field(), "backend_options.nested");
        assert!(extra.push("nul".into(), json!("a\0b"), "backend_options").is_err());
        assert!(extra.push("--dash".into(), json!(1), "backend_options").is_err());
    }

    #[test]
    fn extra_rendering() {
        let extra = ExtraArgs::from_pairs([
            ("lora", json!(["a.gguf", "b.gguf"])),
            ("n", json!(5)),
            ("quiet", json!(false)),
            ("skip", Value::Null),
            ("extra_args", json!({"--foo": "", "bar_baz": 2})),
        ])
        .unwrap();
        assert_eq!(extra.to_args(), ["--lora", "a.gguf", "--lora", "b.gguf", "-n", "5", "--foo", "--bar-baz", "2"]);
    }
}
