//! Golden replay cases: `tests/golden/replay/<case>/` holds `config.toml`,
//! `input.jsonl` and a hand-written `expected.json`. Each case is replayed in
//! process and the output is compared field by field with what the
//! expectation states (fields it leaves out are not checked).
//!
//! `expected.json`:
//! ```json
//! {"summary": {"records": 9, "deduplicated": 6},
//!  "incidents": [{"status": "closed", "title": "…", "severity": "warning",
//!                 "priority": "P3", "rule": "by-service", "group": {…},
//!                 "opened_at": "…", "acknowledged_at": null, "resolved_at": "…",
//!                 "closed_at": "…", "reopened": 0, "flapping": false,
//!                 "root_cause_alertname": "PostgresDown",
//!                 "root_cause_labels": {"service": "postgres"},
//!                 "merged_into_title": "…", "problem_signature": "svc: template",
//!                 "alerts": [{"alertname": "X", "labels": {…}, "status": "resolved",
//!                             "occurrences": 3, "first_seen": "…",
//!                             "last_seen": "…", "flapping": false}]}],
//!  "problems": [{"state": "candidate", "signature": "…", "template": "…",
//!                "service": "…", "occurrences": 3, "first_seen": "…", "last_seen": "…",
//!                "incidents_opened_at": ["…", "…", "…"]}],
//!  "rejected": [{"line": 2, "error_contains": "invalid JSON"}]}
//! ```
//! - `incidents` lists every incident, in incidents.jsonl order (opening time,
//!   then id). Ids are hashes, so incidents opened at the same instant are
//!   paired by title instead of position.
//! - `alerts` lists every alert of the incident, in any order; each entry
//!   picks exactly one alert by `alertname` and/or a `labels` subset.
//! - `root_cause_alertname` is the alertname of the root-cause alert (null: no
//!   root cause), `root_cause_labels` a subset of its labels (for alerts with
//!   no alertname, e.g. PagerDuty's); `merged_into_title` is the title of the
//!   incident it merged into; `problem_signature` the signature of the
//!   problem its `problem_id` names (null: none).
//! - `problems` lists every line of problems.jsonl, in order; its
//!   `incidents_opened_at` gives the opening times of its incidents.
//! - `rejected` lists every rejected line, in order; `error` is compared
//!   exactly, `error_contains` as a substring.
//! - `summary` is a subset of summary.json.
//!
//! Failures print case, field, want and got.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::support::{engine_from_file, replay_file, repo_root, ReplayOutput};

fn golden_dir() -> PathBuf {
    repo_root().join("tests/golden/replay")
}

/// Replays one case directory in process.
fn replay_case(dir: &Path) -> ReplayOutput {
    let mut engine = engine_from_file(&dir.join("config.toml"));
    replay_file(&mut engine, &dir.join("input.jsonl"))
}

/// Runs the case and panics with every mismatch.
fn run_case(case: &str) {
    let dir = golden_dir().join(case);
    let expected_path = dir.join("expected.json");
    let text = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
    let want: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
    let got = replay_case(&dir);
    let failures = compare(case, &want, &got);
    assert!(
        failures.is_empty(),
        "{} mismatches in golden case {case}:\n{}\n\nincidents.jsonl:\n{}\nrejected.jsonl:\n{}\nsummary.json:\n{}",
        failures.len(),
        failures.join("\n"),
        String::from_utf8_lossy(&got.incidents),
        String::from_utf8_lossy(&got.rejected),
        String::from_utf8_lossy(&got.summary),
    );
}

/// Every difference between an expectation and a replay's output.
fn compare(case: &str, want: &Value, got: &ReplayOutput) -> Vec<String> {
    let mut f = Failures {
        case: case.to_string(),
        list: Vec::new(),
    };
    let Some(want) = want.as_object() else {
        f.push("expected.json", "an object", "something else");
        return f.list;
    };
    for key in want.keys() {
        if !["summary", "incidents", "problems", "rejected", "comment"].contains(&key.as_str()) {
            f.push(
                key,
                "a known top-level key",
                &format!("unknown key {key:?}"),
            );
        }
    }
    if let Some(s) = want.get("summary") {
        compare_summary(&mut f, s, &got.summary_json());
    }
    if let Some(r) = want.get("rejected") {
        compare_rejected(&mut f, r, &got.rejected_json());
    }
    let problems = ReplayOutput::lines(&got.problems);
    if let Some(i) = want.get("incidents") {
        compare_incidents(&mut f, i, &got.incidents_json(), &problems);
    }
    if let Some(p) = want.get("problems") {
        compare_problems(&mut f, p, &problems, &got.incidents_json());
    }
    f.list
}

