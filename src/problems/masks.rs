//! Masks: the regexes that replace variable text (numbers, ids, addresses…)
//! with the wildcard `<*>` before a message is split into tokens.
//!
//! All masks of a miner are compiled once into a single alternation and
//! applied in one left-to-right pass: the leftmost match wins, and at one
//! position the first mask in list order that matches. (The reference Drain
//! applies its masks one after another; for masks that do not overlap the
//! result is the same.) A line no mask matches is used as is, without a
//! copy; otherwise the masked text is written into a buffer the caller
//! reuses, so masking allocates nothing once the buffer has grown.

use std::sync::Arc;

use regex::{Regex, RegexBuilder};

/// Lazy-DFA cache per regex (and per thread using it).
const DFA_CACHE_BYTES: usize = 8 << 20;

/// The wildcard a mask, or a merged template position, stands for.
pub const WILDCARD: &str = "<*>";

/// The miner's built-in masks, `(name, regex)`, in the order they are tried.
///
/// They target what varies in log and alert text while leaving words alone:
/// a mask never fires inside a word (`ssh2`, `e820`, `flush2DB` stay), so two
/// messages that differ only in a constant word are not merged by masking.
/// Word boundaries and classes are ASCII (`(?-u:\b)`, `[0-9]`): their Unicode
/// forms multiply the states of the regex engine's lazy DFA and made masking
/// several times slower. Where two masks match at the same position, the
/// earlier wins, hence hosts before IPs, numbers before versions and hex.
pub const DEFAULT_MASKS: &[(&str, &str)] = &[
    // URLs before paths and hosts: the whole URL is one value.
    (
        "url",
        r"(?-u:\b)[a-zA-Z][a-zA-Z0-9+.-]{1,15}://[A-Za-z0-9._~:/?#\[\]@!$&()*+,;=%-]+",
    ),
    // 123e4567-e89b-12d3-a456-426614174000
    (
        "uuid",
        r"(?-u:\b)[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?-u:\b)",
    ),
    // alice@example.com, com.example.Foo@8a2a501 (object ids print like this too)
    (
        "email",
        r"[A-Za-z0-9_.+-]+@[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*",
    ),
    // 2026-01-05T10:00:00.123Z, 2026-01-05 10:00:00,123, 2026/01/05
    (
        "datetime",
        r"(?-u:\b)[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}(?:[T ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?(?:[.,][0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?(?-u:\b)",
    ),
    // Host names with a numbered label: ip-10-0-0-1.ec2.internal,
    // n219076184117.example.com, 62.99.164.82.example.net (before the IPv4
    // mask, so a host named after its address stays one value)
    (
        "numbered_host",
        r"(?-u:\b)(?:[A-Za-z0-9-]+\.)*[A-Za-z-]*[0-9][A-Za-z-]*[0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*\.[A-Za-z][A-Za-z0-9-]*(?-u:\b)",
    ),
    // 10.0.0.1, 10.0.0.1:8080, /10.0.0.1:8080 (Java prints socket addresses so)
    (
        "ipv4",
        r"(?:/|(?-u:\b))(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?::[0-9]{1,5})?(?-u:\b)",
    ),
    // fe80::1ff:fe23:4567:890a, 2001:db8::8a2e:370:7334 (also MAC addresses)
    (
        "ipv6",
        r"(?-u:\b)(?:(?:[0-9a-fA-F]{1,4}:){1,6}(?::[0-9a-fA-F]{1,4}){1,6}|(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{1,4})(?-u:\b)|::(?:[0-9a-fA-F]{1,4}:){0,6}[0-9a-fA-F]{1,4}(?-u:\b)",
    ),
    // 10:00:00, 10:00:00.123
    (
        "time",
        r"(?-u:\b)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]+)?(?-u:\b)",
    ),
    // Sat Jun 18, Jun 18, Sat, Jun  3 (syslog and ctime dates; the time and
    // year are masked on their own)
    (
        "month_day",
        r"(?-u:\b)(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),?[ \t]+)?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[ \t]+[0-9]{1,2}(?-u:\b)",
    ),
    // Kubernetes pods, with their namespace if given: default/api-7d9f8b6c5-x2x9z
    // (StatefulSet pods like web-0 are left to the id mask)
    (
        "k8s_pod",
        r"(?-u:\b)(?:[a-z0-9][a-z0-9-]*/)?[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?-[a-z0-9]*[0-9][a-z0-9]*-[a-z0-9]{5}(?-u:\b)",
    ),
    // /var/log/syslog, ~/x, C:\Temp\x — at least two segments
    (
        "path",
        r"(?:[a-zA-Z]:\\|~?/)[A-Za-z0-9_.@%+~-]+(?:[/\\][A-Za-z0-9_.@%+~-]*)+",
    ),
    // Numbers with an optional unit: 42, 3.14, 1.23s, 500ms, 12GB, 95%, 1e-3, 10-20
    (
        "number",
        r"(?-u:\b)[0-9]+(?:[.,-][0-9]+)*(?:[eE][-+]?[0-9]+)?(?:[a-zA-Z]{1,3}(?-u:\b)|%|(?-u:\b))",
    ),
    // v1.2.3, 2.6.5-1.358, 1.0.6 — versions as one value
    (
        "version",
        r"(?-u:\b)[vV]?[0-9]+(?:\.[0-9]+){1,3}(?:[-+][A-Za-z0-9_.]*[0-9][A-Za-z0-9_.]*)?(?-u:\b)",
    ),
    // Identifiers ending in a number: blk_-6952295868487656571, job_201012, worker-12
    (
        "numbered_id",
        r"(?-u:\b)[A-Za-z][A-Za-z0-9]*(?:[_-][A-Za-z0-9]+)*[_-]-?[0-9]+(?-u:\b)",
    ),
    // 0xdeadbeef, and bare hex ids of 8+ digits: git shas, trace ids (after the
    // number masks, so that all-digit runs like 1122475266.42 stay one number)
    (
        "hex",
        r"(?-u:\b)0[xX][0-9a-fA-F]+(?-u:\b)|(?-u:\b)[0-9a-fA-F]{8,}(?-u:\b)",
    ),
];

