//! Label regexes: Go's RE2 syntax compiled with Rust's `regex` crate.

use std::borrow::Cow;

/// A label regex's error in one line ("unclosed group"), without the
/// multi-line excerpt of the anchored, translated pattern.
pub(super) fn regex_reason(e: &regex::Error) -> String {
    let s = e.to_string();
    let line = s
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// Rewrites Go's ASCII-only Perl classes into explicit classes, which mean
/// the same in Rust (where `\d`, `\w`, `\s`, `\b` are Unicode-aware). The
/// replacements are bracketed classes, valid both on their own and nested
/// inside a class (`[\d_]` → `[[0-9]_]`). Every escape is two characters, so
/// a left-to-right scan never mistakes `\\d` for `\d`.
pub(super) fn go_perl_classes(re: &str) -> Cow<'_, str> {
    if !re.contains('\\') {
        return Cow::Borrowed(re);
    }
    let mut out = String::with_capacity(re.len() + 16);
    let mut chars = re.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('W') => out.push_str("[^0-9A-Za-z_]"),
            Some('s') => out.push_str(r"[\t\n\f\r ]"),
            Some('S') => out.push_str(r"[^\t\n\f\r ]"),
            Some('b') => out.push_str(r"(?-u:\b)"),
            Some('B') => out.push_str(r"(?-u:\B)"),
            Some(e) => {
                out.push('\\');
                out.push(e);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}
