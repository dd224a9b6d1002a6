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

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::alert::Labels;

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

    fn is_regex(self) -> bool {
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
    fn build(
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
            let pattern = format!("^(?:{})$", go_perl_classes(&value));
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
                        reason: regex_reason(&e),
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
    let mut p = Parser {
        lx: Lexer::new(s),
        matchers: Vec::new(),
        has_open_brace: false,
    };
    let mut state = State::OpenBrace;
    loop {
        state = match state {
            State::OpenBrace => p.open_brace()?,
            State::CloseBrace => p.close_brace()?,
            State::Matcher => p.matcher()?,
            State::EndOfMatcher => p.end_of_matcher()?,
            State::Comma => p.comma()?,
            State::Eof => p.eof()?,
            State::Done => return Ok(p.matchers),
        };
    }
}

/// A column range in the input, counted in characters from 0, end exclusive;
/// printed `start:end` as Alertmanager does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First column, from 0.
    pub start: usize,
    /// One past the last column.
    pub end: usize,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.start, self.end)
    }
}

/// What the parser was looking for when it failed; printed after the cause,
/// as Alertmanager wraps its lexer errors. Each variant prints as
/// Alertmanager's sentinel error (`expected label name`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expected {
    LabelName,
    Operator,
    LabelValue,
    Comma,
    CommaOrCloseBrace,
    MatcherOrCloseBrace,
    CloseBrace,
    EndOfInput,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expected::LabelName => "expected label name",
            Expected::Operator => "expected an operator such as '=', '!=', '=~' or '!~'",
            Expected::LabelValue => "expected label value",
            Expected::Comma => "expected a comma",
            Expected::CommaOrCloseBrace => "expected a comma or close brace",
            Expected::MatcherOrCloseBrace => "expected a matcher or close brace after comma",
            Expected::CloseBrace => "expected close brace",
            Expected::EndOfInput => "expected end of input",
        })
    }
}

/// Why a matcher could not be parsed or built. Messages are Alertmanager's
/// (`matcher/parse`): column span, offending text, cause, then what was
/// expected, e.g. `8:9: \: invalid input: expected a comma or close brace`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MatcherError {
    /// A character no token starts with (`~`, `\`, `'`, a backquote), or a
    /// quoted string with a bad escape, a raw newline or invalid UTF-8.
    #[error("{span}: {text}: invalid input{}", ctx(.context))]
    InvalidInput {
        span: Span,
        text: String,
        context: Option<Expected>,
    },
    /// `!` not followed by `=` or `~`; `found` is `None` at end of input.
    #[error("{span}: {}expected one of '=~'{}", found_prefix(.found), ctx(.context))]
    IncompleteOperator {
        span: Span,
        found: Option<String>,
        context: Option<Expected>,
    },
    /// A double quote without its closing quote.
    #[error("{span}: {text}: missing end \"{}", ctx(.context))]
    UnterminatedQuote {
        span: Span,
        text: String,
        context: Option<Expected>,
    },
    /// A well-formed token where the grammar wants another.
    #[error("{span}: unexpected {found}{}", ctx(.context))]
    UnexpectedToken {
        span: Span,
        found: String,
        context: Option<Expected>,
    },
    /// The input ended too early; the span is the whole input.
    #[error("{span}: end of input{}", ctx(.context))]
    UnexpectedEnd {
        span: Span,
        context: Option<Expected>,
    },
    /// A `}` without a leading `{`.
    #[error("{span}: }}: expected opening brace")]
    UnopenedBrace { span: Span },
    /// Something after the closing brace.
    #[error("{span}: {found}: expected end of input")]
    TrailingInput { span: Span, found: String },
    /// `""="x"`: no label can have an empty name.
    #[error("{}empty label name", origin(.span, .text))]
    EmptyLabelName { span: Option<Span>, text: String },
    /// `=~`/`!~` with a value Rust's regex engine rejects. `span`/`text`
    /// locate the value when parsed; from [`Matcher::new`] `text` is the
    /// matcher's canonical form.
    #[error("{}invalid regular expression: {reason}", origin(.span, .text))]
    InvalidRegex {
        span: Option<Span>,
        text: String,
        reason: String,
    },
    /// [`Matcher::parse`] on input with no matcher (`""`, `{}`).
    #[error("{span}: no matchers")]
    NoMatchers { span: Span },
    /// [`Matcher::parse`] on input with several; use [`parse_matchers`].
    #[error("{span}: expected 1 matcher, found {found}")]
    TooManyMatchers { span: Span, found: usize },
}

