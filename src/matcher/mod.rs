//! Alertmanager-compatible label matchers: `severity=~"critical|warning"`, `env!="dev"`.
//!
//! Rules in the config select alerts with the matcher syntax operators already
//! write in Alertmanager routes, silences and inhibit rules, so a matcher must
//! mean here exactly what it means there. Alertmanager's code is the
//! reference, and this module follows it closely:
//!
//! - **Semantics**, `prometheus/alertmanager: pkg/labels/matcher.go` (and its
//!   twin `matcher/matcher.go`): `=`/`!=` compare strings; `=~`/`!~` compile
//!   the value once as `^(?:VALUE)$`, so a regex always matches the *whole*
//!   value; a label the alert does not have compares as `""` (so `env!="dev"`
//!   and `env=~".*"` match an alert with no `env`).
//! - **Syntax and errors**, the UTF-8 parser in `matcher/parse/lexer.go`,
//!   `parse.go` and `token.go` (Alertmanager 0.27+ with `utf8-strict-mode`;
//!   without it, Alertmanager retries what this parser rejects with its
//!   classic parser and logs a warning asking users to fix the input): names and
//!   values are double-quoted (Go string-literal escapes) or unquoted runs of
//!   non-reserved characters; whitespace between tokens is ignored; an optional
//!   `{…}` and a trailing comma are allowed; error messages start with the
//!   column span (in characters) and the offending text, e.g.
//!   `3:4: !: expected one of '=~': expected an operator such as '=', '!=', '=~' or '!~'`.
//!
//! [`Display`](std::fmt::Display) prints Alertmanager's canonical form
//! (`name="escaped value"`, or both quoted when the name has reserved
//! characters), which always parses back to an equal matcher.
//!
//! # Known divergences from Alertmanager
//!
//! Kept deliberately small and each covered by a test (as Alertmanager's own
//! `matcher/compliance/compliance_test.go` keeps known divergences as cases):
//!
//! - Errors Alertmanager reports without a position get the whole-input span
//!   `0:N:` that Alertmanager itself uses for `0:8: end of input: expected
//!   close brace`: `env` gives `0:3: end of input: expected an operator …`
//!   (Alertmanager: `end of input: expected an operator …`), `""` gives
//!   `0:0: no matchers`.
//! - An empty label name (`""="x"`) is rejected: Alertmanager's parser accepts
//!   it, but a label set cannot have one, so such a matcher is always a typo.
//! - Regexes run on Rust's `regex` crate, not Go's RE2. The syntax is nearly
//!   the same; where meanings differ in practice we translate: `\d \w \s`
//!   (and `\D \W \S`, `\b \B`) are ASCII-only in Go and Unicode-aware in Rust,
//!   so they are compiled as Go defines them (`\d` = `[0-9]`, `\s` =
//!   `[\t\n\f\r ]`, …). Not translated: Rust's class set operations (`[a&&b]`,
//!   `--`, `~~`) and nested classes, which Go reads as literal characters;
//!   Go's `\Q…\E`, which Rust rejects; a few forms only Rust accepts (the
//!   `x` flag, `\<`, repeat counts over 1000); and regex error texts, which
//!   name Rust's error (`invalid regular expression: unclosed group`).

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use ::regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::alert::Labels;

mod error;
mod lexer;
mod parse;
mod regex;

pub use error::{Expected, MatcherError, Span};
use lexer::is_reserved;

/// How a matcher compares a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`: the value equals.
    Equal,
    /// `!=`: the value differs.
    NotEqual,
    /// `=~`: the whole value matches the regex.
    Regex,
    /// `!~`: the whole value does not match the regex.
    NotRegex,
}

impl MatchOp {
    /// The operator as written: `=`, `!=`, `=~` or `!~`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }

    pub(crate) fn is_regex(self) -> bool {
        matches!(self, MatchOp::Regex | MatchOp::NotRegex)
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One label matcher. Equality (and hashing) is by name, operator and value;
/// the compiled regex is derived from them.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The label name; never empty.
    name: String,
    op: MatchOp,
    /// The value as the user meant it (unescaped), also the regex source.
    value: String,
    /// `^(?:value)$`, compiled once, for `=~` and `!~`; `None` otherwise.
    re: Option<Regex>,
}

impl Matcher {
    /// Parses one matcher, e.g. `severity=~"critical|warning"`, `env!=dev`,
    /// `{"service name"="checkout"}`. Like Alertmanager's `parse.Matcher`:
    /// braces are optional and the input must hold exactly one matcher.
    /// (Alertmanager's config reads each `matchers` entry with
    /// `parse.Matchers`, so `'a="b", c="d"'` there is two matchers; use
    /// [`parse_matchers`] for that.)
    pub fn parse(s: &str) -> Result<Matcher, MatcherError> {
        let ms = parse_matchers(s)?;
        let span = Span {
            start: 0,
            end: s.chars().count(),
        };
        match <[Matcher; 1]>::try_from(ms) {
            Ok([m]) => Ok(m),
            Err(ms) if ms.is_empty() => Err(MatcherError::NoMatchers { span }),
            Err(ms) => Err(MatcherError::TooManyMatchers {
                span,
                found: ms.len(),
            }),
        }
    }