/// Problem fields compared as they are in problems.jsonl; `incidents_opened_at`
/// stands for `incident_ids` (the opening times of those incidents).
fn compare_problems(f: &mut Failures, want: &Value, got: &[Value], incidents: &[Value]) {
    let want = want.as_array().cloned().unwrap_or_default();
    if want.len() != got.len() {
        f.push(
            "problems (count)",
            &want.len().to_string(),
            &format!("{} {got:?}", got.len()),
        );
        return;
    }
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        for (k, wv) in w.as_object().into_iter().flatten() {
            let field = format!("problems[{i}].{k}");
            match k.as_str() {
                "state" | "signature" | "template" | "service" | "occurrences" | "first_seen"
                | "last_seen" => f.check(&field, wv, &g[k]),
                "incidents_opened_at" => {
                    let opened: Vec<Value> = g["incident_ids"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|id| {
                            incidents.iter().find(|inc| &inc["id"] == id).map_or_else(
                                || json!(format!("{id} (no such incident)")),
                                |inc| inc["opened_at"].clone(),
                            )
                        })
                        .collect();
                    f.check(&field, wv, &Value::Array(opened));
                }
                "comment" => {}
                other => f.push(
                    &field,
                    "a known problem field",
                    &format!("unknown {other:?}"),
                ),
            }
        }
    }
}

struct Failures {
    case: String,
    list: Vec<String>,
}

impl Failures {
    fn push(&mut self, field: &str, want: &str, got: &str) {
        self.list.push(format!(
            "case {}: {field}\n  want: {want}\n   got: {got}",
            self.case
        ));
    }

    fn check(&mut self, field: &str, want: &Value, got: &Value) {
        if want != got {
            self.push(field, &want.to_string(), &got.to_string());
        }
    }
}

fn compare_summary(f: &mut Failures, want: &Value, got: &Value) {
    let Some(want) = want.as_object() else {
        f.push("summary", "an object", &want.to_string());
        return;
    };
    for (k, w) in want {
        match got.get(k) {
            Some(g) => f.check(&format!("summary.{k}"), w, g),
            None => f.push(&format!("summary.{k}"), &w.to_string(), "no such key"),
        }
    }
}

fn compare_rejected(f: &mut Failures, want: &Value, got: &[Value]) {
    let want = want.as_array().cloned().unwrap_or_default();
    if want.len() != got.len() {
        f.push(
            "rejected (count)",
            &want.len().to_string(),
            &format!("{} {}", got.len(), Value::from(got.to_vec())),
        );
    }
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        f.check(&format!("rejected[{i}].line"), &w["line"], &g["line"]);
        let err = g["error"].as_str().unwrap_or_default();
        if let Some(exact) = w.get("error") {
            f.check(&format!("rejected[{i}].error"), exact, &g["error"]);
        }
        if let Some(part) = w.get("error_contains").and_then(Value::as_str) {
            if !err.contains(part) {
                f.push(
                    &format!("rejected[{i}].error"),
                    &format!("contains {part:?}"),
                    &format!("{err:?}"),
                );
            }
        }
    }
}

/// Incident fields compared as they are in incidents.jsonl.
const PLAIN_FIELDS: &[&str] = &[
    "status",
    "title",
    "severity",
    "priority",
    "rule",
    "group",
    "opened_at",
    "acknowledged_at",
    "resolved_at",
    "closed_at",
    "reopened",
    "flapping",
];