fn ctx(c: &Option<Expected>) -> String {
    c.map(|e| format!(": {e}")).unwrap_or_default()
}

fn found_prefix(found: &Option<String>) -> String {
    match found {
        Some(f) => format!("{f}: "),
        None => "unexpected end of input, ".to_string(),
    }
}

fn origin(span: &Option<Span>, text: &str) -> String {
    let mut s = span.map(|s| format!("{s}: ")).unwrap_or_default();
    if !text.is_empty() {
        s.push_str(text);
        s.push_str(": ");
    }
    s
}

impl MatcherError {
    /// Where in the input the error is, when it comes from parsing.
    pub fn span(&self) -> Option<Span> {
        use MatcherError::*;
        match self {
            InvalidInput { span, .. }
            | IncompleteOperator { span, .. }
            | UnterminatedQuote { span, .. }
            | UnexpectedToken { span, .. }
            | UnexpectedEnd { span, .. }
            | UnopenedBrace { span }
            | TrailingInput { span, .. }
            | NoMatchers { span }
            | TooManyMatchers { span, .. } => Some(*span),
            EmptyLabelName { span, .. } | InvalidRegex { span, .. } => *span,
        }
    }

    /// Adds what the parser expected (Alertmanager's `"%w: %w"` wrapping).
    fn expecting(mut self, e: Expected) -> MatcherError {
        use MatcherError::*;
        match &mut self {
            InvalidInput { context, .. }
            | IncompleteOperator { context, .. }
            | UnterminatedQuote { context, .. }
            | UnexpectedToken { context, .. }
            | UnexpectedEnd { context, .. } => *context = Some(e),
            _ => {}
        }
        self
    }
}

/// A label regex's error in one line ("unclosed group"), without the
/// multi-line excerpt of the anchored, translated pattern.
fn regex_reason(e: &regex::Error) -> String {
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
fn go_perl_classes(re: &str) -> Cow<'_, str> {
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

// ---------------------------------------------------------------------------
// Lexer: a port of matcher/parse/lexer.go. Offsets are bytes, columns are
// characters (Go counts runes; valid UTF-8 makes the two agree).
// ---------------------------------------------------------------------------

/// Alertmanager's `isReserved`: what ends an unquoted token.
fn is_reserved(c: char) -> bool {
    // Rust's `is_whitespace` and Go's `unicode.IsSpace` are both the Unicode
    // White_Space property.
    c.is_whitespace() || "{}!=~,\\\"'`".contains(c)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Eof,
    OpenBrace,
    CloseBrace,
    Comma,
    Equals,
    NotEquals,
    Matches,
    NotMatches,
    Quoted,
    Unquoted,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    value: &'a str,
    span: Span,
}

#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    start: usize,  // byte offset of the current token
    pos: usize,    // byte offset of the cursor
    width: usize,  // bytes in the last character read (0 at end of input)
    column: usize, // column of the current token
    cols: usize,   // characters read so far
}

struct Lexer<'a> {
    input: &'a str,
    c: Cursor,
    /// Once set, every later scan returns it (the Go lexer's `l.err`).
    err: Option<MatcherError>,
}

impl<'a> Lexer<'a> {
    fn new(input: &'a str) -> Lexer<'a> {
        Lexer {
            input,
            c: Cursor::default(),
            err: None,
        }
    }

    fn scan(&mut self) -> Result<Token<'a>, MatcherError> {
        if let Some(e) = &self.err {
            return Err(e.clone());
        }
        let res = self.scan_token();
        if let Err(e) = &res {
            self.err = Some(e.clone());
        }
        res
    }

