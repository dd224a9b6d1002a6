//! The golden cases of `tests/golden/matchers/cases.toml`: inputs from
//! Alertmanager's own tests and Go's regex syntax, with their reading in
//! each mode and values they must (not) match.

use super::*;

const CASES: &str = include_str!("../../tests/golden/matchers/cases.toml");

/// A reading as the file writes it: `[name, op, value]` triples, or `None`
/// for "refused".
type Reading = Option<Vec<(String, String, String)>>;

fn want_reading(v: &toml::Value) -> Reading {
    if v.as_str() == Some("refused") {
        return None;
    }
    let list = v.as_array().expect("a reading is \"refused\" or a list");
    Some(
        list.iter()
            .map(|t| {
                let t = t.as_array().expect("[name, op, value]");
                let s = |i: usize| t[i].as_str().expect("a string").to_string();
                (s(0), s(1), s(2))
            })
            .collect(),
    )
}

fn got_reading(r: &Result<Vec<Matcher>, MatcherError>) -> Reading {
    r.as_ref().ok().map(|ms| {
        ms.iter()
            .map(|m| {
                (
                    m.name().to_string(),
                    m.op().to_string(),
                    m.value().to_string(),
                )
            })
            .collect()
    })
}

fn strings(case: &toml::Table, key: &str) -> Vec<String> {
    case.get(key)
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn golden_cases() {
    let file: toml::Table = CASES
        .parse()
        .unwrap_or_else(|e: toml::de::Error| panic!("cases.toml: {}", e.message()));
    let cases = file["case"].as_array().expect("[[case]] tables");
    assert!(cases.len() > 100, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let case = case.as_table().expect("a table");
        let input = case["input"].as_str().expect("input");
        let fallback = want_reading(&case["fallback"]);
        let utf8 = case.get("utf8").map_or(fallback.clone(), want_reading);
        let got_fallback = parse_matchers(input, Mode::Fallback);
        for (mode, want, got) in [
            (Mode::Fallback, &fallback, got_fallback.clone()),
            (Mode::Utf8, &utf8, parse_matchers(input, Mode::Utf8)),
        ] {
            if &got_reading(&got) != want {
                failures.push(format!(
                    "input {input:?} in {mode:?} mode: want {want:?}, got {got:?}"
                ));
            }
        }
        if let Some(want) = case.get("error").and_then(toml::Value::as_str) {
            match &got_fallback {
                Err(e) if e.to_string().contains(want) => {}
                got => failures.push(format!(
                    "input {input:?}: want an error with {want:?}, got {got:?}"
                )),
            }
        }
        let (yes, no) = (strings(case, "match"), strings(case, "no_match"));
        if !yes.is_empty() || !no.is_empty() {
            let Some(Ok([m])) = got_fallback.clone().ok().map(<[Matcher; 1]>::try_from) else {
                failures.push(format!("input {input:?}: match values need one matcher"));
                continue;
            };
            for (values, want) in [(&yes, true), (&no, false)] {
                for v in values {
                    let got = m.matches_value(v);
                    if got != want {
                        failures.push(format!(
                            "input {input:?}, matcher {m}, value {v:?}: want match {want}, got {got}"
                        ));
                    }
                }
            }
        }
        // The canonical form reads the same in both modes: what the
        // check-config warning suggests writing.
        if let Ok(ms) = &got_fallback {
            let canonical: Vec<String> = ms.iter().map(Matcher::to_string).collect();
            let canonical = format!("{{{}}}", canonical.join(", "));
            for mode in [Mode::Fallback, Mode::Utf8] {
                let back = parse_matchers(&canonical, mode);
                if back.as_ref() != Ok(ms) {
                    failures.push(format!(
                        "input {input:?}: canonical {canonical} in {mode:?} mode: want {ms:?}, got {back:?}"
                    ));
                }
            }
            if mode_dependence(&canonical).is_some() {
                failures.push(format!(
                    "input {input:?}: canonical {canonical} depends on the mode"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn mode_dependence_table() {
    // (input, want: None = same in both, Some(true) = both accept and
    // disagree, Some(false) = only the classic parser accepts)
    let cases: &[(&str, Option<bool>)] = &[
        (r#"foo="bar""#, None),
        (r#"foo=~"\\d+""#, None),
        (r#"foo🙂=bar"#, None),
        (r#"foo=~"[a-z"#, None),
        (r#"foo="\t""#, Some(true)),
        (r#"foo="\xf0\x9f\x99\x82""#, Some(true)),
        (r#"foo=~"\101""#, Some(true)),
        (r#"foo=~"\d+""#, Some(false)),
        (r#"{foo=bar}}"#, Some(false)),
        (r#"job="#, Some(false)),
    ];
    let mut failures = Vec::new();
    for &(input, want) in cases {
        let got = mode_dependence(input);
        let got_kind = got
            .as_ref()
            .map(|d| matches!(d, ModeDependence::Disagree { .. }));
        if got_kind != want {
            failures.push(format!("input {input:?}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let d = mode_dependence(r#"foo="\t""#).unwrap().to_string();
    assert_eq!(
        d,
        r#"read as {foo="\\t"} in matchers.mode = "fallback" (the classic reading, as Alertmanager's default) but as {foo="<U+0009>"} in "utf8"; write {foo="\\t"} to read the same in both modes"#
    );
}
