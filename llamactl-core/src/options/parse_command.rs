//! Importing a pasted command line (`llama-server -m q.gguf -c 4096 ...`, `vllm serve ...`,
//! `mlx_lm.server ...`) as the equivalent `backend_options` object.
//!
//! Typed flags are found by their long flag, their negation (`--no-jinja`) or a short alias
//! (`-c`, `-ngl`, `-ctk`, ...) and converted through the typed field, so the result holds
//! canonical keys and typed values. Any other `--some-flag` becomes the key `some_flag`; a
//! flag that a key cannot reproduce exactly (such as `-xyz` or `--a_b`) is kept verbatim in
//! `extra_args`.

use serde_json::{Map, Value};

use super::flags::{Flag, RAW_EXTRA_KEY, flag_for_key};
use super::{BackendOptions, BackendType, LlamaCppOptions, MlxLmOptions, OptionsError, VllmOptions, llama_cpp};

/// Why a command line could not be imported. The message names the flag or argument at fault.
///
/// ```
/// use llamactl_core::BackendType;
/// use llamactl_core::options::{ParseCommandError, parse_command};
///
/// let err = parse_command(BackendType::LlamaCpp, "llama-server -m q.gguf --ctx-size").unwrap_err();
/// assert_eq!(err, ParseCommandError::MissingValue { flag: "--ctx-size".into(), found: None });
/// assert_eq!(err.to_string(), "flag --ctx-size needs a value");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseCommandError {
    /// Nothing to parse (only blanks or comments).
    #[error("empty command")]
    Empty,
    /// A quote is opened and never closed.
    #[error("unterminated {quote} quote starting at line {line}, column {column}")]
    UnterminatedQuote {
        /// The quote character (`'` or `"`).
        quote: char,
        /// Line of the opening quote, from 1.
        line: usize,
        /// Column (in characters) of the opening quote, from 1.
        column: usize,
    },
    /// The backend is `custom`, whose options are a command and arguments rather than flags.
    #[error(
        "custom backends take a command and args directly (backend_options.command and backend_options.args); \
         there is no command line to import"
    )]
    CustomBackend,
    /// The command starts with an environment assignment such as `CUDA_VISIBLE_DEVICES=0`.
    #[error(
        "'{assignment}' sets an environment variable, which is not a backend option; put it in the instance's environment"
    )]
    EnvironmentAssignment {
        /// The assignment as written.
        assignment: String,
    },
    /// The command runs another backend's program.
    #[error("expected a {expected} command line or only its arguments, got program '{program}'")]
    WrongProgram {
        /// The program of the backend being imported.
        expected: &'static str,
        /// The program found.
        program: String,
    },
    /// A flag that takes a value has none.
    #[error("flag {flag} needs a value{}", found.as_ref().map(|f| format!(" (found flag {f})")).unwrap_or_default())]
    MissingValue {
        /// The flag as written.
        flag: String,
        /// The flag that followed instead of a value, if any.
        found: Option<String>,
    },
    /// A switch or negation flag is given a value (`--no-jinja=1`).
    #[error("flag {flag} takes no value, got '{value}'")]
    UnexpectedValue {
        /// The flag as written.
        flag: String,
        /// The value given.
        value: String,
    },
    /// A typed flag's value has the wrong form (`--ctx-size big`).
    #[error("flag {flag}: invalid value '{value}': {message}")]
    InvalidValue {
        /// The flag as written.
        flag: String,
        /// The value given.
        value: String,
        /// What was expected.
        message: String,
    },
    /// Two arguments set the same single-valued option differently (`-c 1 --ctx-size 2`).
    #[error("{given} conflicts with the earlier {earlier} (both set {key})")]
    Conflict {
        /// The option's canonical key.
        key: String,
        /// The first argument setting it.
        earlier: String,
        /// The argument in conflict.
        given: String,
    },
    /// An untyped flag appears both bare and with a value (`--foo --foo 1`).
    #[error("flag {flag} is given both as a switch and with a value")]
    SwitchAndValue {
        /// The flag as written.
        flag: String,
    },
    /// A positional argument where the backend takes none.
    #[error("{program} takes no positional argument: '{argument}'")]
    Positional {
        /// The backend's program.
        program: &'static str,
        /// The argument.
        argument: String,
    },
    /// The imported object is not valid `backend_options` (a value no command line can carry,
    /// such as a NUL character).
    #[error("the imported options do not parse: {0}")]
    Options(#[from] OptionsError),
}