    fn scan_token(&mut self) -> Result<Token<'a>, MatcherError> {
        while let Some(r) = self.next() {
            match r {
                '{' => return Ok(self.emit(Kind::OpenBrace)),
                '}' => return Ok(self.emit(Kind::CloseBrace)),
                ',' => return Ok(self.emit(Kind::Comma)),
                '=' | '!' => {
                    self.rewind();
                    return self.scan_operator();
                }
                '"' => {
                    self.rewind();
                    return self.scan_quoted();
                }
                r if !is_reserved(r) => {
                    self.rewind();
                    return Ok(self.scan_unquoted());
                }
                r if r.is_whitespace() => self.skip(),
                _ => {
                    return Err(MatcherError::InvalidInput {
                        span: self.span(),
                        text: self.text().to_string(),
                        context: None,
                    })
                }
            }
        }
        Ok(Token {
            kind: Kind::Eof,
            value: "",
            span: Span { start: 0, end: 0 },
        })
    }

    fn scan_operator(&mut self) -> Result<Token<'a>, MatcherError> {
        if self.accept('!') {
            if self.accept('=') {
                return Ok(self.emit(Kind::NotEquals));
            }
            if self.accept('~') {
                return Ok(self.emit(Kind::NotMatches));
            }
            let found = (self.c.pos < self.input.len()).then(|| self.text().to_string());
            return Err(MatcherError::IncompleteOperator {
                span: self.span(),
                found,
                context: None,
            });
        }
        self.accept('=');
        if self.accept('~') {
            return Ok(self.emit(Kind::Matches));
        }
        Ok(self.emit(Kind::Equals))
    }

    fn scan_quoted(&mut self) -> Result<Token<'a>, MatcherError> {
        self.accept('"');
        let mut escaped = false;
        while let Some(r) = self.next() {
            if escaped {
                escaped = false;
            } else if r == '\\' {
                escaped = true;
            } else if r == '"' {
                self.rewind();
                break;
            }
        }
        if !self.accept('"') {
            return Err(MatcherError::UnterminatedQuote {
                span: self.span(),
                text: self.text().to_string(),
                context: None,
            });
        }
        Ok(self.emit(Kind::Quoted))
    }

    fn scan_unquoted(&mut self) -> Token<'a> {
        while let Some(r) = self.next() {
            if is_reserved(r) {
                self.rewind();
                break;
            }
        }
        self.emit(Kind::Unquoted)
    }

    /// The next token without consuming it (a sticky error stays set).
    fn peek(&mut self) -> Result<Token<'a>, MatcherError> {
        let saved = self.c;
        let res = self.scan();
        self.c = saved;
        res
    }

    fn span(&self) -> Span {
        Span {
            start: self.c.column,
            end: self.c.cols,
        }
    }

    fn text(&self) -> &'a str {
        self.input.get(self.c.start..self.c.pos).unwrap_or("")
    }

    fn accept(&mut self, want: char) -> bool {
        if self.next() == Some(want) {
            return true;
        }
        self.rewind();
        false
    }

    fn emit(&mut self, kind: Kind) -> Token<'a> {
        let t = Token {
            kind,
            value: self.text(),
            span: self.span(),
        };
        self.skip();
        t
    }

    fn next(&mut self) -> Option<char> {
        let c = self.input.get(self.c.pos..).and_then(|s| s.chars().next());
        self.c.width = c.map_or(0, char::len_utf8);
        if c.is_some() {
            self.c.pos += self.c.width;
            self.c.cols += 1;
        }
        c
    }

    /// Steps back over the last character read; at most once per `next`.
    fn rewind(&mut self) {
        self.c.pos -= self.c.width;
        if self.c.width > 0 {
            self.c.cols -= 1;
        }
        self.c.width = 0;
    }

    fn skip(&mut self) {
        self.c.start = self.c.pos;
        self.c.column = self.c.cols;
    }
}

