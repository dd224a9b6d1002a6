//! Token classes and how two tokens compare and generalise.
//!
//! After masking, a message is split on whitespace into tokens. A token is
//! - the wildcard `<*>` itself;
//! - a *pattern*: it contains `<*>` (`uid=<*>`, `(<*>)`), standing for every
//!   token that fits it, `<*>` matching any run of characters, even none;
//! - *value-like*: it has an ASCII digit (`ssh2`, `1.2.3`, `blk_42`) or is a
//!   month or weekday name (`Jun`, `Sat`);
//! - a *word*: anything else (`failed`, `user=root`, `SCREEN_ON`).
//!
//! The miner's central rule: two messages whose tokens differ where a side
//! is a word (`startup`/`shutdown`, `SCREEN_ON`/`SCREEN_OFF`, `user=root`/
//! `user=guest`) are different events, however similar the rest is, until
//! enough distinct words were seen in that position to call it a variable
//! (see `miner.rs`). Where values or patterns differ, the messages may be one
//! event. Tokens are compared around their common *frame* — the prefix and
//! suffix they share up to punctuation, any runs of digits matching — so
//! `(uid=0)` and `LOGIN(uid=0)` differ by the word `LOGIN`, while `()` and
//! `(host7.example.org)` differ by a value.
//!
//! Everything here works on `&str` without allocating, except [`generalise`],
//! which runs only when a cluster's template changes.

use super::masks::WILDCARD;

/// How a message token relates to a template token in the same position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Relation {
    /// The template already covers the token: identical, a wildcard, a
    /// pattern that fits it, or the same token up to its numbers.
    Covered,
    /// Different values, but of a variable kind (numbers or patterns around a
    /// common frame, e.g. `(host7.example.com)` and `()`): the two can be one
    /// template, though they count against similarity.
    Compatible,
    /// Different words: a different event unless the position is known to be
    /// variable.
    Conflict,
}

/// True iff `s` has an ASCII digit.
#[inline]
pub fn has_digit(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
}

/// True iff `s` contains the wildcard.
#[inline]
pub fn has_wildcard(s: &str) -> bool {
    s.len() >= WILDCARD.len() && s.contains(WILDCARD)
}

/// True iff `s` is a value-like token: has a digit or a wildcard, or is a
/// month or weekday name (`Jun`, `Sat`), which in logs are dates.
#[inline]
pub fn is_variable_like(s: &str) -> bool {
    has_digit(s) || has_wildcard(s) || is_calendar_name(s)
}

/// `Jan`…`Dec`, `Mon`…`Sun`, optionally followed by `,` (as in `Sat,`).
fn is_calendar_name(s: &str) -> bool {
    const NAMES: [&str; 19] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Mon",
        "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
    ];
    let s = s.strip_suffix(',').unwrap_or(s);
    s.len() == 3 && NAMES.contains(&s)
}

/// True iff the glob `pattern` (`<*>` matching any run, even empty) matches
/// all of `text`. `text` is taken literally, even if it contains `<*>`.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split(WILDCARD);
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let mut parts = parts.peekable();
    if parts.peek().is_none() {
        return rest.is_empty(); // no wildcard at all: must be equal
    }
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            return rest.ends_with(part); // the last piece anchors at the end
        }
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// Length of the variable run (digits and `<*>`s) at the start of `s`.
#[inline]
fn var_run(s: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match s.get(i) {
            Some(b) if b.is_ascii_digit() => i += 1,
            Some(b'<') if s[i..].starts_with(WILDCARD.as_bytes()) => i += WILDCARD.len(),
            _ => return i,
        }
    }
}

/// True iff `a` and `b` are equal once every run of digits and wildcards is
/// taken as equal to any other: `blk_12` ~ `blk_345`, `1.2.3` ~ `10.0.<*>`.
pub fn same_shape(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    loop {
        let (ra, rb) = (var_run(&a[i..]), var_run(&b[j..]));
        if (ra == 0) != (rb == 0) {
            return false;
        }
        i += ra;
        j += rb;
        match (a.get(i), b.get(j)) {
            (None, None) => return true,
            (Some(x), Some(y)) if x == y && ra == 0 => {
                i += 1;
                j += 1;
            }
            (Some(_), Some(_)) if ra > 0 => {} // runs consumed; compare what follows
            _ => return false,
        }
    }
}

/// Length of the variable run (digits and `<*>`s) ending at the end of `s`.
#[inline]
fn var_run_back(s: &[u8]) -> usize {
    let mut n = s.len();
    loop {
        match n.checked_sub(1).map(|i| s[i]) {
            Some(b) if b.is_ascii_digit() => n -= 1,
            Some(b'>') if s[..n].ends_with(WILDCARD.as_bytes()) => n -= WILDCARD.len(),
            _ => return s.len() - n,
        }
    }
}

