//! The classic matcher parser: a port of `pkg/labels/parse.go`, the only
//! parser of Alertmanager up to 0.26 and the fallback of its default mode
//! since 0.27.
//!
//! It reads `name op value` with a Prometheus label name
//! (`[a-zA-Z_:][a-zA-Z0-9_:]*`), a value that may be double-quoted, and
//! OpenMetrics escapes in the value (`\\`, `\n`, `\"`); any other backslash
//! is a literal backslash, so `foo=~\d+` and `foo=~"\d+"` are both the
//! regex `\d+`, and `foo="\t"` is backslash-t. Braces are trimmed one at
//! each end, independently, and the input is split at commas outside
//! double quotes.

use super::{MatchOp, Matcher, MatcherError};

/// Why the classic parser refused an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ClassicError {
    /// Not `name op value`, or a misplaced double quote: Alertmanager's
    /// message (`bad matcher format: …`).
    Syntax(String),
    /// Well-formed, but the value is not a valid regex.
    Regex(MatcherError),
}

/// Go's `\s` in the classic parser's regex: ASCII whitespace without `\v`.
fn is_go_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0C' | '\r' | ' ')
}

/// Alertmanager's `labels.ParseMatchers`.
pub(super) fn parse(s: &str) -> Result<Vec<Matcher>, ClassicError> {
    let s = s.strip_prefix('{').unwrap_or(s);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut tokens = Vec::new();
    let mut token = String::new();
    let (mut inside_quotes, mut escaped) = (false, false);
    for r in s.chars() {
        match r {
            ',' if !inside_quotes => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            // A comma inside quotes leaves `escaped` as it is, as in Go.
            ',' => {}
            '"' if escaped => escaped = false,
            '"' => inside_quotes = !inside_quotes,
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(r);
    }
    // Only the last token is trimmed (of Unicode whitespace, Go's
    // `strings.TrimSpace`) and dropped when empty: `a=b,` is one matcher,
    // `a=b,,c=d` an error.
    let last = token.trim();
    if !last.is_empty() {
        tokens.push(last.to_string());
    }
    tokens.iter().map(|t| parse_one(t)).collect()
}

/// Alertmanager's `labels.ParseMatcher`.
fn parse_one(s: &str) -> Result<Matcher, ClassicError> {
    let bad = || ClassicError::Syntax(format!("bad matcher format: {s}"));
    let rest = s.trim_start_matches(is_go_space);
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()))
        })
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return Err(bad());
    }
    let (name, rest) = rest.split_at(name_len);
    let rest = rest.trim_start_matches(is_go_space);
    let (op, rest) = [
        ("=~", MatchOp::Regex),
        ("=", MatchOp::Equal),
        ("!=", MatchOp::NotEqual),
        ("!~", MatchOp::NotRegex),
    ]
    .into_iter()
    .find_map(|(text, op)| rest.strip_prefix(text).map(|r| (op, r)))
    .ok_or_else(bad)?;
    let raw = rest.trim_matches(is_go_space);
    let value = unescape(raw).ok_or_else(|| {
        ClassicError::Syntax(format!(
            "matcher value contains unescaped double quote: {raw}"
        ))
    })?;
    Matcher::build(name.to_string(), op, value, None).map_err(ClassicError::Regex)
}

/// The classic value rules: an optional pair of enclosing double quotes;
/// `\n`, `\"`, `\\` unescaped; any other backslash kept. `None` for a double
/// quote that is neither escaped nor closing.
fn unescape(raw: &str) -> Option<String> {
    let (raw, mut expect_quote) = match raw.strip_prefix('"') {
        Some(r) => (r, true),
        None => (raw, false),
    };
    let mut value = String::with_capacity(raw.len());
    let mut escaped = false;
    for (i, r) in raw.char_indices() {
        let last = i + r.len_utf8() == raw.len();
        if escaped {
            escaped = false;
            match r {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(r),
                _ => {
                    value.push('\\');
                    value.push(r);
                }
            }
            continue;
        }
        match r {
            '\\' if !last => escaped = true,
            '"' if expect_quote && last => expect_quote = false,
            '"' => return None,
            r => value.push(r),
        }
    }
    (!expect_quote).then_some(value)
}