/// The built-in masks as owned strings, ready for [`super::miner::MinerConfig`].
pub fn default_masks() -> Vec<String> {
    DEFAULT_MASKS
        .iter()
        .map(|(_, re)| (*re).to_owned())
        .collect()
}

/// A set of masks compiled into one regex.
///
/// Clones share the compiled regex *and* its match caches (the regex crate
/// gives each `Regex` clone a fresh cache, which would make every cloned
/// miner rebuild its lazy DFA from scratch).
#[derive(Debug, Clone)]
pub struct Masker {
    /// `None` when there are no masks: masking is then the identity.
    regex: Option<Arc<Regex>>,
}

/// Why a mask could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mask #{index} {pattern:?} is not a valid regex: {reason}")]
pub struct MaskError {
    /// 1-based position of the mask in the configured list.
    pub index: usize,
    /// The offending pattern, as given.
    pub pattern: String,
    /// The regex crate's explanation.
    pub reason: String,
}

impl Masker {
    /// Compiles `patterns` into one alternation. Each pattern is first
    /// compiled alone, so a bad one is reported by position, not as an error
    /// somewhere inside the combined regex.
    pub fn new(patterns: &[String]) -> Result<Masker, MaskError> {
        for (i, p) in patterns.iter().enumerate() {
            if let Err(e) = Regex::new(p) {
                return Err(MaskError {
                    index: i + 1,
                    pattern: p.clone(),
                    reason: e.to_string(),
                });
            }
        }
        if patterns.is_empty() {
            return Ok(Masker { regex: None });
        }
        let combined: Vec<String> = patterns.iter().map(|p| format!("(?:{p})")).collect();
        let regex = RegexBuilder::new(&combined.join("|"))
            // The lazy DFA of a dozen overlapping masks needs more states than
            // the default cache holds; a full cache is cleared and rebuilt
            // mid-search, which costs several times the search itself.
            .dfa_size_limit(DFA_CACHE_BYTES)
            .build()
            .map_err(|e| MaskError {
                index: 0,
                pattern: "(all masks combined)".to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Masker {
            regex: Some(Arc::new(regex)),
        })
    }

    /// Replaces every mask match in `line` with [`WILDCARD`]. Returns `line`
    /// itself when nothing matches (no copy), else the masked text, written
    /// into `buf` (cleared first; its capacity is reused across calls).
    pub fn mask<'a>(&self, line: &'a str, buf: &'a mut String) -> &'a str {
        let Some(regex) = &self.regex else {
            return line;
        };
        let mut matches = regex.find_iter(line).filter(|m| !m.is_empty()).peekable();
        if matches.peek().is_none() {
            return line;
        }
        buf.clear();
        let mut last = 0;
        for m in matches {
            buf.push_str(&line[last..m.start()]);
            buf.push_str(WILDCARD);
            last = m.end();
        }
        buf.push_str(&line[last..]);
        buf.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_default(line: &str) -> String {
        let masker = Masker::new(&default_masks()).unwrap();
        let mut buf = String::new();
        masker.mask(line, &mut buf).to_owned()
    }

    #[test]
    fn default_masks_collapse_variables() {
        let cases = [
            ("took 1.23s above 500ms", "took <*> above <*>"),
            ("disk 95% full, 12GB left", "disk <*> full, <*> left"),
            ("from 10.0.0.1:8080 to /10.0.0.2", "from <*> to <*>"),
            (
                "from 62.99.164.82.example.net (ip-10-0-0-1.ec2.internal)",
                "from <*> (<*>)",
            ),
            ("audit(1122475266.4294965305:0)", "audit(<*>:<*>)"),
            (
                "id 123e4567-e89b-12d3-a456-426614174000 done",
                "id <*> done",
            ),
            (
                "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
                "commit <*>",
            ),
            ("at 0x7ffd5fbff8a0", "at <*>"),
            (
                "Pod default/api-7d9f8b6c5-x2x9z is restarting",
                "Pod <*> is restarting",
            ),
            ("pod api-7d9f8b6c5-x2x9z", "pod <*>"),
            (
                "33.33% and 100% and 1.2.3% and v1.2",
                "<*> and <*> and <*> and <*>",
            ),
            ("open /var/log/syslog failed", "open <*> failed"),
            ("uid=0 euid=0", "uid=<*> euid=<*>"),
            ("at 2026-01-05T10:00:00Z", "at <*>"),
            ("at Sat Jun 18 02:23:10 2005", "at <*> <*> <*>"),
            ("Jun  3 02:23:10 host", "<*> <*> host"),
            ("GET https://example.com/a?b=1 failed", "GET <*> failed"),
            ("peer fe80::1ff:fe23:4567:890a down", "peer <*> down"),
            ("mac 00:1a:2b:3c:4d:5e up", "mac <*> up"),
            ("dns [2001:db8::1]:53", "dns [<*>]:<*>"),
            (
                "Linux version 2.6.5-1.358 booted",
                "Linux version <*> booted",
            ),
            ("mgr=com.huawei.health.g.c@8a2a501", "mgr=<*>"),
            ("onExtend:1514038530000 14 0 4", "onExtend:<*> <*> <*> <*>"),
            ("CPU#0 and PS/2", "CPU#<*> and PS/<*>"),
        ];
        for (input, want) in cases {
            assert_eq!(mask_default(input), want, "input {input:?}");
        }
    }

    #[test]
    fn default_masks_leave_words_alone() {
        for line in [
            "ssh2 tty2 e820 flush2DB L1 SCREEN_ON",
            "read/write and I/O",
            "a.b.c",
        ] {
            assert_eq!(mask_default(line), line);
        }
    }

    #[test]
    fn unmatched_line_is_not_copied() {
        let masker = Masker::new(&default_masks()).unwrap();
        let mut buf = String::new();
        let line = "nothing variable here";
        let out = masker.mask(line, &mut buf);
        assert!(std::ptr::eq(out, line));
    }

    #[test]
    fn bad_mask_is_reported_by_position() {
        let err = Masker::new(&["\\d+".to_owned(), "(unclosed".to_owned()]).unwrap_err();
        assert_eq!(err.index, 2);
        assert_eq!(err.pattern, "(unclosed");
    }

    #[test]
    fn no_masks_is_identity() {
        let masker = Masker::new(&[]).unwrap();
        let mut buf = String::new();
        assert_eq!(masker.mask("a 1 b", &mut buf), "a 1 b");
    }
}