/// The common frame of `a` and `b` at the front: byte lengths `(in a, in b)`
/// of the longest common prefix ending just after a non-alphanumeric
/// character, where any variable run matches any other. So `user=root` and
/// `user=guest` share `user=`, `(uid=0)x` and `(uid=12)y` share `(uid=0)` /
/// `(uid=12)`, and `SCREEN_ON`/`SCREEN_OFF` share nothing.
fn frame_prefix(a: &str, b: &str) -> (usize, usize) {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j, mut cut) = (0, 0, (0, 0));
    loop {
        let (ra, rb) = (var_run(&ab[i..]), var_run(&bb[j..]));
        if ra > 0 && rb > 0 {
            i += ra;
            j += rb;
            continue;
        }
        if ra > 0 || rb > 0 {
            return cut;
        }
        match (a[i..].chars().next(), b[j..].chars().next()) {
            (Some(x), Some(y)) if x == y => {
                i += x.len_utf8();
                j += x.len_utf8();
                if !x.is_alphanumeric() {
                    cut = (i, j);
                }
            }
            _ => return cut,
        }
    }
}

/// Like [`frame_prefix`], from the back: byte lengths `(in a, in b)`.
fn frame_suffix(a: &str, b: &str) -> (usize, usize) {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j, mut cut) = (a.len(), b.len(), (0, 0));
    loop {
        let (ra, rb) = (var_run_back(&ab[..i]), var_run_back(&bb[..j]));
        if ra > 0 && rb > 0 {
            i -= ra;
            j -= rb;
            continue;
        }
        if ra > 0 || rb > 0 {
            return cut;
        }
        match (a[..i].chars().next_back(), b[..j].chars().next_back()) {
            (Some(x), Some(y)) if x == y => {
                i -= x.len_utf8();
                j -= x.len_utf8();
                if !x.is_alphanumeric() {
                    cut = (a.len() - i, b.len() - j);
                }
            }
            _ => return cut,
        }
    }
}

/// `a` and `b` split around their common frame: `(prefix, core, suffix)` of
/// each. The prefixes (and the suffixes) have the same shape.
#[allow(clippy::type_complexity)] // reason: two triples of slices, named at the call sites
fn split_frame<'a, 'b>(
    a: &'a str,
    b: &'b str,
) -> ((&'a str, &'a str, &'a str), (&'b str, &'b str, &'b str)) {
    let (pa, pb) = frame_prefix(a, b);
    let (sa, sb) = frame_suffix(&a[pa..], &b[pb..]);
    (
        (&a[..pa], &a[pa..a.len() - sa], &a[a.len() - sa..]),
        (&b[..pb], &b[pb..b.len() - sb], &b[b.len() - sb..]),
    )
}

/// A core that is a word: not empty and not value-like.
fn is_word_core(core: &str) -> bool {
    !core.is_empty() && !is_variable_like(core)
}

/// True iff template token `general` matches every token `specific` matches:
/// equal, the wildcard, or a pattern fitting `specific`'s text.
pub fn subsumes(general: &str, specific: &str) -> bool {
    general == specific
        || general == WILDCARD
        || (has_wildcard(general) && glob_matches(general, specific))
}

/// How the message token `tok` relates to the template token `tpl`.
pub fn relate(tpl: &str, tok: &str) -> Relation {
    if tpl == tok || tpl == WILDCARD || tok == WILDCARD {
        return Relation::Covered;
    }
    let (tpl_var, tok_var) = (is_variable_like(tpl), is_variable_like(tok));
    if !tpl_var && !tok_var {
        return Relation::Conflict;
    }
    if (has_wildcard(tpl) && glob_matches(tpl, tok))
        || (has_wildcard(tok) && glob_matches(tok, tpl))
        || (tpl_var && tok_var && same_shape(tpl, tok))
    {
        return Relation::Covered;
    }
    let ((_, a, _), (_, b, _)) = split_frame(tpl, tok);
    if is_word_core(a) || is_word_core(b) {
        Relation::Conflict
    } else {
        Relation::Compatible
    }
}

/// The most specific token covering both `tpl` and `tok`:
/// equal tokens stay; a pattern that fits the other wins; tokens of the same
/// shape keep their equal numbers and get `<*>` where they differ; tokens
/// around a common frame become `frame<*>frame`; anything else is `<*>`.
/// Returns `None` when the result is `tpl` unchanged.
pub fn generalise(tpl: &str, tok: &str) -> Option<String> {
    if tpl == tok || tpl == WILDCARD {
        return None;
    }
    if tok == WILDCARD {
        return Some(WILDCARD.to_owned());
    }
    if has_wildcard(tpl) && glob_matches(tpl, tok) {
        return None;
    }
    if has_wildcard(tok) && glob_matches(tok, tpl) {
        return Some(tok.to_owned());
    }
    let (tpl_var, tok_var) = (is_variable_like(tpl), is_variable_like(tok));
    if tpl_var && tok_var && same_shape(tpl, tok) {
        return Some(merge_runs(tpl, tok));
    }
    if tpl_var || tok_var {
        let ((pa, a, sa), (pb, b, sb)) = split_frame(tpl, tok);
        let framed = !pa.is_empty() || !sa.is_empty();
        if framed && !is_word_core(a) && !is_word_core(b) {
            let mut out = merge_runs(pa, pb);
            out.push_str(WILDCARD);
            out.push_str(&merge_runs(sa, sb));
            return Some(out);
        }
    }
    Some(WILDCARD.to_owned())
}

