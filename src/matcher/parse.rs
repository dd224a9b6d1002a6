//! The UTF-8 matcher parser: a port of `matcher/parse/parse.go`'s state
//! machine.

use super::error::{Expected, MatcherError, Span};
use super::lexer::{go_unquote, Kind, Lexer, Token};
use super::{MatchOp, Matcher};

/// Alertmanager's `parse.Matchers`: zero or more matchers, optionally in
/// braces, separated by commas.
pub(super) fn utf8(s: &str) -> Result<Vec<Matcher>, MatcherError> {
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
            end: self.lx.cols(),
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
                    end: self.lx.cols(),
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