fn compare_incidents(f: &mut Failures, want: &Value, got: &[Value], problems: &[Value]) {
    let want = want.as_array().cloned().unwrap_or_default();
    if want.len() != got.len() {
        let titles: Vec<&Value> = got.iter().map(|i| &i["title"]).collect();
        f.push(
            "incidents (count)",
            &want.len().to_string(),
            &format!("{} with titles {titles:?}", got.len()),
        );
        return;
    }
    let pairing = pair_incidents(&want, got);
    for (i, (w, &gi)) in want.iter().zip(&pairing).enumerate() {
        let g = &got[gi];
        let name = format!(
            "incidents[{i}] ({})",
            w.get("title").and_then(Value::as_str).unwrap_or("?")
        );
        let Some(w) = w.as_object() else {
            f.push(&name, "an object", &w.to_string());
            continue;
        };
        for (k, wv) in w {
            let field = format!("{name}.{k}");
            match k.as_str() {
                k if PLAIN_FIELDS.contains(&k) => f.check(&field, wv, &g[k]),
                "root_cause_alertname" => {
                    let rc = g["root_cause"].as_str();
                    let got_name = match rc {
                        None => Value::Null,
                        Some(fp) => g["alerts"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|a| a["fingerprint"] == fp)
                            .map(|a| match &a["labels"]["alertname"] {
                                Value::Null => json!(format!("{fp} (no alertname label)")),
                                name => name.clone(),
                            })
                            .unwrap_or_else(|| json!(format!("{fp} (not a member)"))),
                    };
                    f.check(&field, wv, &got_name);
                }
                "root_cause_labels" => {
                    let rc = g["root_cause"].as_str();
                    let labels = g["alerts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|a| rc.is_some() && a["fingerprint"].as_str() == rc)
                        .map(|a| a["labels"].clone())
                        .unwrap_or(Value::Null);
                    let ok = wv
                        .as_object()
                        .is_some_and(|sel| sel.iter().all(|(k, v)| &labels[k] == v));
                    if !ok {
                        f.push(
                            &field,
                            &format!("labels including {wv}"),
                            &labels.to_string(),
                        );
                    }
                }
                "merged_into_title" => {
                    let got_title = match g["merged_into"].as_str() {
                        None => Value::Null,
                        Some(id) => got
                            .iter()
                            .find(|o| o["id"] == id)
                            .map(|o| o["title"].clone())
                            .unwrap_or_else(|| json!(format!("{id} (no such incident)"))),
                    };
                    f.check(&field, wv, &got_title);
                }
                "problem_signature" => {
                    let sig = match g["problem_id"].as_str() {
                        None => Value::Null,
                        Some(id) => problems
                            .iter()
                            .find(|p| p["id"] == id)
                            .map(|p| p["signature"].clone())
                            .unwrap_or_else(|| json!(format!("{id} (not in problems.jsonl)"))),
                    };
                    f.check(&field, wv, &sig);
                }
                "alerts" => compare_alerts(f, &field, wv, &g["alerts"]),
                "comment" => {}
                other => f.push(
                    &field,
                    "a known incident field",
                    &format!("unknown {other:?}"),
                ),
            }
        }
    }
}

/// For each expected incident, the index of its incidents.jsonl line: the
/// same position, except that among incidents opened at the same instant
/// (whose order is by hashed id) the one with the expected title is chosen.
fn pair_incidents(want: &[Value], got: &[Value]) -> Vec<usize> {
    let mut used = vec![false; got.len()];
    let mut out = Vec::with_capacity(want.len());
    for (i, w) in want.iter().enumerate() {
        let opened = &got[i]["opened_at"];
        let ties: Vec<usize> = (0..got.len())
            .filter(|&j| !used[j] && &got[j]["opened_at"] == opened)
            .collect();
        let by_title = w
            .get("title")
            .and_then(|t| ties.iter().copied().find(|&j| &got[j]["title"] == t));
        let pick = by_title.or(ties.first().copied()).unwrap_or(i);
        used[pick] = true;
        out.push(pick);
    }
    out
}

fn compare_alerts(f: &mut Failures, field: &str, want: &Value, got: &Value) {
    let want = want.as_array().cloned().unwrap_or_default();
    let got = got.as_array().cloned().unwrap_or_default();
    if want.len() != got.len() {
        let names: Vec<&Value> = got.iter().map(|a| &a["labels"]).collect();
        f.push(
            &format!("{field} (count)"),
            &want.len().to_string(),
            &format!("{} {names:?}", got.len()),
        );
    }
    for (i, w) in want.iter().enumerate() {
        let mut selector = w.get("labels").cloned().unwrap_or_else(|| json!({}));
        if let Some(n) = w.get("alertname") {
            selector["alertname"] = n.clone();
        }
        let sel = selector.as_object().cloned().unwrap_or_default();
        let matching: Vec<&Value> = got
            .iter()
            .filter(|a| sel.iter().all(|(k, v)| &a["labels"][k] == v))
            .collect();
        let name = format!("{field}[{i}] {}", Value::Object(sel.clone()));
        if matching.len() != 1 {
            f.push(
                &name,
                "exactly one alert with these labels",
                &format!("{} alerts", matching.len()),
            );
            continue;
        }
        let g = matching[0];
        for (k, wv) in w.as_object().into_iter().flatten() {
            match k.as_str() {
                "alertname" | "labels" | "comment" => {}
                "status" | "occurrences" | "first_seen" | "last_seen" | "flapping" | "joined"
                | "fingerprint" => f.check(&format!("{name}.{k}"), wv, &g[k]),
                other => f.push(&name, "a known alert field", &format!("unknown {other:?}")),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The cases. One test each, so a failure names its case.

macro_rules! golden_cases {
    ($($name:ident),* $(,)?) => {
        const CASES: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                run_case(stringify!($name));
            }
        )*
    };
}

golden_cases!(
    dedup_resends,
    resolve_timeout,
    threshold_min_alerts,
    reopen_window,
    flapping,
    topology_forward,
    topology_reverse,
    topology_merge,
    pagerduty,
    alertmanager_webhook_multi,
    api_v2,
    grafana,
    malformed,
    priority_matrix,
    identity_labels,
    no_rule_match,
    severity_escalation,
    source_expiry,
    problems_title_varies,
    problems_final_shape,
    problems_identical_recurrences,
    problems_topology_cascade,
    problems_stray_alert,
    problems_other_service_apart,
);

/// Cases that document a bug: they state what should happen and are
/// `#[ignore]`d until the engine does it (`cargo test -- --ignored`).
macro_rules! bug_cases {
    ($($name:ident: $why:literal),* $(,)?) => {
        const BUG_CASES: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            #[ignore = $why]
            fn $name() {
                run_case(stringify!($name));
            }
        )*
    };
}

bug_cases!();

/// Every directory under tests/golden/replay is a case some test runs.
#[test]
fn every_case_directory_is_tested() {
    let mut dirs: Vec<String> = std::fs::read_dir(golden_dir())
        .expect("tests/golden/replay exists")
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let known: Vec<&str> = CASES
        .iter()
        .chain(BUG_CASES)
        .copied()
        .chain(["example"])
        .collect();
    let untested: Vec<&String> = dirs
        .iter()
        .filter(|d| !known.contains(&d.as_str()))
        .collect();
    assert!(
        untested.is_empty(),
        "case directories no test runs: {untested:?}"
    );
    for case in &known {
        assert!(
            dirs.iter().any(|d| d == case),
            "missing case directory {case}"
        );
    }
}

/// The comparison can fail: altered expectations of a real case are caught,
/// each with the field named.
#[test]
fn comparator_reports_mismatches() {
    let case = "dedup_resends";
    let dir = golden_dir().join(case);
    let want: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).expect("expected.json"))
            .expect("JSON");
    let got = replay_case(&dir);
    assert!(
        compare(case, &want, &got).is_empty(),
        "the case itself passes"
    );

    type Mutation = Box<dyn Fn(&mut Value)>;
    let mutations: Vec<(&str, Mutation)> = vec![
        (
            "summary.deduplicated",
            Box::new(|w| w["summary"]["deduplicated"] = json!(99)),
        ),
        (
            "incidents (count)",
            Box::new(|w| {
                let extra = w["incidents"][0].clone();
                w["incidents"].as_array_mut().unwrap().push(extra);
            }),
        ),
        (
            ".status",
            Box::new(|w| w["incidents"][0]["status"] = json!("open")),
        ),
        (
            ".occurrences",
            Box::new(|w| w["incidents"][0]["alerts"][0]["occurrences"] = json!(7)),
        ),
        (
            "exactly one alert",
            Box::new(|w| w["incidents"][0]["alerts"][0]["alertname"] = json!("Nope")),
        ),
        (
            "alerts (count)",
            Box::new(|w| {
                w["incidents"][0]["alerts"].as_array_mut().unwrap().pop();
            }),
        ),
        (
            "rejected (count)",
            Box::new(|w| w["rejected"] = json!([{"line": 1, "error_contains": "x"}])),
        ),
        (
            "unknown",
            Box::new(|w| w["incidents"][0]["titel"] = json!("typo")),
        ),
    ];
    for (needle, mutate) in mutations {
        let mut w = want.clone();
        mutate(&mut w);
        let failures = compare(case, &w, &got);
        assert!(
            failures.iter().any(|m| m.contains(needle)),
            "mutation {needle:?} not reported: {failures:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// The byte-exact example: every output file compared as bytes, in process and
// through the real binary (twice, to show the output is deterministic).

fn example_dir() -> PathBuf {
    golden_dir().join("example")
}

fn assert_same_bytes(what: &str, want: &[u8], got: &[u8]) {
    if want != got {
        let w = String::from_utf8_lossy(want);
        let g = String::from_utf8_lossy(got);
        let first = w
            .lines()
            .zip(g.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| w.lines().count().min(g.lines().count()));
        panic!(
            "{what} differs from the golden file (first differing line {}):\n want: {}\n  got: {}",
            first + 1,
            w.lines().nth(first).unwrap_or("<end of file>"),
            g.lines().nth(first).unwrap_or("<end of file>"),
        );
    }
}

fn expected_example_file(name: &str) -> Vec<u8> {
    let p = example_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn assert_example_output(how: &str, out: &Path) {
    for name in [
        "incidents.jsonl",
        "problems.jsonl",
        "rejected.jsonl",
        "summary.json",
    ] {
        let got = std::fs::read(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_same_bytes(
            &format!("{how}: {name}"),
            &expected_example_file(name),
            &got,
        );
    }
}

#[test]
fn example_in_process_is_byte_exact() {
    let dir = example_dir();
    let mut engine = engine_from_file(&dir.join("config.toml"));
    let out = tempfile::tempdir().expect("tempdir");
    correlator::replay::run(&mut engine, &dir.join("input.jsonl"), out.path()).expect("replay");
    assert_example_output("in process", out.path());
}

#[test]
fn example_binary_is_byte_exact_and_deterministic() {
    let dir = example_dir();
    let mut outputs = Vec::new();
    for run in 0..2 {
        let out = tempfile::tempdir().expect("tempdir");
        let result = std::process::Command::new(env!("CARGO_BIN_EXE_correlator"))
            .arg("replay")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .arg("--input")
            .arg(dir.join("input.jsonl"))
            .arg("--out-dir")
            .arg(out.path())
            .env("RUST_LOG", "warn")
            .output()
            .expect("run correlator");
        assert!(
            result.status.success(),
            "run {run}: {:?}\n{}",
            result.status,
            String::from_utf8_lossy(&result.stderr)
        );
        assert_example_output(&format!("binary run {run}"), out.path());
        outputs.push(out);
    }
    for name in [
        "incidents.jsonl",
        "problems.jsonl",
        "rejected.jsonl",
        "summary.json",
    ] {
        let a = std::fs::read(outputs[0].path().join(name)).expect("run 0");
        let b = std::fs::read(outputs[1].path().join(name)).expect("run 1");
        assert_same_bytes(&format!("second run vs first: {name}"), &a, &b);
    }
}

/// The example also satisfies the hand-written checks of its README (a few
/// facts stated there, so the byte-exact snapshot is not the only guard).
#[test]
fn example_matches_its_readme_claims() {
    run_case("example");
}