/// Parses a pasted command line for `backend` into its `backend_options` object.
///
/// The input may start with the backend's program (any path: `llama-server`, `vllm serve`,
/// `mlx_lm.server`, `python3 -m mlx_lm.server`) or hold only the arguments, and may span lines
/// joined by trailing backslashes. Typed flags get canonical keys and typed values; other flags
/// keep their name in snake_case, with a number where the text is one and `true` for a bare
/// switch; repeated flags become lists. vLLM's positional argument is the `model`.
///
/// ```
/// use llamactl_core::{BackendType, InstanceOptions};
/// use llamactl_core::options::parse_command;
/// use serde_json::json;
///
/// let options = parse_command(
///     BackendType::LlamaCpp,
///     "llama-server -m /models/q.gguf -c 4096 -ngl 99 --flash-attn on --no-webui",
/// )?;
/// assert_eq!(
///     serde_json::Value::Object(options.clone()),
///     json!({"model": "/models/q.gguf", "ctx_size": 4096, "gpu_layers": 99, "flash_attn": "on", "no_webui": true})
/// );
/// let instance = InstanceOptions::from_json_value(&json!({"backend_type": "llama_cpp", "backend_options": options}));
/// assert!(instance.is_ok());
///
/// let vllm = parse_command(BackendType::Vllm, "vllm serve Qwen/Qwen2-0.5B --tensor-parallel-size 2")?;
/// assert_eq!(vllm["model"], "Qwen/Qwen2-0.5B");
/// assert_eq!(vllm["tensor_parallel_size"], 2);
/// # Ok::<(), llamactl_core::options::ParseCommandError>(())
/// ```
pub fn parse_command(backend: BackendType, command: &str) -> Result<Map<String, Value>, ParseCommandError> {
    let spec = Spec::of(backend).ok_or(ParseCommandError::CustomBackend)?;
    let tokens = tokenize(command)?;
    if tokens.is_empty() {
        return Err(ParseCommandError::Empty);
    }
    let start = spec.skip_program(&tokens)?;
    let mut parser = Parser { spec: &spec, entries: Vec::new(), raw: Vec::new() };
    parser.run(&tokens[start..])?;
    let map = parser.finish();
    BackendOptions::parse(backend, &map)?;
    Ok(map)
}

/// Splits the text into words as a POSIX shell would, after joining continuation lines.
fn tokenize(command: &str) -> Result<Vec<String>, ParseCommandError> {
    let mut text = command.replace("\r\n", "\n").replace("\\\n", " ");
    // A trailing backslash left from a continued line.
    if let Some(rest) = text.trim_end().strip_suffix('\\')
        && !rest.ends_with('\\')
    {
        text = rest.to_owned();
    }
    shell_words::split(&text).map_err(|_| unterminated_quote(command))
}

/// Locates the quote left open in `text`, following the tokenizer's rules.
fn unterminated_quote(text: &str) -> ParseCommandError {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Delimiter,
        Word,
        Single,
        Double,
        Comment,
    }
    let (mut line, mut column) = (1, 0);
    let mut open = None;
    let mut state = State::Delimiter;
    let mut chars = text.chars();
    let mut advance = |c: char| {
        if c == '\n' {
            line += 1;
            column = 0;
        } else {
            column += 1;
        }
        (line, column)
    };
    while let Some(c) = chars.next() {
        let position = advance(c);
        state = match (state, c) {
            (State::Delimiter | State::Word, '\\') => {
                chars.next().map(&mut advance);
                State::Word
            }
            (State::Delimiter | State::Word, '\'' | '"') => {
                open = Some((c, position));
                if c == '\'' { State::Single } else { State::Double }
            }
            (State::Delimiter, '#') => State::Comment,
            (State::Delimiter | State::Word, ' ' | '\t' | '\n') => State::Delimiter,
            (State::Delimiter | State::Word, _) => State::Word,
            (State::Single, '\'') | (State::Double, '"') => State::Word,
            (State::Double, '\\') => {
                chars.next().map(&mut advance);
                State::Double
            }
            (State::Comment, '\n') => State::Delimiter,
            (other, _) => other,
        };
    }
    let (quote, (line, column)) = match (state, open) {
        (State::Single | State::Double, Some(open)) => open,
        // Not expected: the tokenizer only fails on an open quote.
        _ => ('"', (line, column)),
    };
    ParseCommandError::UnterminatedQuote { quote, line, column }
}

/// Whether a word is a flag (`-x`, `--xy`), as opposed to a value or a negative number.
fn is_flag(word: &str) -> bool {
    word.len() > 1 && word.starts_with('-') && !is_negative_number(word)
}

