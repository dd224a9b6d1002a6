//! Matcher errors, worded as Alertmanager's `matcher/parse` words them.

use std::fmt;

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
    /// `=~`/`!~` with a value Go's regex syntax refuses (`reason` is Go's
    /// message and the offending text of the anchored pattern), or that
    /// exceeds the regex crate's limits. `span`/`text` locate the value when
    /// parsed; from [`Matcher::new`] `text` is the matcher's canonical form.
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
    pub(super) fn expecting(mut self, e: Expected) -> MatcherError {
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
