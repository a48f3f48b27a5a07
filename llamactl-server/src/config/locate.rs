//! The line of a key in YAML text, for error messages: `instances.definitions.q.backend_options`
//! is found through the block mappings that lead to it. Flow mappings (`{a: 1}`) and keys
//! written across lines are not followed; the line of the deepest key found is given instead.

/// The 1-based line where the key at `path` (keys from the top) is written, or the line of
/// the deepest of its parents that is; `None` when not even the first key is found.
///
/// ```
/// use llamactl_server::config::locate_line;
/// let text = "server:\n  port: 1\ninstances:\n  definitions:\n    q:\n      backend_options:\n        ctx_size: x\n";
/// assert_eq!(locate_line(text, &["instances", "definitions", "q", "backend_options", "ctx_size"]), Some(7));
/// assert_eq!(locate_line(text, &["instances", "definitions", "q", "missing"]), Some(5));
/// assert_eq!(locate_line(text, &["nowhere"]), None);
/// ```
pub fn locate_line(text: &str, path: &[&str]) -> Option<usize> {
    // The keys open at each indentation, outermost first.
    let mut open: Vec<(usize, String)> = Vec::new();
    let mut best: Option<(usize, usize)> = None; // (keys matched, line)
    for (index, line) in text.lines().enumerate() {
        let Some((indent, key)) = key_of(line) else { continue };
        while open.last().is_some_and(|(i, _)| *i >= indent) {
            open.pop();
        }
        open.push((indent, key));
        let matched = open.iter().zip(path).take_while(|((_, k), p)| k == *p).count();
        if matched == open.len() && best.is_none_or(|(m, _)| matched > m) {
            best = Some((matched, index + 1));
            if matched == path.len() {
                break;
            }
        }
    }
    best.map(|(_, line)| line)
}

/// `(indentation, key)` of a line that opens a block mapping key (`  key:` or `  key: value`).
fn key_of(line: &str) -> Option<(usize, String)> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('-') {
        return None;
    }
    let indent = line.len() - trimmed.len();
    let (key, rest) = if let Some(quote) = trimmed.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = trimmed[1..].find(quote)? + 1;
        (&trimmed[1..end], &trimmed[end + 1..])
    } else {
        let colon = trimmed.find(':')?;
        (trimmed[..colon].trim_end(), &trimmed[colon..])
    };
    let rest = rest.trim_start();
    // `key:` then the end, a space or a comment; not `a:b` inside a plain scalar.
    if !rest.starts_with(':') || !(rest.len() == 1 || rest[1..].starts_with([' ', '\t'])) {
        return None;
    }
    Some((indent, key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_through_block_mappings_with_comments_and_quotes() {
        let text = "# top\ninstances:\n  # note\n  definitions:\n    \"my.model\":\n      backend_type: llama_cpp # inline\n      environment:\n        A: 'x: y'\n";
        assert_eq!(locate_line(text, &["instances", "definitions", "my.model", "backend_type"]), Some(6));
        assert_eq!(locate_line(text, &["instances", "definitions", "my.model", "environment", "A"]), Some(8));
    }

    #[test]
    fn a_sibling_at_the_same_depth_is_not_a_parent() {
        let text = "a:\n  b: 1\nc:\n  b: 2\n";
        assert_eq!(locate_line(text, &["c", "b"]), Some(4));
        assert_eq!(locate_line(text, &["a", "b"]), Some(2));
    }

    #[test]
    fn a_flow_mapping_gives_the_line_of_its_key() {
        let text = "templates:\n  base: {backend_type: vllm, idle_timeout: x}\n";
        assert_eq!(locate_line(text, &["templates", "base", "idle_timeout"]), Some(2));
    }

    #[test]
    fn urls_and_list_items_are_not_keys() {
        let text = "a:\n  - b: 1\n  url: http://x:80\n";
        assert_eq!(locate_line(text, &["a", "url"]), Some(3));
        assert_eq!(locate_line(text, &["http"]), None);
    }
}
