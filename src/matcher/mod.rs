//! Alertmanager's label matchers: `severity=~"critical|warning"`, `env!="dev"`.
//!
//! Rules in the config select alerts with the matcher syntax operators already
//! write in Alertmanager routes, silences and inhibit rules, so a matcher must
//! mean here exactly what it means there, as Alertmanager reads it by default.
//! Alertmanager's code is the reference (`prometheus/alertmanager`), and the
//! files here follow it:
//!
//! - this file: [`Matcher`], matching, the canonical form, and [`Mode`]: how
//!   the two parsers combine (`matcher/compat/parse.go`);
//! - `lexer.rs`, `parse.rs`: the UTF-8 parser (`matcher/parse/`), whose
//!   errors give the column span and the offending text;
//! - `classic.rs`: the classic parser (`pkg/labels/parse.go`);
//! - `regex.rs`, `regex/class.rs`: Go's RE2 syntax translated for Rust's
//!   `regex` crate;
//! - `error.rs`: [`MatcherError`].
//!
//! **Semantics** (`pkg/labels/matcher.go`): `=`/`!=` compare strings;
//! `=~`/`!~` compile the value once as `^(?:VALUE)$`, so a regex always
//! matches the *whole* value; a label the alert does not have compares as
//! `""` (so `env!="dev"` and `env=~".*"` match an alert with no `env`).
//!
//! **Parsers.** Alertmanager 0.27 and later parse with the UTF-8 parser and
//! fall back to the classic one where it fails; where both accept an input
//! and read it differently, the classic reading wins. That is
//! [`Mode::Fallback`], the default; [`Mode::Utf8`] is Alertmanager's
//! `utf8-strict-mode`. [`mode_dependence`] tells where the two differ.
//!
//! [`Display`](std::fmt::Display) prints Alertmanager's canonical form
//! (`name="escaped value"`, or both quoted when the name has reserved
//! characters), which parses back to an equal matcher in either mode.
//!
//! # Known divergences from Alertmanager
//!
//! Each is covered by a test and listed in the README:
//!
//! - Error texts: the UTF-8 parser's errors are Alertmanager's, except that
//!   errors Alertmanager reports without a position get the whole-input span
//!   `0:N:` (`env` gives `0:3: end of input: expected an operator …`). Where
//!   neither parser accepts an input, the UTF-8 parser's error is reported
//!   (it has a position), or the classic parser's regex error when that was
//!   its only objection; Alertmanager reports the classic parser's.
//! - An empty label name (`""="x"`) is rejected: Alertmanager's UTF-8 parser
//!   accepts it, but a label set cannot have one, so it is always a typo.
//! - Regexes: see `regex.rs` for what is translated and the README for what
//!   is not (Unicode property names Go does not know, Go's size limits).

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use ::regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::alert::Labels;