fn is_negative_number(word: &str) -> bool {
    word.strip_prefix('-').is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit() || c == '.'))
        && word.parse::<f64>().is_ok()
}

/// The JSON number for `text` when writing that number back gives the same text (so `4096`,
/// `-1` and `0.5` become numbers, `1e5`, `007` and `nan` stay strings).
fn number(text: &str) -> Option<Value> {
    let value = if let Ok(n) = text.parse::<i64>() {
        Value::from(n)
    } else if let Ok(n) = text.parse::<u64>() {
        Value::from(n)
    } else {
        Value::Number(serde_json::Number::from_f64(text.parse::<f64>().ok()?)?)
    };
    let written = value.to_string();
    (written == text).then_some(value)
}

/// The value of an untyped flag.
fn untyped_value(text: &str) -> Value {
    number(text).unwrap_or_else(|| Value::from(text))
}

/// Whether `name` is `-alias` or `--alias`.
fn is_dashed(name: &str, alias: &str) -> bool {
    name.strip_prefix("--").or_else(|| name.strip_prefix('-')) == Some(alias)
}

/// A key `ExtraArgs` accepts (mirrors its check).
fn key_ok(key: &str) -> bool {
    key.len() <= 100
        && key.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

fn basename(path: &str) -> &str {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    name.strip_suffix(".exe").unwrap_or(name)
}

fn is_env_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// What a backend's command line looks like.
struct Spec {
    backend: BackendType,
    /// The program, for messages.
    program: &'static str,
    flags: &'static [Flag],
    extra_aliases: &'static [(&'static str, &'static str)],
}

/// What a flag sets.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// A typed field; `negated` for its negation flag.
    Typed { key: &'static str, negated: bool },
    /// An untyped key.
    Extra(String),
    /// Nothing a key reproduces: kept verbatim in `extra_args`.
    Raw,
}

/// How a typed field is written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// A bool: the bare flag.
    Switch,
    /// A value, or the bare flag for `true` (llama.cpp's `-fa`).
    OptionalValue,
    /// A value.
    Value,
    /// A value, repeated per element.
    List,
}

impl Spec {
    fn of(backend: BackendType) -> Option<Self> {
        let (program, flags, extra_aliases) = match backend {
            BackendType::LlamaCpp => ("llama-server", LlamaCppOptions::FLAGS, llama_cpp::EXTRA_ALIASES),
            BackendType::MlxLm => ("mlx_lm.server", MlxLmOptions::FLAGS, &[][..]),
            BackendType::Vllm => ("vllm serve", VllmOptions::FLAGS, &[][..]),
            BackendType::Custom => return None,
        };
        Some(Self { backend, program, flags, extra_aliases })
    }

    /// How many leading words are the program (and `serve` for vLLM), not arguments.
    fn skip_program(&self, words: &[String]) -> Result<usize, ParseCommandError> {
        let word = |i: usize| words.get(i).map(String::as_str);
        // A shell prompt copied along with the command.
        let i = usize::from(word(0) == Some("$"));
        let Some(first) = word(i) else { return Ok(i) };
        if is_flag(first) {
            return Ok(i);
        }
        if is_env_assignment(first) {
            return Err(ParseCommandError::EnvironmentAssignment { assignment: first.to_owned() });
        }
        let name = basename(first);
        let python_module = name.starts_with("python") && word(i + 1) == Some("-m");
        let skip = match self.backend {
            BackendType::LlamaCpp => (name == "llama-server").then_some(1),
            BackendType::MlxLm => {
                if name == "mlx_lm.server" {
                    Some(1)
                } else if name == "mlx_lm" && word(i + 1) == Some("server") {
                    Some(2)
                } else if python_module && word(i + 2) == Some("mlx_lm.server") {
                    Some(3)
                } else if python_module && word(i + 2) == Some("mlx_lm") && word(i + 3) == Some("server") {
                    Some(4)
                } else {
                    None
                }
            }
            BackendType::Vllm => {
                if name == "vllm" {
                    Some(1 + usize::from(word(i + 1) == Some("serve")))
                } else if first == "serve" {
                    Some(1)
                } else if python_module && word(i + 2) == Some("vllm.entrypoints.openai.api_server") {
                    Some(3)
                } else {
                    None
                }
            }
            BackendType::Custom => None,
        };
        match skip {
            Some(n) => Ok(i + n),
            None if ["llama-server", "mlx_lm.server", "mlx_lm", "vllm"].contains(&name)
                || name.starts_with("python") =>
            {
                Err(ParseCommandError::WrongProgram { expected: self.program, program: first.to_owned() })
            }
            // Anything else is a positional argument, handled with the others.
            None => Ok(i),
        }
    }

