//! Label regexes: Go's RE2 syntax, translated into the syntax of Rust's
//! `regex` crate so that a pattern accepts and matches what it does in
//! Alertmanager (`regexp.Compile`, Perl flags).
//!
//! The two syntaxes mostly agree, but not everywhere, and a few of the
//! differences are silent: `[a&&b]` is the set `{a, &, b}` in Go and an
//! (empty) intersection in Rust; `\<` is a literal `<` in Go and a word
//! boundary in Rust; `\d` is ASCII in Go and Unicode in Rust. So the pattern
//! is parsed as Go's `regexp/syntax` parses it (a port of its `parse.go`
//! rules) and written back with every literal escaped and every class spelt
//! out, leaving the regex crate nothing to read its own way:
//!
//! - literals are written `\x{…}` unless alphanumeric: `{` where Go cannot
//!   read a repetition (`{{.*}}`, `a{,3}`, `a{01}`) stays a literal; octal
//!   (`\101`), `\x41`, `\x{41}`, `\a \f \t \n \r \v` and escaped punctuation
//!   (`\<`, `\_`) become the character they stand for; `\Q…\E` quotes;
//! - classes are parsed with Go's rules (`[`, `&&`, `--`, `~~` inside are
//!   literals; `[:alpha:]` names an ASCII class); Perl classes are ASCII
//!   (`\d` = `[0-9]`, `\s` = `[\t\n\f\r ]`, `\w` = `[0-9A-Za-z_]`) and so is
//!   `\b`; `\pC` is Go's `Cc|Cf|Co|Cs` (Rust's includes unassigned code points);
//! - flags are Go's four (`i m s U`), group names only checked, since a
//!   matcher only asks whether the value matches;
//! - what Go refuses is refused, with Go's message: repetition counts over
//!   1000 or `min > max`, a repetition of a repetition (`a**`), unknown
//!   escapes (`\e`, `\Z`, `\C`), `(?x)`, lookarounds, backreferences.
//!
//! A repeated item is wrapped in `(?:…)`, so a repetition always applies to
//! what Go applies it to.

use std::fmt;

mod class;

use class::{class, perl_class, unicode_class};

/// Go's `regexp/syntax` limit on a counted repetition (`{n,m}`).
const MAX_REPEAT: u32 = 1000;

/// Deepest nesting of groups accepted, as Go's parser limits the depth of an
/// expression to 1000. (The regex crate's own nesting limit is lower.)
const MAX_DEPTH: usize = 1000;

/// Go's `syntax.Error`: what is wrong and the offending text, printed as Go
/// prints it after `error parsing regexp: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GoRegexError {
    code: &'static str,
    expr: String,
}

impl fmt::Display for GoRegexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: `{}`", self.code, self.expr)
    }
}

fn err(code: &'static str, expr: &str) -> GoRegexError {
    GoRegexError {
        code,
        expr: expr.to_string(),
    }
}

const INVALID_CHAR_RANGE: &str = "invalid character class range";
const INVALID_ESCAPE: &str = "invalid escape sequence";
const INVALID_NAMED_CAPTURE: &str = "invalid named capture";
const INVALID_PERL_OP: &str = "invalid or unsupported Perl syntax";
const INVALID_REPEAT_OP: &str = "invalid nested repetition operator";
const INVALID_REPEAT_SIZE: &str = "invalid repeat count";
const MISSING_BRACKET: &str = "missing closing ]";
const MISSING_PAREN: &str = "missing closing )";
const MISSING_REPEAT_ARGUMENT: &str = "missing argument to repetition operator";
const TRAILING_BACKSLASH: &str = "trailing backslash at end of expression";
const UNEXPECTED_PAREN: &str = "unexpected )";
const NESTING_DEPTH: &str = "expression nests too deeply";

/// A class no character is in (a surrogate, which no `&str` holds).
const NOTHING: &str = r"[^\x{0}-\x{10FFFF}]";

/// Translates a Go regular expression into one the regex crate reads with
/// the same meaning, or returns Go's error for it.
pub(super) fn translate(src: &str) -> Result<String, GoRegexError> {
    let mut tr = Translator {
        whole: src,
        out: String::with_capacity(src.len() * 2),
        pending: String::new(),
        atom: None,
        groups: Vec::new(),
    };
    tr.run()?;
    Ok(tr.out)
}

