//! `${VAR}` and `${VAR:-default}` expansion in configuration text, done before the text is parsed
//! as YAML.
//!
//! Rules:
//!
//! - `${VAR}` becomes the value of `VAR`. An unset variable becomes the empty string, like in
//!   the shell. (The Go llamactl leaves an unset `${VAR}` as it is; llamactl chose the shell's
//!   behaviour, which does not smuggle a literal `${VAR}` into a path or a key.)
//! - `${VAR:-default}` becomes the value of `VAR`, or `default` when `VAR` is unset **or empty**
//!   (like the shell's `:-`). The default runs to the first `}`; it cannot contain `}`.
//! - A variable name is `[A-Za-z_][A-Za-z0-9_]*`. Anything else between `${` and `}` (a bad
//!   name, `${VAR-x}`, `${VAR:x}`) is an error naming the line, as is a `${` without a `}` on the
//!   same line.
//! - A `$` not followed by `{` stays as it is; `$$` is not an escape.
//! - Lines whose first non-blank character is `#` (YAML comments) are left alone: neither
//!   expanded nor checked.
//! - Values are inserted verbatim: quote the placeholder (`key: "${VAR}"`) when the value may
//!   contain characters that mean something to YAML (`: `, ` #`, a leading `*`, ...).

use std::fmt;

/// What is wrong with a `${...}` placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// `${` without a closing `}` on the same line.
    Unterminated {
        /// 1-based line number.
        line: usize,
    },
    /// The text between `${` and `}` (or `:-`) is not a variable name.
    InvalidName {
        /// 1-based line number.
        line: usize,
        /// The offending text.
        name: String,
    },
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unterminated { line } => write!(f, "line {line}: `${{` without a closing `}}`"),
            Self::InvalidName { line, name } => write!(
                f,
                "line {line}: `${{{name}}}` is not a valid placeholder (expected `${{NAME}}` or \
                 `${{NAME:-default}}` where NAME is letters, digits and `_`, not starting with a digit)"
            ),
        }
    }
}

impl std::error::Error for ExpandError {}

/// Expands `${VAR}` and `${VAR:-default}` in `text`, looking variables up with `lookup` (see the
/// module documentation for the rules).
pub(crate) fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            expand_line(line, index + 1, &lookup, &mut out)?;
        }
    }
    Ok(out)
}

fn expand_line(
    line: &str,
    number: usize,
    lookup: &impl Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), ExpandError> {
    let mut rest = line;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or(ExpandError::Unterminated { line: number })?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if !is_name(name) {
            return Err(ExpandError::InvalidName { line: number, name: inner.to_owned() });
        }
        let value = lookup(name);
        match (value, default) {
            (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {}
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(())
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn ok(text: &str, vars: &[(&str, &str)]) -> String {
        expand(text, env(vars)).unwrap()
    }

    #[test]
    fn plain_variable() {
        assert_eq!(ok("host: ${MY_HOST}", &[("MY_HOST", "localhost")]), "host: localhost");
        assert_eq!(ok("${_PRIVATE}", &[("_PRIVATE", "x")]), "x");
        assert_eq!(ok("${A1_b2}", &[("A1_b2", "y")]), "y");
    }

    #[test]
    fn unset_variable_is_empty() {
        assert_eq!(ok("host: ${UNSET}.", &[]), "host: .");
    }

    #[test]
    fn set_but_empty_variable_is_empty() {
        assert_eq!(ok("a${EMPTY}b", &[("EMPTY", "")]), "ab");
    }

    #[test]
    fn default_when_unset_or_empty() {
        assert_eq!(ok("port: ${P:-8080}", &[]), "port: 8080");
        assert_eq!(ok("port: ${P:-8080}", &[("P", "")]), "port: 8080");
        assert_eq!(ok("port: ${P:-8080}", &[("P", "9090")]), "port: 9090");
        assert_eq!(ok("v: ${P:-}", &[]), "v: ");
        assert_eq!(ok("v: ${P:-/usr/local/bin:x-y}", &[]), "v: /usr/local/bin:x-y");
        assert_eq!(ok("v: ${P:-a:-b}", &[]), "v: a:-b");
    }

    #[test]
    fn several_on_a_line_and_several_lines() {
        let vars = [("HOST", "example.com"), ("PORT", "443")];
        assert_eq!(ok("url: http://${HOST}:${PORT}/api", &vars), "url: http://example.com:443/api");
        assert_eq!(ok("a: ${HOST}\nb: ${PORT}\n", &vars), "a: example.com\nb: 443\n");
    }

    #[test]
    fn dollar_without_brace_and_double_dollar() {
        assert_eq!(ok("a: $HOST $ $1 cost$", &[("HOST", "h")]), "a: $HOST $ $1 cost$");
        assert_eq!(ok("a: $${HOST}", &[("HOST", "h")]), "a: $h");
        assert_eq!(ok("a: {x: 1} }", &[]), "a: {x: 1} }");
    }

    #[test]
    fn values_are_not_expanded_again() {
        assert_eq!(ok("${A}", &[("A", "${B}"), ("B", "no")]), "${B}");
    }

    #[test]
    fn text_without_placeholders_is_unchanged() {
        let text = "server:\n  host: 0.0.0.0\r\n  port: 8080\n\nno newline at end";
        assert_eq!(ok(text, &[]), text);
        assert_eq!(ok("", &[]), "");
    }

    #[test]
    fn comment_lines_are_left_alone() {
        let text = "# use ${VAR} or ${ here\n  # ${bad name}\nkey: ${VAR} # ${VAR}\n";
        assert_eq!(ok(text, &[("VAR", "v")]), "# use ${VAR} or ${ here\n  # ${bad name}\nkey: v # v\n");
    }

    #[test]
    fn unterminated_names_the_line() {
        let err = expand("a: 1\nb: ${HOST\nc: }\n", env(&[])).unwrap_err();
        assert_eq!(err, ExpandError::Unterminated { line: 2 });
        assert!(err.to_string().starts_with("line 2:"), "{err}");
        assert_eq!(expand("${", env(&[])).unwrap_err(), ExpandError::Unterminated { line: 1 });
    }

    #[test]
    fn invalid_names_are_errors() {
        for (text, name) in [
            ("x: ${}", ""),
            ("x: ${1A}", "1A"),
            ("x: ${A-B}", "A-B"),
            ("x: ${A:x}", "A:x"),
            ("x: ${A-default}", "A-default"),
            ("x: ${ A }", " A "),
            ("x: ${:-d}", ":-d"),
            ("x: ${é}", "é"),
        ] {
            let err = expand(&format!("ok: 1\n{text}\n"), env(&[])).unwrap_err();
            assert_eq!(err, ExpandError::InvalidName { line: 2, name: name.to_owned() }, "{text}");
            assert!(err.to_string().contains("line 2"), "{err}");
        }
    }
}