    fn typed(&self, name: &str) -> Option<Target> {
        self.flags.iter().find_map(|flag| {
            if flag.long == name || flag.aliases.iter().any(|alias| is_dashed(name, alias)) {
                Some(Target::Typed { key: flag.key, negated: false })
            } else if flag.negation == Some(name) {
                Some(Target::Typed { key: flag.key, negated: true })
            } else {
                None
            }
        })
    }

    /// What the flag `name` (without any `=value`) sets.
    fn resolve(&self, name: &str) -> Target {
        if let Some(target) = self.typed(name) {
            return target;
        }
        if let Some((_, canonical)) = self.extra_aliases.iter().find(|(alias, _)| is_dashed(name, alias)) {
            // `-nocb` is `--no-cont-batching`, the negation of a typed flag.
            return self.typed(&flag_for_key(canonical)).unwrap_or_else(|| Target::Extra((*canonical).to_owned()));
        }
        let key = name.trim_start_matches('-').replace('-', "_");
        let known = self.flags.iter().any(|flag| flag.key == key || flag.aliases.contains(&key.as_str()))
            || self.extra_aliases.iter().any(|(alias, _)| *alias == key);
        if key_ok(&key) && key != RAW_EXTRA_KEY && !known && flag_for_key(&key) == name {
            Target::Extra(key)
        } else {
            Target::Raw
        }
    }

    /// `value` converted through the typed field `key`, in its canonical JSON form.
    fn typed_value(&self, key: &str, value: Value) -> Result<Value, String> {
        let mut map = Map::new();
        map.insert(key.to_owned(), value);
        let parsed = BackendOptions::parse(self.backend, &map).map_err(|e| match e {
            OptionsError::WrongType { message, .. } | OptionsError::Invalid { message, .. } => message,
            other => other.to_string(),
        })?;
        parsed.to_map().remove(key).ok_or_else(|| format!("{key} is not a typed option"))
    }

    fn kind(&self, key: &str) -> Kind {
        match self.typed_value(key, Value::Bool(true)) {
            Ok(Value::Bool(true)) => Kind::Switch,
            Ok(_) => Kind::OptionalValue,
            Err(_) => match self.typed_value(key, Value::from("x")) {
                Ok(Value::Array(_)) => Kind::List,
                _ => Kind::Value,
            },
        }
    }
}

/// One option collected from the command line.
struct Entry {
    key: String,
    /// How it was first given, for conflict messages.
    given: String,
    values: Vec<Value>,
    /// A typed option; otherwise untyped (a list when repeated).
    typed: bool,
    /// A typed list.
    list: bool,
}

struct Parser<'a> {
    spec: &'a Spec,
    entries: Vec<Entry>,
    /// Arguments kept verbatim for `extra_args`.
    raw: Vec<String>,
}

fn describe(flag: &str, value: Option<&str>) -> String {
    match value {
        Some(value) => format!("{flag} {}", shell_words::quote(value)),
        None => flag.to_owned(),
    }
}