/// Go's `strconv.Unquote` for a double-quoted token: `\a \b \f \n \r \t \v
/// \\ \"`, `\xHH` and `\OOO` (bytes), `\uHHHH` and `\UHHHHHHHH`; no raw
/// newline. Alertmanager then requires the bytes to be valid UTF-8.
fn go_unquote(token: &str) -> Option<String> {
    let inner = token.strip_prefix('"')?.strip_suffix('"')?;
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.chars();
    let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 4) | chars.next()?.to_digit(16)?;
        }
        Some(v)
    };
    while let Some(c) = chars.next() {
        let byte = match c {
            '"' | '\n' => return None,
            '\\' => match chars.next()? {
                'a' => 0x07,
                'b' => 0x08,
                'f' => 0x0c,
                'n' => b'\n',
                'r' => b'\r',
                't' => b'\t',
                'v' => 0x0b,
                '\\' => b'\\',
                '"' => b'"',
                'x' => u8::try_from(hex(&mut chars, 2)?).ok()?,
                d @ '0'..='7' => {
                    let mut v = d.to_digit(8)?;
                    for _ in 0..2 {
                        v = (v << 3) | chars.next()?.to_digit(8)?;
                    }
                    u8::try_from(v).ok()?
                }
                u @ ('u' | 'U') => {
                    let r = char::from_u32(hex(&mut chars, if u == 'u' { 4 } else { 8 })?)?;
                    out.extend_from_slice(r.encode_utf8(&mut [0; 4]).as_bytes());
                    continue;
                }
                _ => return None,
            },
            c => {
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
        };
        out.push(byte);
    }
    String::from_utf8(out).ok()
}

// ---------------------------------------------------------------------------
// Parser: a port of matcher/parse/parse.go's state machine.
// ---------------------------------------------------------------------------

enum State {
    OpenBrace,
    CloseBrace,
    Matcher,
    EndOfMatcher,
    Comma,
    Eof,
    Done,
}

/// Why an accept/expect failed: the end of input is not an error by itself.
enum Fail {
    Eof,
    Err(MatcherError),
}

struct Parser<'a> {
    lx: Lexer<'a>,
    matchers: Vec<Matcher>,
    /// Whether the input started with `{` (and so must end with `}`).
    has_open_brace: bool,
}

impl<'a> Parser<'a> {
    fn open_brace(&mut self) -> Result<State, MatcherError> {
        match self.accept(Kind::OpenBrace) {
            Err(Fail::Eof) => return Ok(State::Eof),
            Err(Fail::Err(e)) => return Err(e),
            Ok(b) => self.has_open_brace = b,
        }
        match self.accept_peek(&[Kind::CloseBrace]) {
            Err(Fail::Eof) | Ok(true) => Ok(State::CloseBrace),
            Err(Fail::Err(e)) => Err(e),
            Ok(false) => Ok(State::Matcher),
        }
    }

    fn close_brace(&mut self) -> Result<State, MatcherError> {
        let closed = self.expect(&[Kind::CloseBrace]);
        let span = Span {
            start: 0,
            end: self.lx.c.cols,
        };
        match (self.has_open_brace, closed) {
            (true, Err(f)) => Err(self.fail(f, Expected::CloseBrace)),
            (false, Ok(_)) => Err(MatcherError::UnopenedBrace { span }),
            _ => Ok(State::Eof),
        }
    }

    fn matcher(&mut self) -> Result<State, MatcherError> {
        let name_tok = self
            .expect(&[Kind::Quoted, Kind::Unquoted])
            .map_err(|f| self.fail(f, Expected::LabelName))?;
        let name = unquote(&name_tok)?;
        let ops = [
            Kind::Equals,
            Kind::NotEquals,
            Kind::Matches,
            Kind::NotMatches,
        ];
        let t = self
            .expect(&ops)
            .map_err(|f| self.fail(f, Expected::Operator))?;
        let op = match t.kind {
            Kind::NotEquals => MatchOp::NotEqual,
            Kind::Matches => MatchOp::Regex,
            Kind::NotMatches => MatchOp::NotRegex,
            _ => MatchOp::Equal,
        };
        let t = self
            .expect(&[Kind::Unquoted, Kind::Quoted])
            .map_err(|f| self.fail(f, Expected::LabelValue))?;
        let value = unquote(&t)?;
        // Checked last, so that every input Alertmanager rejects gets
        // Alertmanager's error; this check is ours (see the module docs).
        if name.is_empty() {
            return Err(MatcherError::EmptyLabelName {
                span: Some(name_tok.span),
                text: name_tok.value.to_string(),
            });
        }
        self.matchers
            .push(Matcher::build(name, op, value, Some((t.span, t.value)))?);
        Ok(State::EndOfMatcher)
    }