    /// Builds a matcher from its parts (`value` unescaped). Fails on an empty
    /// name, or for `=~`/`!~` on a value that is not a valid regex.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, MatcherError> {
        Matcher::build(name.to_string(), op, value.to_string(), None)
    }

    /// `value_at` locates the value in parsed input, for error messages.
    pub(crate) fn build(
        name: String,
        op: MatchOp,
        value: String,
        value_at: Option<(Span, &str)>,
    ) -> Result<Matcher, MatcherError> {
        if name.is_empty() {
            return Err(MatcherError::EmptyLabelName {
                span: None,
                text: String::new(),
            });
        }
        let re = if op.is_regex() {
            let pattern = format!("^(?:{})$", regex::go_perl_classes(&value));
            match Regex::new(&pattern) {
                Ok(re) => Some(re),
                Err(e) => {
                    let (span, text) = match value_at {
                        Some((span, text)) => (Some(span), text.to_string()),
                        None => {
                            let mut text = String::new();
                            // Writing into a String cannot fail.
                            let _ = write_canonical(&mut text, &name, op, &value);
                            (None, text)
                        }
                    };
                    return Err(MatcherError::InvalidRegex {
                        span,
                        text,
                        reason: regex::regex_reason(&e),
                    });
                }
            }
        } else {
            None
        };
        Ok(Matcher {
            name,
            op,
            value,
            re,
        })
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operator.
    pub fn op(&self) -> MatchOp {
        self.op
    }

    /// The value (unescaped); for `=~`/`!~` the regex source, without anchors.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether the alert's labels satisfy this matcher; a missing label
    /// compares as `""`, as in Alertmanager.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get_or_empty(&self.name))
    }

    /// Whether a label value satisfies this matcher.
    pub fn matches_value(&self, value: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            // Unreachable: `build` compiles a regex for every regex operator.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_canonical(f, &self.name, self.op, &self.value)
    }
}

/// Alertmanager's `Matcher.String()`: `name="value"` with OpenMetrics escapes
/// (`\\`, `\n`, `\"`), or, when the name holds a reserved character (which
/// only the UTF-8 parser reads, quoted), both name and value Go-quoted.
fn write_canonical(w: &mut dyn fmt::Write, name: &str, op: MatchOp, value: &str) -> fmt::Result {
    if name.chars().any(is_reserved) {
        write_go_quoted(w, name)?;
        w.write_str(op.as_str())?;
        return write_go_quoted(w, value);
    }
    w.write_str(name)?;
    w.write_str(op.as_str())?;
    w.write_char('"')?;
    for c in value.chars() {
        match c {
            '\\' => w.write_str("\\\\")?,
            '\n' => w.write_str("\\n")?,
            '"' => w.write_str("\\\"")?,
            c => w.write_char(c)?,
        }
    }
    w.write_char('"')
}

/// Go's `strconv.Quote`, except that only control and non-ASCII whitespace
/// characters count as non-printable (Go also escapes a few format and
/// unassigned code points). Every output parses back to the input.
fn write_go_quoted(w: &mut dyn fmt::Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    for c in s.chars() {
        match c {
            '\u{7}' => w.write_str("\\a")?,
            '\u{8}' => w.write_str("\\b")?,
            '\u{c}' => w.write_str("\\f")?,
            '\n' => w.write_str("\\n")?,
            '\r' => w.write_str("\\r")?,
            '\t' => w.write_str("\\t")?,
            '\u{b}' => w.write_str("\\v")?,
            '\\' => w.write_str("\\\\")?,
            '"' => w.write_str("\\\"")?,
            c if c < ' ' || c == '\u{7f}' => write!(w, "\\x{:02x}", c as u32)?,
            c if c != ' ' && (c.is_control() || c.is_whitespace()) => {
                if (c as u32) < 0x10000 {
                    write!(w, "\\u{:04x}", c as u32)?;
                } else {
                    write!(w, "\\U{:08x}", c as u32)?;
                }
            }
            c => w.write_char(c)?,
        }
    }
    w.write_char('"')
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl Hash for Matcher {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.op.hash(state);
        self.value.hash(state);
    }
}

impl FromStr for Matcher {
    type Err = MatcherError;

    fn from_str(s: &str) -> Result<Matcher, MatcherError> {
        Matcher::parse(s)
    }
}

impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        Matcher::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Parses `{a="b", c=~"d"}` or `a="b", c=~"d"` (Alertmanager's matchers list
/// form, `parse.Matchers`) into several matchers, in input order. Empty input
/// and `{}` give no matchers; a trailing comma is allowed.
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, MatcherError> {
    parse::utf8(s)
}

#[cfg(test)]
mod tests;
