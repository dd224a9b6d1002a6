use super::*;

const EQ: MatchOp = MatchOp::Equal;
const NE: MatchOp = MatchOp::NotEqual;
const RE: MatchOp = MatchOp::Regex;
const NRE: MatchOp = MatchOp::NotRegex;
use proptest::prelude::*;

fn m(name: &str, op: MatchOp, value: &str) -> Matcher {
    Matcher::new(name, op, value).unwrap_or_else(|e| panic!("new({name:?}, {op}, {value:?}): {e}"))
}

/// Ported from `prometheus/alertmanager: pkg/labels/matcher_test.go`
/// (`TestMatcher`; its matchers have an empty name, ours `foo`), plus
/// anchoring, Go-class and quirk cases.
#[test]
fn matches_value_table() {
    let cases: &[(MatchOp, &str, &str, bool)] = &[
        (EQ, "bar", "bar", true),
        (EQ, "bar", "foo-bar", false),
        (NE, "bar", "bar", false),
        (NE, "bar", "foo-bar", true),
        (RE, "bar", "bar", true),
        (RE, "bar", "foo-bar", false),
        (RE, ".*bar", "foo-bar", true),
        (NRE, "bar", "bar", false),
        (NRE, "bar", "foo-bar", true),
        (NRE, ".*bar", "foo-bar", false),
        (RE, "foo.bar", "foo-bar", true),
        (RE, r"foo\.bar", "foo-bar", false),
        (RE, r"foo\.bar", "foo.bar", true),
        (EQ, "foo\nbar", "foo\nbar", true),
        (RE, "foo.bar", "foo\nbar", false),
        (RE, "(?s)foo.bar", "foo\nbar", true),
        (EQ, "~!=\"", "~!=\"", true),
        // Anchoring: ^(?:VALUE)$ on both ends, around the whole alternation.
        (RE, "foo", "foobar", false),
        (RE, "foo", "barfoo", false),
        (NRE, "foo", "foobar", true),
        (RE, "critical|warning", "critical", true),
        (RE, "critical|warning", "warning", true),
        (RE, "critical|warning", "critical-ish", false),
        (RE, "critical|warning", "not-warning", false),
        (RE, "", "", true),
        (RE, "", "x", false),
        // Go's Perl classes and \b are ASCII-only; Rust's would match these.
        (RE, r"\d+", "123", true),
        (RE, r"\d+", "٣", false),
        (RE, r"\w+", "café", false),
        (RE, r"\W", "é", true),
        (RE, r"\s", "\u{a0}", false),
        (RE, r"\S", "\u{a0}", true),
        (RE, r"[\d_]+", "1_2", true),
        (RE, r"[^\d]", "7", false),
        (RE, r"\\d", r"\d", true),
        (RE, r".*\bfoo\b.*", "éfooé", true),
        (RE, r".*\Bfoo.*", "éfoo", false),
        (RE, r"\pN+", "٣", true),
        // Quirk kept from Alertmanager: a value can close the anchoring
        // group, `^(?:a)|(b)$`, and then only half of it is anchored.
        (RE, "a)|(b", "axyz", true),
    ];
    let mut failures = Vec::new();
    for &(op, value, input, want) in cases {
        let matcher = m("foo", op, value);
        let got = matcher.matches_value(input);
        if got != want {
            failures.push(format!(
                "Unexpected match result for matcher {matcher} and value {input:?}; want {want}, got {got}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn missing_label_is_empty() {
    let labels = Labels::from_pairs([("severity", "critical"), ("service", "api")]).unwrap();
    let cases: &[(&str, bool)] = &[
        (r#"env!="dev""#, true),
        (r#"env="dev""#, false),
        (r#"env=~".*""#, true),
        (r#"env=~".+""#, false),
        (r#"env!~".+""#, true),
        (r#"env="""#, true),
        (r#"env!="""#, false),
        (r#"severity=~"critical|warning""#, true),
        (r#"severity!="critical""#, false),
        (r#"severity="""#, false),
        (r#"service=~"ap""#, false),
    ];
    let mut failures = Vec::new();
    for &(input, want) in cases {
        let matcher = Matcher::parse(input).unwrap();
        let got = matcher.matches(&labels);
        if got != want {
            failures.push(format!(
                "matcher {matcher} on labels {labels:?}: want {want}, got {got}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Ported from `prometheus/alertmanager: pkg/labels/matcher_test.go`
/// (`TestMatcherString`), plus a round trip for each.
#[test]
fn display_table() {
    let cases: &[(&str, MatchOp, &str, &str)] = &[
        ("foo", EQ, "bar", r#"foo="bar""#),
        ("foo", NE, "bar", r#"foo!="bar""#),
        ("foo", RE, "bar", r#"foo=~"bar""#),
        ("foo", NRE, "bar", r#"foo!~"bar""#),
        ("foo", EQ, r"back\slash", r#"foo="back\\slash""#),
        ("foo", EQ, r#"double"quote"#, r#"foo="double\"quote""#),
        ("foo", EQ, "new\nline", r#"foo="new\nline""#),
        ("foo", EQ, "tab\tstop", "foo=\"tab\tstop\""),
        ("foo", EQ, "🙂", r#"foo="🙂""#),
        ("foo!", NE, "bar", r#""foo!"!="bar""#),
        ("foo🙂", EQ, "bar", r#"foo🙂="bar""#),
        ("foo bar", EQ, "baz", r#""foo bar"="baz""#),
        // Reserved name: Go-quoted name and value.
        (
            "a b",
            EQ,
            "x\ty\"\\\u{1}\u{a0}",
            r#""a b"="x\ty\"\\\x01\u00a0""#,
        ),
        ("env", RE, r"\d+", r#"env=~"\\d+""#),
    ];
    let mut failures = Vec::new();
    for &(name, op, value, want) in cases {
        let matcher = m(name, op, value);
        let got = matcher.to_string();
        if got != want {
            failures.push(format!(
                "Unexpected string representation of matcher; want {want}, got {got}"
            ));
        }
        match Matcher::parse(&got) {
            Ok(back) if back == matcher => {}
            other => failures.push(format!("parse({got}) = {other:?}, want {matcher:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

type Want = Result<&'static [(&'static str, MatchOp, &'static str)], &'static str>;

/// Ported from `prometheus/alertmanager: matcher/parse/parse_test.go`
/// (`TestMatchers`), the error cases of `matcher/parse/lexer_test.go`, and
/// the non-skipped cases of `matcher/compliance/compliance_test.go`.
#[test]
fn parse_matchers_table() {
    let cases: &[(&str, Want)] = &[
        // parse_test.go TestMatchers
        ("", Ok(&[])),
        ("{}", Ok(&[])),
        ("{foo=bar}", Ok(&[("foo", EQ, "bar")])),
        ("{foo=bar,}", Ok(&[("foo", EQ, "bar")])),
        ("{foo!=bar}", Ok(&[("foo", NE, "bar")])),
        ("{foo=~[a-z]+}", Ok(&[("foo", RE, "[a-z]+")])),
        ("{foo!~[a-z]+}", Ok(&[("foo", NRE, "[a-z]+")])),
        ("{foo=🙂}", Ok(&[("foo", EQ, "🙂")])),
        ("{foo=🙂bar}", Ok(&[("foo", EQ, "🙂bar")])),
        ("foo=bar", Ok(&[("foo", EQ, "bar")])),
        ("foo=bar,", Ok(&[("foo", EQ, "bar")])),
        ("foo!=bar", Ok(&[("foo", NE, "bar")])),
        ("foo=~[a-z]+", Ok(&[("foo", RE, "[a-z]+")])),
        ("foo!~[a-z]+", Ok(&[("foo", NRE, "[a-z]+")])),
        (r#"{"foo"="bar"}"#, Ok(&[("foo", EQ, "bar")])),
        (r#"{"foo"="bar",}"#, Ok(&[("foo", EQ, "bar")])),
        (r#"{"foo"!="bar"}"#, Ok(&[("foo", NE, "bar")])),
        (r#"{"foo"=~"[a-z]+"}"#, Ok(&[("foo", RE, "[a-z]+")])),
        (r#"{"foo"!~"[a-z]+"}"#, Ok(&[("foo", NRE, "[a-z]+")])),
        (r#"{"foo"="🙂"}"#, Ok(&[("foo", EQ, "🙂")])),
        (r#"{"foo"="\xf0\x9f\x99\x82"}"#, Ok(&[("foo", EQ, "🙂")])),
        (r#"{"foo"="\U0001f642"}"#, Ok(&[("foo", EQ, "🙂")])),
        (r#"{"foo"="🙂bar"}"#, Ok(&[("foo", EQ, "🙂bar")])),
        (r#"{"foo"="bar\n"}"#, Ok(&[("foo", EQ, "bar\n")])),
        (r#"{"foo"="bar\t"}"#, Ok(&[("foo", EQ, "bar\t")])),
        (r#"{"foo"="\"bar\""}"#, Ok(&[("foo", EQ, "\"bar\"")])),
        (r#"{"foo"="bar\\"}"#, Ok(&[("foo", EQ, "bar\\")])),
        (r#""foo"="bar""#, Ok(&[("foo", EQ, "bar")])),
        (r#""foo"="bar","#, Ok(&[("foo", EQ, "bar")])),
        ("{foo=bar,bar!=baz}", Ok(&[("foo", EQ, "bar"), ("bar", NE, "baz")])),
        (r#"{foo="bar",bar!="baz"}"#, Ok(&[("foo", EQ, "bar"), ("bar", NE, "baz")])),
        ("foo=bar,bar!=baz", Ok(&[("foo", EQ, "bar"), ("bar", NE, "baz")])),
        (r#"foo="bar",bar!="baz""#, Ok(&[("foo", EQ, "bar"), ("bar", NE, "baz")])),
        (",", Err("0:1: unexpected ,: expected label name")),
        ("{,}", Err("1:2: unexpected ,: expected label name")),
        ("{", Err("0:1: end of input: expected close brace")),
        ("}", Err("0:1: }: expected opening brace")),
        ("foo=bar}", Err("0:8: }: expected opening brace")),
        ("{foo=bar", Err("0:8: end of input: expected close brace")),
        (r#"{foo=:"bar"}"#, Err(r#"6:11: unexpected "bar": expected a comma or close brace"#)),
        (r#"{foo="bar\w"}"#, Err(r#"5:12: "bar\w": invalid input"#)),
        (r"{foo=bar\n}", Err(r"8:9: \: invalid input: expected a comma or close brace")),
        (r#"{"foo"="\xf0\x9f"}"#, Err(r#"7:17: "\xf0\x9f": invalid input"#)),
        // lexer_test.go error cases, seen through the parser.
        ("!", Err("0:1: unexpected end of input, expected one of '=~'")),
        ("~", Err("0:1: ~: invalid input")),
        ("=!", Err("0:1: unexpected =: expected label name")),
        ("hello!", Err("5:6: unexpected end of input, expected one of '=~': expected an operator such as '=', '!=', '=~' or '!~'")),
        (r"\n", Err(r"0:1: \: invalid input")),
        (r"hello\n", Err(r"5:6: \: invalid input: expected an operator such as '=', '!=', '=~' or '!~'")),
        ("\"hello", Err("0:6: \"hello: missing end \"")),
        ("\"hello\\\"", Err("0:8: \"hello\\\": missing end \"")),
        // Mimir's config tests quote this Alertmanager message.
        ("foo!bar", Err("3:4: !: expected one of '=~': expected an operator such as '=', '!=', '=~' or '!~'")),
        // compliance_test.go, non-skipped cases.
        (r#"{foo="bar"}"#, Ok(&[("foo", EQ, "bar")])),
        ("{foo=~bar.*}", Ok(&[("foo", RE, "bar.*")])),
        (r#"{foo=~"bar.*"}"#, Ok(&[("foo", RE, "bar.*")])),
        (r#"{foo!~"bar.*"}"#, Ok(&[("foo", NRE, "bar.*")])),
        (r#"{foo="bar", baz!~"quux.*"}"#, Ok(&[("foo", EQ, "bar"), ("baz", NRE, "quux.*")])),
        (r#"{foo="bar",baz!~".*quux", derp="wat"}"#, Ok(&[("foo", EQ, "bar"), ("baz", NRE, ".*quux"), ("derp", EQ, "wat")])),
        (r#"{foo="bar", instance=~"some-api.*"}"#, Ok(&[("foo", EQ, "bar"), ("instance", RE, "some-api.*")])),
        (r#"{foo=""}"#, Ok(&[("foo", EQ, "")])),
        (r#"{foo="bar,quux", job="job1"}"#, Ok(&[("foo", EQ, "bar,quux"), ("job", EQ, "job1")])),
        (r#"{foo = "bar", dings != "bums", }"#, Ok(&[("foo", EQ, "bar"), ("dings", NE, "bums")])),
        ("foo=bar,dings!=bums", Ok(&[("foo", EQ, "bar"), ("dings", NE, "bums")])),
        (r#"{quote="She said: \"Hi, ladies! That's gender-neutral…\""}"#, Ok(&[("quote", EQ, r#"She said: "Hi, ladies! That's gender-neutral…""#)])),
        (r#"statuscode=~"5..""#, Ok(&[("statuscode", RE, "5..")])),
        (r#"contains_quote != "\"" , contains_comma !~ "foo,bar" , "#, Ok(&[("contains_quote", NE, "\""), ("contains_comma", NRE, "foo,bar")])),
        (r#"{name-with-dashes = "bar"}"#, Ok(&[("name-with-dashes", EQ, "bar")])),
        ("{,}", Err("1:2: unexpected ,: expected label name")),
        (r#"job="value"#, Err(r#"4:10: "value: missing end ": expected label value"#)),
        (r#"job=value""#, Err(r#"9:10: ": missing end ": expected a comma or close brace"#)),
        (r#"{foo=~"invalid[regexp"}"#, Err(r#"6:22: "invalid[regexp": invalid regular expression: missing closing ]: `[regexp)$`"#)),
        (r#""foo=\"bar""#, Err("0:11: end of input: expected an operator such as '=', '!=', '=~' or '!~'")),
        ("{{foo=", Err("1:2: unexpected {: expected label name")),
        // compliance_test.go skipped cases: the classic parser accepted
        // them, the UTF-8 parser (and so correlator) rejects them.
        ("{foo='}", Err("5:6: ': invalid input: expected label value")),
        ("job=", Err("0:4: end of input: expected label value")),
        ("{foo=bar}}", Err("9:10: }: expected end of input")),
        ("tricky=~~~", Err("8:9: ~: invalid input: expected label value")),
        // Escapes, whitespace, unicode.
        (" \t{ a = \"x\\ny\" ,\n b!~ \"\\\\d\" } ", Ok(&[("a", EQ, "x\ny"), ("b", NRE, r"\d")])),
        (r#"{"service name"="check\"out"}"#, Ok(&[("service name", EQ, "check\"out")])),
        ("Σ=🙂,x=$", Ok(&[("Σ", EQ, "🙂"), ("x", EQ, "$")])),
        (r#"a="\a\b\f\r\v\101\x41\u00e9""#, Ok(&[("a", EQ, "\u{7}\u{8}\u{c}\r\u{b}AAé")])),
        ("a=\"x\ny\"", Err("2:7: \"x\ny\": invalid input")),
        (r#"a="\'""#, Err(r#"2:6: "\'": invalid input"#)),
        (r#"a="\ud800""#, Err(r#"2:10: "\ud800": invalid input"#)),
        (r#"a="\400""#, Err(r#"2:8: "\400": invalid input"#)),
        // Operators, positions, trailing garbage.
        ("env", Err("0:3: end of input: expected an operator such as '=', '!=', '=~' or '!~'")),
        ("env ", Err("0:3: end of input: expected an operator such as '=', '!=', '=~' or '!~'")),
        ("foo=", Err("0:4: end of input: expected label value")),
        ("foo==bar", Err("4:5: unexpected =: expected label value")),
        ("foo bar", Err("4:7: unexpected bar: expected an operator such as '=', '!=', '=~' or '!~'")),
        ("foo=bar baz", Err("8:11: unexpected baz: expected a comma or close brace")),
        ("foo=bar,,", Err("8:9: unexpected ,: expected a matcher or close brace after comma")),
        ("foo=bar,~", Err("8:9: ~: invalid input: expected a matcher or close brace after comma")),
        ("{a=\"b\"} c", Err("8:9: c: expected end of input")),
        ("{}{}", Err("2:3: {: expected end of input")),
        ("{}~", Err("2:3: ~: invalid input: expected end of input")),
        ("{a=b", Err("0:4: end of input: expected close brace")),
        ("a=b }", Err("0:5: }: expected opening brace")),
        ("🙂🙂!x", Err("2:3: !: expected one of '=~': expected an operator such as '=', '!=', '=~' or '!~'")),
        (r#"severity=~"(""#, Err(r#"10:13: "(": invalid regular expression: missing closing ): `^(?:()$`"#)),
        (r#"""="x""#, Err(r#"0:2: "": empty label name"#)),
    ];
    let mut failures = Vec::new();
    for (input, want) in cases {
        let got = parse_matchers(input, Mode::Utf8);
        let ok = match (want, &got) {
            (Ok(w), Ok(g)) => {
                g.len() == w.len() && w.iter().zip(g).all(|((n, o, v), g)| g == &m(n, *o, v))
            }
            (Err(w), Err(g)) => g.to_string() == *w,
            _ => false,
        };
        if !ok {
            let got = match &got {
                Ok(ms) => format!(
                    "Ok({})",
                    ms.iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Err(e) => format!("Err({e})"),
            };
            failures.push(format!("input {input:?}: want {want:?}, got {got}"));
        }
        if let Err(e) = parse_matchers(input, Mode::Utf8) {
            // Every parse error is positioned inside the input.
            let span = e.span().expect("parse errors carry a span");
            assert!(
                span.start <= span.end && span.end <= input.chars().count(),
                "{input:?}: {e}"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// From `prometheus/alertmanager: matcher/parse/parse_test.go` (`TestMatcher`),
/// read in fallback mode.
#[test]
fn parse_single() {
    let ok: &[(&str, (&str, MatchOp, &str))] = &[
        ("{foo=bar}", ("foo", EQ, "bar")),
        ("{foo=bar,}", ("foo", EQ, "bar")),
        ("foo=~[a-z]+", ("foo", RE, "[a-z]+")),
        (r#"{"foo"="\U0001f642"}"#, ("foo", EQ, "🙂")),
        (
            r#"severity=~"critical|warning""#,
            ("severity", RE, "critical|warning"),
        ),
        (r#"env!="dev""#, ("env", NE, "dev")),
        ("severity=critical", ("severity", EQ, "critical")),
        // The UTF-8 parser refuses invalid UTF-8; the classic reads backslashes.
        (r#"foo="\xf0\x9f""#, ("foo", EQ, r"\xf0\x9f")),
    ];
    for (input, (n, o, v)) in ok {
        assert_eq!(Matcher::parse(input), Ok(m(n, *o, v)), "input {input:?}");
        assert_eq!(
            input.parse::<Matcher>(),
            Ok(m(n, *o, v)),
            "FromStr {input:?}"
        );
    }
    let err: &[(&str, &str)] = &[
        ("", "0:0: no matchers"),
        ("{}", "0:2: no matchers"),
        ("foo=bar,bar=baz", "0:15: expected 1 matcher, found 2"),
        (
            r#"foo="\xf0"#,
            r#"4:9: "\xf0: missing end ": expected label value"#,
        ),
    ];
    for (input, want) in err {
        let got = Matcher::parse(input).map_err(|e| e.to_string());
        assert_eq!(got, Err(want.to_string()), "input {input:?}");
    }
}

#[test]
fn new_errors() {
    let e = Matcher::new("severity", RE, "(").unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"severity=~"(": invalid regular expression: missing closing ): `^(?:()$`"#
    );
    assert_eq!(e.span(), None);
    assert_eq!(
        Matcher::new("", EQ, "x").unwrap_err().to_string(),
        "empty label name"
    );
    // Equality operators take any value, regex metacharacters included.
    assert!(Matcher::new("a", EQ, "(").is_ok());
}

/// Known divergences, kept as cases like compliance_test.go's skips: what
/// Go would do is in the comment, what correlator does is asserted.
#[test]
fn known_divergences() {
    // Go: no such script (it knows the long names only). The regex crate:
    // the Greek script's four-letter code.
    assert!(m("x", RE, r"\p{Grek}").matches_value("Ω"));
    // Go: accepted, an empty name. Here: refused (no label has one).
    assert!(parse_matchers(r#"""="x""#, Mode::Fallback).is_err());
}

#[test]
fn serde_config_and_json() {
    #[derive(Deserialize)]
    struct Rule {
        matchers: Vec<Matcher>,
    }
    let r: Rule =
        toml::from_str(r#"matchers = ['severity=~"critical|warning"', 'env!="dev"']"#).unwrap();
    assert_eq!(
        r.matchers,
        vec![m("severity", RE, "critical|warning"), m("env", NE, "dev")]
    );
    let err = toml::from_str::<Rule>(r#"matchers = ['env!!"dev"']"#)
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("3:4: !: expected one of '=~': expected an operator"),
        "{err}"
    );
    let json = serde_json::to_string(&r.matchers).unwrap();
    assert_eq!(json, r#"["severity=~\"critical|warning\"","env!=\"dev\""]"#);
    let back: Vec<Matcher> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r.matchers);
}

fn op_strategy() -> impl Strategy<Value = MatchOp> {
    prop_oneof![Just(EQ), Just(NE), Just(RE), Just(NRE)]
}

/// Strings biased towards the grammar's characters.
fn grammar_string() -> impl Strategy<Value = String> {
    "[{}!=~,\"\\\\'` \t\na-c🙂Σ\u{a0}.*()|\\[\\]]{0,24}"
}

proptest! {
    #[test]
    fn parse_never_panics(
        s in any::<String>(),
        g in grammar_string(),
        re in "[a-c0-9\\\\{}\\[\\]()*+?|^$.:,&~<>PpQEdxu_-]{0,16}",
    ) {
        // A regex in the classic syntax (backslashes as they are).
        let re = format!("x=~{re}");
        for input in [&s, &g, &re] {
            match parse_matchers(input, Mode::Utf8) {
                Ok(ms) => {
                    for m in ms {
                        prop_assert_eq!(Matcher::parse(&m.to_string()), Ok(m.clone()));
                    }
                }
                Err(e) => {
                    let span = e.span();
                    prop_assert!(span.is_some(), "{:?}: {}", input, e);
                    let n = input.chars().count();
                    prop_assert!(span.is_some_and(|s| s.start <= s.end && s.end <= n));
                }
            }
            let _ = Matcher::parse(input);
            // Fallback mode: the classic parser and the regex translation
            // never panic either, and what is read prints back to itself.
            if let Ok(ms) = parse_matchers(input, Mode::Fallback) {
                for m in ms {
                    prop_assert_eq!(Matcher::parse(&m.to_string()), Ok(m.clone()));
                }
            }
            let _ = mode_dependence(input);
        }
    }

    #[test]
    fn display_round_trips(
        name in prop_oneof![any::<String>(), grammar_string(), "[a-z_]{1,8}"],
        op in op_strategy(),
        value in prop_oneof![any::<String>(), grammar_string(), "[a-z|.*]{0,8}"],
    ) {
        let matcher = match Matcher::new(&name, op, &value) {
            Ok(m) => m,
            Err(e) => {
                // Only an empty name or a bad regex may be refused.
                let expected = matches!(
                    e,
                    MatcherError::EmptyLabelName { .. } | MatcherError::InvalidRegex { .. }
                );
                prop_assert!(expected, "{}", e);
                return Ok(());
            }
        };
        let shown = matcher.to_string();
        let back = Matcher::parse(&shown);
        prop_assert_eq!(back.as_ref(), Ok(&matcher), "shown as {}", shown);
        // As a list, in Alertmanager's `{a,b}` form, too.
        let list = format!("{{{shown},{shown}}}");
        // In both modes: the canonical form reads the same in each.
        for mode in [Mode::Utf8, Mode::Fallback] {
            prop_assert_eq!(
                parse_matchers(&list, mode),
                Ok(vec![matcher.clone(), matcher.clone()]),
                "{:?}", mode
            );
        }
        // The parsed matcher behaves the same.
        if let Ok(back) = back {
            for probe in [value.as_str(), "", "x", name.as_str()] {
                prop_assert_eq!(back.matches_value(probe), matcher.matches_value(probe));
            }
        }
    }
}

/// Limits: Go nests at most 1000 levels deep, the regex crate (whose
/// compiler recurses) 250, counting groups, repetitions and classes; past
/// either the matcher is refused with its reason, never a stack overflow.
/// The regex crate's size limit applies too (Go accepts `\pL{1000}`).
#[test]
fn regex_limits() {
    let nested = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
    assert!(m("x", RE, &nested(100)).matches_value("a"));
    let cases: &[(String, &str)] = &[
        (nested(300), "nested parentheses/brackets (250)"),
        (nested(1000), "expression nests too deeply"),
        (nested(5000), "expression nests too deeply"),
        (r"\pL{1000}".to_string(), "exceeds size limit"),
    ];
    let mut failures = Vec::new();
    for (value, want) in cases {
        let got = Matcher::new("x", RE, value).map_err(|e| e.to_string());
        if !matches!(&got, Err(e) if e.contains(want)) {
            let got = format!("{got:?}");
            let tail: Vec<char> = got.chars().rev().take(120).collect();
            let got: String = tail.into_iter().rev().collect();
            failures.push(format!(
                "value of {} chars: want {want:?}, got {got}",
                value.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
