//! The UTF-8 parser's lexer: a port of `matcher/parse/lexer.go`. Offsets
//! are bytes, columns are characters (Go counts runes; valid UTF-8 makes the
//! two agree).

use super::error::{MatcherError, Span};

/// Alertmanager's `isReserved`: what ends an unquoted token.
pub(super) fn is_reserved(c: char) -> bool {
    // Rust's `is_whitespace` and Go's `unicode.IsSpace` are both the Unicode
    // White_Space property.
    c.is_whitespace() || "{}!=~,\\\"'`".contains(c)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
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
pub(super) struct Token<'a> {
    pub(super) kind: Kind,
    pub(super) value: &'a str,
    pub(super) span: Span,
}

#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    start: usize,  // byte offset of the current token
    pos: usize,    // byte offset of the cursor
    width: usize,  // bytes in the last character read (0 at end of input)
    column: usize, // column of the current token
    cols: usize,   // characters read so far
}

pub(super) struct Lexer<'a> {
    input: &'a str,
    c: Cursor,
    /// Once set, every later scan returns it (the Go lexer's `l.err`).
    err: Option<MatcherError>,
}

impl<'a> Lexer<'a> {
    /// Characters read so far.
    pub(super) fn cols(&self) -> usize {
        self.c.cols
    }

    pub(super) fn new(input: &'a str) -> Lexer<'a> {
        Lexer {
            input,
            c: Cursor::default(),
            err: None,
        }
    }

    pub(super) fn scan(&mut self) -> Result<Token<'a>, MatcherError> {
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
    pub(super) fn peek(&mut self) -> Result<Token<'a>, MatcherError> {
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
pub(super) fn go_unquote(token: &str) -> Option<String> {
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