struct Translator<'a> {
    whole: &'a str,
    out: String,
    /// A flags-only group (`(?i)`) not yet written: it is written before the
    /// next item, so that wrapping the item before it for a repetition
    /// (`a(?i)*`) never closes the flags' scope early.
    pending: String,
    /// Where in `out` the item a repetition would apply to starts; `None`
    /// at the start of a group or alternative (Go's pseudo-operators).
    atom: Option<usize>,
    /// Where in `out` each open group starts.
    groups: Vec<usize>,
}

impl<'a> Translator<'a> {
    fn run(&mut self) -> Result<(), GoRegexError> {
        let mut t = self.whole;
        // Go's `lastRepeat`: the text from the previous repetition operator
        // on, when the previous token was one.
        let mut last_repeat: Option<&'a str> = None;
        while let Some(c) = t.chars().next() {
            let mut repeat = None;
            match c {
                '(' if t.starts_with("(?") => t = self.perl_group(t)?,
                '(' => {
                    self.open_group("(")?;
                    t = &t[1..];
                }
                '|' => {
                    self.flush();
                    self.out.push('|');
                    self.atom = None;
                    t = &t[1..];
                }
                ')' => {
                    let Some(start) = self.groups.pop() else {
                        return Err(err(UNEXPECTED_PAREN, self.whole));
                    };
                    self.flush();
                    self.out.push(')');
                    self.atom = Some(start);
                    t = &t[1..];
                }
                '^' | '$' | '.' => {
                    self.item(&t[..1]);
                    t = &t[1..];
                }
                '[' => {
                    let (class, rest) = class(t)?;
                    self.item(&class);
                    t = rest;
                }
                '*' | '+' | '?' => {
                    let before = t;
                    t = self.repeat(&before[..1], before, &before[1..], last_repeat)?;
                    repeat = Some(before);
                }
                '{' => match parse_repeat(t) {
                    None => {
                        self.literal('{' as u32);
                        t = &t[1..];
                    }
                    Some((min, max, after)) => {
                        let text = &t[..t.len() - after.len()];
                        let op = match (min, max) {
                            (Some(lo), Max::Same) if lo <= MAX_REPEAT => format!("{{{lo}}}"),
                            (Some(lo), Max::Unbounded) if lo <= MAX_REPEAT => format!("{{{lo},}}"),
                            (Some(lo), Max::Upto(Some(hi))) if lo <= hi && hi <= MAX_REPEAT => {
                                format!("{{{lo},{hi}}}")
                            }
                            _ => return Err(err(INVALID_REPEAT_SIZE, text)),
                        };
                        let before = t;
                        t = self.repeat(&op, before, after, last_repeat)?;
                        repeat = Some(before);
                    }
                },
                '\\' => t = self.escape(t)?,
                c => {
                    self.literal(c as u32);
                    t = &t[c.len_utf8()..];
                }
            }
            last_repeat = repeat;
        }
        if !self.groups.is_empty() {
            return Err(err(MISSING_PAREN, self.whole));
        }
        self.flush();
        Ok(())
    }

    /// Writes a pending flags group.
    fn flush(&mut self) {
        self.out.push_str(&self.pending);
        self.pending.clear();
    }

    /// Writes an item a repetition can apply to.
    fn item(&mut self, text: &str) {
        self.flush();
        self.atom = Some(self.out.len());
        self.out.push_str(text);
    }

    fn literal(&mut self, c: u32) {
        match char::from_u32(c) {
            Some(c) => self.item(&escape(c)),
            None => self.item(NOTHING),
        }
    }

    fn open_group(&mut self, open: &str) -> Result<(), GoRegexError> {
        if self.groups.len() >= MAX_DEPTH {
            return Err(err(NESTING_DEPTH, self.whole));
        }
        self.flush();
        self.groups.push(self.out.len());
        self.out.push_str(open);
        self.atom = None;
        Ok(())
    }