mod classic;
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
    /// `{"service name"="checkout"}`, read as in [`Mode::Fallback`]: braces
    /// are optional and the input must hold exactly one matcher.
    /// (Alertmanager's config reads each `matchers` entry with
    /// `parse.Matchers`, so `'a="b", c="d"'` there is two matchers; use
    /// [`parse_matchers`] for that.)
    pub fn parse(s: &str) -> Result<Matcher, MatcherError> {
        let ms = parse_matchers(s, Mode::Fallback)?;
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
    /// name, or for `=~`/`!~` on a value that is not a valid Go regex.
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
            // Alertmanager anchors the value as it is, so a value can close
            // the group (`a)|(b`); the whole anchored text is translated.
            let compiled = regex::translate(&format!("^(?:{value})$"))
                .map_err(|e| e.to_string())
                .and_then(|pattern| {
                    // The regex crate's limits (nesting, compiled size)
                    // apply: its compiler recurses, so its nesting
                    // limit guards the stack.
                    Regex::new(&pattern).map_err(|e| regex::regex_reason(&e))
                });
            match compiled {
                Ok(re) => Some(re),
                Err(reason) => {
                    let (span, text) = match value_at {
                        Some((span, text)) => (Some(span), text.to_string()),
                        None => {
                            let mut text = String::new();
                            // Writing into a String cannot fail.
                            let _ = write_canonical(&mut text, &name, op, &value);
                            (None, text)
                        }
                    };
                    return Err(MatcherError::InvalidRegex { span, text, reason });
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

/// Which parser reads matchers: config key `matchers.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Alertmanager's default (0.27 and later): the UTF-8 parser, the
    /// classic one where it fails, and the classic reading where both
    /// accept an input and read it differently.
    #[default]
    Fallback,
    /// The UTF-8 parser alone (Alertmanager's `utf8-strict-mode`).
    Utf8,
}

/// Parses `{a="b", c=~"d"}` or `a="b", c=~"d"` (Alertmanager's matchers list
/// form, as its config reads each `matchers` entry) into several matchers, in
/// input order. Empty input and `{}` give no matchers; a trailing comma is
/// allowed.
pub fn parse_matchers(s: &str, mode: Mode) -> Result<Vec<Matcher>, MatcherError> {
    let utf8 = parse::utf8(s);
    if mode == Mode::Utf8 {
        return utf8;
    }
    match (utf8, classic::parse(s)) {
        (_, Ok(classic)) => Ok(classic),
        (Ok(utf8), Err(_)) => Ok(utf8),
        (Err(e @ MatcherError::InvalidRegex { .. }), Err(_)) => Err(e),
        (Err(_), Err(classic::ClassicError::Regex(e))) => Err(e),
        (Err(e), Err(classic::ClassicError::Syntax(_))) => Err(e),
    }
}

/// How an input's reading depends on the [`Mode`], when it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeDependence {
    /// Only the classic parser accepts the input: [`Mode::Fallback`] reads
    /// it, [`Mode::Utf8`] refuses it with `utf8_error`.
    ClassicOnly {
        classic: Vec<Matcher>,
        utf8_error: MatcherError,
    },
    /// Both parsers accept the input and read it differently:
    /// [`Mode::Fallback`] reads `classic`, [`Mode::Utf8`] reads `utf8`.
    Disagree {
        classic: Vec<Matcher>,
        utf8: Vec<Matcher>,
    },
}

/// Whether the two parsers read `s` differently (what `check-config` warns
/// about, and Alertmanager logs). `None` when they agree or both refuse it.
pub fn mode_dependence(s: &str) -> Option<ModeDependence> {
    match (parse::utf8(s), classic::parse(s)) {
        (Ok(utf8), Ok(classic)) if utf8 != classic => {
            Some(ModeDependence::Disagree { classic, utf8 })
        }
        (Err(utf8_error), Ok(classic)) => Some(ModeDependence::ClassicOnly {
            classic,
            utf8_error,
        }),
        _ => None,
    }
}

impl fmt::Display for ModeDependence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Control characters shown by code point: a tab the UTF-8 parser
        // read from `\t` would be invisible.
        let list = |ms: &[Matcher]| {
            let v: Vec<String> = ms.iter().map(Matcher::to_string).collect();
            let mut out = String::from("{");
            for c in v.join(", ").chars() {
                if c.is_control() {
                    out.push_str(&format!("<U+{:04X}>", c as u32));
                } else {
                    out.push(c);
                }
            }
            out.push('}');
            out
        };
        match self {
            ModeDependence::ClassicOnly {
                classic,
                utf8_error,
            } => write!(
                f,
                "only the classic parser accepts this, reading {c}; matchers.mode = \"utf8\" \
                 (as Alertmanager's UTF-8 strict mode) refuses it ({utf8_error}); \
                 write {c} to read the same in both modes",
                c = list(classic),
            ),
            ModeDependence::Disagree { classic, utf8 } => write!(
                f,
                "read as {c} in matchers.mode = \"fallback\" (the classic reading, as \
                 Alertmanager's default) but as {u} in \"utf8\"; write {c} to read the \
                 same in both modes",
                c = list(classic),
                u = list(utf8),
            ),
        }
    }
}

#[cfg(test)]
mod golden;
#[cfg(test)]
mod tests;
