//! Classes in Go's regex syntax: `[…]`, `\pL`, `\d`, written as classes
//! of the regex crate with Go's members.

use super::{err, parse_escape, GoRegexError, INVALID_CHAR_RANGE, MISSING_BRACKET, NOTHING};

/// Go's general categories (`unicode.Categories`); other names in `\p{…}`
/// are scripts (or `Any`).
const GO_CATEGORIES: &[&str] = &[
    "C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn", "N",
    "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm", "So",
    "Z", "Zl", "Zp", "Zs",
];

/// Go's POSIX class names (`[[:alpha:]]`); the regex crate knows the same
/// fourteen with the same (ASCII) members.
const POSIX_CLASSES: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// A Perl class as a bracketed class, valid alone or inside a class.
pub(super) fn perl_class(c: char) -> &'static str {
    match c {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        's' => r"[\x{9}\x{A}\x{C}\x{D}\x{20}]",
        'S' => r"[^\x{9}\x{A}\x{C}\x{D}\x{20}]",
        'w' => "[0-9A-Za-z_]",
        _ => "[^0-9A-Za-z_]",
    }
}

/// Go's `parseUnicodeClass`: `\pL`, `\p{Greek}`, `\PL`, `\p{^Greek}` at the
/// start of `s`, as items for a class (none for a class nothing is in),
/// and the rest.
pub(super) fn unicode_class(s: &str) -> Result<(String, &str), GoRegexError> {
    let mut negated = s.as_bytes()[1] == b'P';
    let t = &s[2..];
    let (seq, name, rest) = match t.chars().next() {
        Some('{') => {
            let Some(end) = s.find('}') else {
                return Err(err(INVALID_CHAR_RANGE, s));
            };
            (&s[..=end], &s[3..end], &s[end + 1..])
        }
        Some(c) => {
            let n = 2 + c.len_utf8();
            (&s[..n], &s[2..n], &s[n..])
        }
        None => (s, "", ""),
    };
    let name = match name.strip_prefix('^') {
        Some(n) => {
            negated = !negated;
            n
        }
        None => name,
    };
    let items = match name {
        "Any" => r"\x{0}-\x{10FFFF}".to_string(),
        // Go's C is Cc|Cf|Co|Cs; the regex crate's also has unassigned code
        // points. Surrogates (Cs) are in no `&str`, and the regex crate has
        // no name for them.
        "C" => r"\p{Cc}\p{Cf}\p{Co}".to_string(),
        "Cs" => String::new(),
        n if GO_CATEGORIES.contains(&n) => format!(r"\p{{{n}}}"),
        n if is_script_name(n) => format!(r"\p{{sc={n}}}"),
        _ => return Err(err(INVALID_CHAR_RANGE, seq)),
    };
    let items = match (negated, items.is_empty()) {
        (false, _) => items,
        (true, false) => format!("[^{items}]"),
        (true, true) => r"\x{0}-\x{10FFFF}".to_string(),
    };
    Ok((items, rest))
}

/// Whether `name` is spelt as Go spells a script (`Greek`, `Old_Italic`)
/// and the regex crate knows it as a script (`sc=`: not a binary property
/// such as `Alphabetic`, nor a category's long name such as `Letter`, which
/// Go does not know). The regex crate also takes a script's four-letter
/// code (`Grek`), which Go does not (see the README).
fn is_script_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphabetic() || c == '_')
        && ::regex::Regex::new(&format!(r"\p{{sc={name}}}")).is_ok()
}

/// Go's `parseClass`: a bracketed class at the start of `s`, written as a
/// regex-crate class, and the rest.
pub(super) fn class(s: &str) -> Result<(String, &str), GoRegexError> {
    let mut t = &s[1..];
    let negated = t.starts_with('^');
    if negated {
        t = &t[1..];
    }
    let mut items = String::new();
    // `]` (and `-`) are literals as the first character.
    let mut first = true;
    while first || !t.starts_with(']') {
        first = false;
        if t.len() > 2 && t.starts_with("[:") {
            if let Some(i) = t[2..].find(":]") {
                let name = &t[..i + 4];
                let inner = &t[2..i + 2];
                let bare = inner.strip_prefix('^').unwrap_or(inner);
                if !POSIX_CLASSES.contains(&bare) {
                    return Err(err(INVALID_CHAR_RANGE, name));
                }
                items.push_str(&format!("[:{inner}:]"));
                t = &t[i + 4..];
                continue;
            }
        }
        if t.starts_with(r"\p") || t.starts_with(r"\P") {
            let (more, rest) = unicode_class(t)?;
            items.push_str(&more);
            t = rest;
            continue;
        }
        if let Some(c @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) =
            t.strip_prefix('\\').and_then(|r| r.chars().next())
        {
            items.push_str(perl_class(c));
            t = &t[2..];
            continue;
        }
        let range_start = t;
        let (lo, rest) = class_char(t, s)?;
        t = rest;
        let mut hi = lo;
        if t.len() >= 2 && t.starts_with('-') && !t[1..].starts_with(']') {
            let (h, rest) = class_char(&t[1..], s)?;
            t = rest;
            hi = h;
            if hi < lo {
                return Err(err(
                    INVALID_CHAR_RANGE,
                    &range_start[..range_start.len() - t.len()],
                ));
            }
        }
        push_range(&mut items, lo, hi);
    }
    let rest = &t[1..];
    let class = match (items.is_empty(), negated) {
        (true, false) => NOTHING.to_string(),
        (true, true) => r"[\x{0}-\x{10FFFF}]".to_string(),
        (false, false) => format!("[{items}]"),
        (false, true) => format!("[^{items}]"),
    };
    Ok((class, rest))
}

/// Go's `parseClassChar`: one character in a class; `whole` is the class
/// from its `[`, for the error at the end of input.
fn class_char<'a>(t: &'a str, whole: &str) -> Result<(u32, &'a str), GoRegexError> {
    match t.chars().next() {
        None => Err(err(MISSING_BRACKET, whole)),
        Some('\\') => parse_escape(t),
        Some(c) => Ok((c as u32, &t[c.len_utf8()..])),
    }
}

/// Adds `lo-hi` to a class, leaving out surrogates (no `&str` holds one).
fn push_range(items: &mut String, lo: u32, hi: u32) {
    let (lo, hi) = (
        if (0xD800..=0xDFFF).contains(&lo) {
            0xE000
        } else {
            lo
        },
        if (0xD800..=0xDFFF).contains(&hi) {
            0xD7FF
        } else {
            hi
        },
    );
    if lo > hi {
        return;
    }
    if lo == hi {
        items.push_str(&format!("\\x{{{lo:X}}}"));
    } else {
        items.push_str(&format!("\\x{{{lo:X}}}-\\x{{{hi:X}}}"));
    }
}