/// Merges two tokens of the same shape: variable runs that are equal stay,
/// differing ones become `<*>`.
fn merge_runs(a: &str, b: &str) -> String {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let mut out = String::with_capacity(a.len());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() || j < bb.len() {
        let (ra, rb) = (var_run(&ab[i..]), var_run(&bb[j..]));
        if ra > 0 {
            let (x, y) = (&a[i..i + ra], &b[j..j + rb]);
            out.push_str(if x == y { x } else { WILDCARD });
            i += ra;
            j += rb;
        } else {
            // Same shape: the next characters are equal; copy one char.
            let c = a[i..].chars().next().expect("same shape, not at end");
            out.push(c);
            i += c.len_utf8();
            j += c.len_utf8();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Relation::*;

    #[test]
    fn relations() {
        let cases = [
            ("failed", "failed", Covered),
            ("<*>", "anything", Covered),
            ("anything", "<*>", Covered),
            ("startup", "shutdown", Conflict),
            ("user=root", "user=guest", Conflict),
            (
                "android.intent.action.SCREEN_ON",
                "android.intent.action.SCREEN_OFF",
                Conflict,
            ),
            ("failure;", "failures;", Conflict),
            ("LOGIN(uid=<*>)", "(uid=<*>)", Conflict),
            ("tty=:0", "tty=NODEVssh", Conflict),
            ("ssh2", "sshd", Conflict),
            ("uid=<*>", "uid=0", Covered),
            ("(<*>)", "()", Covered),
            ("rhost=zummit.com", "rhost=<*>", Covered),
            ("blk_12", "blk_-345", Compatible),
            ("blk_12", "blk_345", Covered),
            (
                "1514038440000##7007##12",
                "1514038440000##7008##13",
                Covered,
            ),
            ("()", "(host8.example.net)", Compatible),
            ("11:", "3:", Covered),
            ("7d9f8b6c5", "5b7c9d8e1", Compatible),
            ("LOGIN(uid=0)", "(uid=<*>)", Conflict),
            ("(uid=0)", "(uid=12)", Covered),
            ("Jun", "Jul", Compatible),
        ];
        for (tpl, tok, want) in cases {
            assert_eq!(relate(tpl, tok), want, "relate({tpl:?}, {tok:?})");
        }
    }

    #[test]
    fn generalisations() {
        let cases = [
            ("a", "a", None),
            ("<*>", "x", None),
            ("x", "<*>", Some("<*>")),
            ("uid=<*>", "uid=0", None),
            ("rhost=zummit.com", "rhost=<*>", Some("rhost=<*>")),
            ("1514##7007##12", "1514##7008##12", Some("1514##<*>##12")),
            ("()", "(host8.example.net)", Some("(<*>)")),
            ("startup", "shutdown", Some("<*>")),
            ("blk_12", "blk_-345", Some("blk_<*>")),
            ("a=1,b=x7", "a=2,b=", Some("a=<*>,b=<*>")),
        ];
        for (tpl, tok, want) in cases {
            assert_eq!(
                generalise(tpl, tok).as_deref(),
                want,
                "generalise({tpl:?}, {tok:?})"
            );
        }
    }

    #[test]
    fn generalised_token_covers_both() {
        let pairs = [
            ("blk_12", "blk_-345"),
            ("()", "(h1.x)"),
            ("1.2.3", "1.2.4"),
            ("a=1", "a=<*>"),
        ];
        for (a, b) in pairs {
            let g = generalise(a, b).unwrap_or_else(|| a.to_owned());
            assert_eq!(relate(&g, a), Covered, "{g:?} covers {a:?}");
            assert_eq!(relate(&g, b), Covered, "{g:?} covers {b:?}");
        }
    }

    #[test]
    fn subsumption_is_directional() {
        assert!(subsumes("<*>", "a"));
        assert!(!subsumes("a", "<*>"));
        assert!(subsumes("uid=<*>", "uid=<*>"));
        assert!(subsumes("(<*>)", "(<*>.example.org)"));
        assert!(!subsumes("x12", "x13"));
    }

    #[test]
    fn globs() {
        assert!(glob_matches("(<*>)", "()"));
        assert!(glob_matches("(<*>)", "(<*>.example.net)"));
        assert!(glob_matches("a<*>b<*>c", "a1b2c"));
        assert!(!glob_matches("a<*>b<*>c", "a1c"));
        assert!(!glob_matches("ab", "abc"));
        assert!(glob_matches("<*>", ""));
        assert!(!glob_matches("a<*>a", "a"));
    }

    #[test]
    fn shapes() {
        assert!(same_shape("blk_12", "blk_345"));
        assert!(same_shape("1.2.3", "10.0.<*>"));
        assert!(!same_shape("1.2.3", "1.2"));
        assert!(!same_shape("a1", "b1"));
        assert!(same_shape("x", "x"));
    }
}