    fn end_of_matcher(&mut self) -> Result<State, MatcherError> {
        match self.expect_peek(&[Kind::Comma, Kind::CloseBrace]) {
            Err(Fail::Eof) => Ok(State::CloseBrace),
            Err(f) => Err(self.fail(f, Expected::CommaOrCloseBrace)),
            Ok(t) if t.kind == Kind::Comma => Ok(State::Comma),
            Ok(_) => Ok(State::CloseBrace),
        }
    }

    fn comma(&mut self) -> Result<State, MatcherError> {
        self.expect(&[Kind::Comma])
            .map_err(|f| self.fail(f, Expected::Comma))?;
        match self.expect_peek(&[Kind::CloseBrace, Kind::Unquoted, Kind::Quoted]) {
            Err(Fail::Eof) => Ok(State::CloseBrace),
            Err(f) => Err(self.fail(f, Expected::MatcherOrCloseBrace)),
            Ok(t) if t.kind == Kind::CloseBrace => Ok(State::CloseBrace),
            Ok(_) => Ok(State::Matcher),
        }
    }

    fn eof(&mut self) -> Result<State, MatcherError> {
        match self.lx.scan() {
            Err(e) => Err(e.expecting(Expected::EndOfInput)),
            Ok(t) if t.kind == Kind::Eof => Ok(State::Done),
            Ok(t) => Err(MatcherError::TrailingInput {
                span: t.span,
                found: t.value.to_string(),
            }),
        }
    }

    /// The failure with what was expected; the end of input gets the span of
    /// everything read so far.
    fn fail(&self, f: Fail, expected: Expected) -> MatcherError {
        match f {
            Fail::Eof => MatcherError::UnexpectedEnd {
                span: Span {
                    start: 0,
                    end: self.lx.c.cols,
                },
                context: Some(expected),
            },
            Fail::Err(e) => e.expecting(expected),
        }
    }

    /// Consumes the next token if it is of `kind`.
    fn accept(&mut self, kind: Kind) -> Result<bool, Fail> {
        let ok = self.accept_peek(&[kind])?;
        if ok {
            self.lx.scan().map_err(Fail::Err)?;
        }
        Ok(ok)
    }

    fn accept_peek(&mut self, kinds: &[Kind]) -> Result<bool, Fail> {
        let t = self.lx.peek().map_err(Fail::Err)?;
        if t.kind == Kind::Eof {
            return Err(Fail::Eof);
        }
        Ok(kinds.contains(&t.kind))
    }

    /// Consumes and returns the next token, which must be one of `kinds`.
    fn expect(&mut self, kinds: &[Kind]) -> Result<Token<'a>, Fail> {
        let t = self.expect_peek(kinds)?;
        self.lx.scan().map_err(Fail::Err)?;
        Ok(t)
    }

    fn expect_peek(&mut self, kinds: &[Kind]) -> Result<Token<'a>, Fail> {
        let t = self.lx.peek().map_err(Fail::Err)?;
        if t.kind == Kind::Eof {
            return Err(Fail::Eof);
        }
        if !kinds.contains(&t.kind) {
            return Err(Fail::Err(MatcherError::UnexpectedToken {
                span: t.span,
                found: t.value.to_string(),
                context: None,
            }));
        }
        Ok(t)
    }
}

/// A name or value token's text: quoted tokens unescaped as Go does.
fn unquote(t: &Token<'_>) -> Result<String, MatcherError> {
    if t.kind != Kind::Quoted {
        return Ok(t.value.to_string());
    }
    go_unquote(t.value).ok_or_else(|| MatcherError::InvalidInput {
        span: t.span,
        text: t.value.to_string(),
        context: None,
    })
}

#[cfg(test)]
mod tests;