impl Parser<'_> {
    fn run(&mut self, words: &[String]) -> Result<(), ParseCommandError> {
        let mut i = 0;
        let mut positional_only = false;
        while let Some(word) = words.get(i) {
            i += 1;
            if positional_only || !is_flag(word) {
                self.positional(word)?;
                continue;
            }
            if word == "--" {
                positional_only = true;
                continue;
            }
            let (name, inline) = match word.split_once('=') {
                Some((name, value)) if word.starts_with("--") => (name, Some(value)),
                _ => (word.as_str(), None),
            };
            let next = words.get(i).map(String::as_str);
            let consumed = match self.spec.resolve(name) {
                Target::Typed { key, negated } => self.typed(name, key, negated, inline, next)?,
                Target::Extra(key) => {
                    let (value, consumed) = match (inline, next) {
                        (Some(text), _) => (untyped_value(text), false),
                        (None, Some(next)) if !is_flag(next) => (untyped_value(next), true),
                        (None, _) => (Value::Bool(true), false),
                    };
                    self.add_untyped(key, name, value)?;
                    consumed
                }
                Target::Raw => {
                    self.raw.push(word.clone());
                    match next {
                        Some(next) if inline.is_none() && !is_flag(next) => {
                            self.raw.push(next.to_owned());
                            true
                        }
                        _ => false,
                    }
                }
            };
            i += usize::from(consumed);
        }
        Ok(())
    }

    /// Handles a typed flag; returns whether it took the next word as its value.
    fn typed(
        &mut self,
        name: &str,
        key: &'static str,
        negated: bool,
        inline: Option<&str>,
        next: Option<&str>,
    ) -> Result<bool, ParseCommandError> {
        let spec = self.spec;
        let convert = |value: Value| {
            let text = match &value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            spec.typed_value(key, value).map_err(|message| ParseCommandError::InvalidValue {
                flag: name.to_owned(),
                value: text,
                message,
            })
        };
        if negated {
            if let Some(value) = inline {
                return Err(ParseCommandError::UnexpectedValue { flag: name.to_owned(), value: value.to_owned() });
            }
            let value = convert(Value::Bool(false))?;
            self.add_typed(key, false, name.to_owned(), value)?;
            return Ok(false);
        }
        let kind = spec.kind(key);
        let (value, text, consumed) = match (kind, inline, next) {
            (_, Some(text), _) => (convert(Value::from(text))?, Some(text), false),
            (Kind::Switch, None, _) => (Value::Bool(true), None, false),
            (Kind::OptionalValue, None, Some(next)) if !is_flag(next) => match convert(Value::from(next)) {
                Ok(value) => (value, Some(next), true),
                // Not a value of this flag: the bare switch, followed by a positional argument.
                Err(_) => (convert(Value::Bool(true))?, None, false),
            },
            (Kind::OptionalValue, None, _) => (convert(Value::Bool(true))?, None, false),
            (Kind::Value | Kind::List, None, None) => {
                return Err(ParseCommandError::MissingValue { flag: name.to_owned(), found: None });
            }
            (Kind::Value | Kind::List, None, Some(next)) if is_flag(next) => {
                return Err(ParseCommandError::MissingValue { flag: name.to_owned(), found: Some(next.to_owned()) });
            }
            (Kind::Value | Kind::List, None, Some(next)) => (convert(Value::from(next))?, Some(next), true),
        };
        self.add_typed(key, kind == Kind::List, describe(name, text), value)?;
        Ok(consumed)
    }

    fn positional(&mut self, word: &str) -> Result<(), ParseCommandError> {
        if self.spec.backend != BackendType::Vllm {
            return Err(ParseCommandError::Positional { program: self.spec.program, argument: word.to_owned() });
        }
        let value = self.spec.typed_value("model", Value::from(word)).map_err(|message| {
            ParseCommandError::InvalidValue { flag: "model (positional)".into(), value: word.to_owned(), message }
        })?;
        self.add_typed("model", false, format!("positional argument {}", shell_words::quote(word)), value)
    }

    fn add_typed(&mut self, key: &str, list: bool, given: String, value: Value) -> Result<(), ParseCommandError> {
        let values = match value {
            Value::Array(items) if list => items,
            other => vec![other],
        };
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(entry) if list => entry.values.extend(values),
            Some(entry) if entry.values == values => {}
            Some(entry) => {
                return Err(ParseCommandError::Conflict { key: key.to_owned(), earlier: entry.given.clone(), given });
            }
            None => self.entries.push(Entry { key: key.to_owned(), given, values, typed: true, list }),
        }
        Ok(())
    }

    fn add_untyped(&mut self, key: String, flag: &str, value: Value) -> Result<(), ParseCommandError> {
        let switch = value == Value::Bool(true);
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(entry) => {
                let was_switch = entry.values.iter().any(|v| *v == Value::Bool(true));
                match (was_switch, switch) {
                    // A switch given twice is still a switch.
                    (true, true) => {}
                    (false, false) => entry.values.push(value),
                    _ => return Err(ParseCommandError::SwitchAndValue { flag: flag.to_owned() }),
                }
            }
            None => {
                let given = flag.to_owned();
                self.entries.push(Entry { key, given, values: vec![value], typed: false, list: false });
            }
        }
        Ok(())
    }

    fn finish(self) -> Map<String, Value> {
        let mut map = Map::new();
        for mut entry in self.entries {
            let value = if entry.list || (!entry.typed && entry.values.len() > 1) {
                Value::Array(entry.values)
            } else {
                entry.values.pop().unwrap_or(Value::Null)
            };
            map.insert(entry.key, value);
        }
        if !self.raw.is_empty() {
            map.insert(RAW_EXTRA_KEY.to_owned(), Value::Array(self.raw.into_iter().map(Value::String).collect()));
        }
        map
    }
}

#[cfg(test)]
mod tests;