    /// Go's `parser.repeat`: `op` is the operator as the regex crate should
    /// read it, `before` the input from the operator on, `after` the input
    /// after it. Returns the input after a `?` that makes it lazy.
    fn repeat(
        &mut self,
        op: &str,
        before: &'a str,
        mut after: &'a str,
        last_repeat: Option<&'a str>,
    ) -> Result<&'a str, GoRegexError> {
        let lazy = after.starts_with('?');
        if lazy {
            after = &after[1..];
        }
        if let Some(last) = last_repeat {
            // Go, as Perl: `a**` is an error, not a doubled star.
            return Err(err(INVALID_REPEAT_OP, &last[..last.len() - after.len()]));
        }
        let Some(start) = self.atom else {
            return Err(err(
                MISSING_REPEAT_ARGUMENT,
                &before[..before.len() - after.len()],
            ));
        };
        self.out.insert_str(start, "(?:");
        self.out.push(')');
        self.out.push_str(op);
        if lazy {
            self.out.push('?');
        }
        Ok(after)
    }

    /// `(?flags)`, `(?flags:…)`, `(?P<name>…)`, `(?<name>…)`: Go's
    /// `parsePerlFlags`. `t` starts with `(?`.
    fn perl_group(&mut self, t: &'a str) -> Result<&'a str, GoRegexError> {
        let b = t.as_bytes();
        if (t.len() > 4 && b[2] == b'P' && b[3] == b'<') || (t.len() > 3 && b[2] == b'<') {
            let begin = if b[2] == b'<' { 3 } else { 4 };
            let Some(end) = t.find('>') else {
                return Err(err(INVALID_NAMED_CAPTURE, t));
            };
            let name = &t[begin..end];
            if name.is_empty() || !name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()) {
                return Err(err(INVALID_NAMED_CAPTURE, &t[..=end]));
            }
            // The name is not needed to tell whether a value matches; an
            // unnamed group also takes names the regex crate would refuse
            // (`(?P<1>…)`) or repeats (which Go allows).
            self.open_group("(")?;
            return Ok(&t[end + 1..]);
        }
        let mut rest = &t[2..];
        let (mut on, mut off) = (String::new(), String::new());
        let (mut negated, mut saw_flag) = (false, false);
        while let Some(c) = rest.chars().next() {
            rest = &rest[c.len_utf8()..];
            match c {
                'i' | 'm' | 's' | 'U' => {
                    // Later wins, as in Go; the regex crate refuses a flag
                    // given twice, so each is written once.
                    on.retain(|f| f != c);
                    off.retain(|f| f != c);
                    if negated { &mut off } else { &mut on }.push(c);
                    saw_flag = true;
                }
                '-' if !negated => {
                    negated = true;
                    saw_flag = false;
                }
                ':' | ')' if !negated || saw_flag => {
                    let mut flags = on;
                    if !off.is_empty() {
                        flags.push('-');
                        flags.push_str(&off);
                    }
                    if c == ':' {
                        self.open_group(&format!("(?{flags}:"))?;
                    } else if !flags.is_empty() {
                        self.pending.push_str(&format!("(?{flags})"));
                    }
                    return Ok(rest);
                }
                _ => break,
            }
        }
        Err(err(INVALID_PERL_OP, &t[..t.len() - rest.len()]))
    }

    /// A backslash outside a class. `t` starts with `\`.
    fn escape(&mut self, t: &'a str) -> Result<&'a str, GoRegexError> {
        let next = t[1..].chars().next();
        let simple = match next {
            Some('A') => Some(r"\A"),
            Some('z') => Some(r"\z"),
            // Go's word boundary is ASCII.
            Some('b') => Some(r"(?-u:\b)"),
            Some('B') => Some(r"(?-u:\B)"),
            _ => None,
        };
        if let Some(s) = simple {
            self.item(s);
            return Ok(&t[2..]);
        }
        match next {
            // Go: "any byte", not supported.
            Some('C') => Err(err(INVALID_ESCAPE, &t[..2])),
            Some('Q') => {
                let body = &t[2..];
                let (lit, rest) = match body.find(r"\E") {
                    Some(i) => (&body[..i], &body[i + 2..]),
                    None => (body, ""),
                };
                for c in lit.chars() {
                    self.literal(c as u32);
                }
                Ok(rest)
            }
            Some('p' | 'P') => {
                let (items, rest) = unicode_class(t)?;
                if items.is_empty() {
                    self.item(NOTHING);
                } else {
                    self.item(&format!("[{items}]"));
                }
                Ok(rest)
            }
            Some(c @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) => {
                self.item(perl_class(c));
                Ok(&t[2..])
            }
            _ => {
                let (c, rest) = parse_escape(t)?;
                self.literal(c);
                Ok(rest)
            }
        }
    }
}

/// A character as the regex crate reads it literally, anywhere.
fn escape(c: char) -> String {
    if c.is_ascii_alphanumeric() || (!c.is_ascii() && !c.is_whitespace() && !c.is_control()) {
        c.to_string()
    } else {
        format!("\\x{{{:X}}}", c as u32)
    }
}

/// The upper bound of a counted repetition.
enum Max {
    /// `{n}`.
    Same,
    /// `{n,}`.
    Unbounded,
    /// `{n,m}`; `None` when too big to read.
    Upto(Option<u32>),
}

/// Go's `parseRepeat`: `{n}`, `{n,}` or `{n,m}` at the start of `s`, or
/// `None` when `{` starts no repetition and is a literal (`{{`, `{,3}`,
/// `{01}`). A count too big to read is `None`.
fn parse_repeat(s: &str) -> Option<(Option<u32>, Max, &str)> {
    let s = s.strip_prefix('{')?;
    let (min, s) = parse_int(s)?;
    let (max, s) = match s.strip_prefix(',') {
        None => (Max::Same, s),
        Some(s) if s.starts_with('}') => (Max::Unbounded, s),
        Some(s) => {
            let (max, s) = parse_int(s)?;
            (Max::Upto(max), s)
        }
    };
    Some((min, max, s.strip_prefix('}')?))
}

/// Go's `parseInt`: decimal digits without a leading zero (`0` alone is
/// fine); the value is `None` when too big.
fn parse_int(s: &str) -> Option<(Option<u32>, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || (digits >= 2 && s.starts_with('0')) {
        return None;
    }
    let value = s[..digits].parse::<u32>().ok().filter(|&n| n < 100_000_000);
    Some((value, &s[digits..]))
}

/// Go's `parseEscape`: one escaped character at the start of `s` (which
/// starts with `\`), as a code point (possibly a surrogate), and the rest.
fn parse_escape(s: &str) -> Result<(u32, &str), GoRegexError> {
    let t = &s[1..];
    let mut chars = t.chars();
    let Some(c) = chars.next() else {
        return Err(err(TRAILING_BACKSLASH, ""));
    };
    let consumed = |rest: &str| &s[..s.len() - rest.len()];
    let rest = chars.as_str();
    let octal = |r: &str| r.starts_with(|d: char| ('0'..='7').contains(&d));
    match c {
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((c as u32, rest)),
        '1'..='7' if !octal(rest) => Err(err(INVALID_ESCAPE, consumed(rest))),
        '0'..='7' => {
            let mut r = c as u32 - '0' as u32;
            let mut rest = rest;
            for _ in 0..2 {
                if !octal(rest) {
                    break;
                }
                r = r * 8 + (rest.as_bytes()[0] - b'0') as u32;
                rest = &rest[1..];
            }
            Ok((r, rest))
        }
        'x' => hex_escape(s, rest),
        'a' => Ok((7, rest)),
        'f' => Ok((0xC, rest)),
        'n' => Ok((0xA, rest)),
        'r' => Ok((0xD, rest)),
        't' => Ok((9, rest)),
        'v' => Ok((0xB, rest)),
        _ => Err(err(INVALID_ESCAPE, consumed(rest))),
    }
}

/// `\xHH` or `\x{H…}`; `rest` follows the `x`.
fn hex_escape<'a>(s: &'a str, rest: &'a str) -> Result<(u32, &'a str), GoRegexError> {
    let fail = |rest: &str| Err(err(INVALID_ESCAPE, &s[..s.len() - rest.len()]));
    let mut chars = rest.chars();
    let Some(c) = chars.next() else {
        return fail(rest);
    };
    if c == '{' {
        let mut r: u32 = 0;
        let mut n = 0;
        loop {
            let Some(c) = chars.next() else {
                return fail(chars.as_str());
            };
            if c == '}' {
                break;
            }
            let Some(v) = c.to_digit(16) else {
                return fail(chars.as_str());
            };
            r = r * 16 + v;
            if r > 0x10FFFF {
                return fail(chars.as_str());
            }
            n += 1;
        }
        if n == 0 {
            return fail(chars.as_str());
        }
        return Ok((r, chars.as_str()));
    }
    let y = chars.next();
    match (c.to_digit(16), y.and_then(|y| y.to_digit(16))) {
        (Some(x), Some(y)) => Ok((x * 16 + y, chars.as_str())),
        _ => fail(chars.as_str()),
    }
}

/// A label regex's error in one line ("unclosed group"), without the
/// multi-line excerpt of the translated pattern. Only for what the
/// translation lets through and the regex crate still refuses (its size
/// limit).
pub(super) fn regex_reason(e: &::regex::Error) -> String {
    let s = e.to_string();
    let line = s
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}
