//! The command line, run as the real binary: `check-config` on good and bad
//! configurations (exit code 78, EX_CONFIG, with the exact error text),
//! `replay`'s exit codes, and `send` with a line no producer can send.
//!
//! `tests/golden/config/bad/NAME.toml` is one bad configuration;
//! `NAME.err` beside it is the exact standard error `correlator check-config`
//! prints for it when run from the repository root with the relative path.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::repo_root;

const EX_CONFIG: i32 = 78;

/// Runs the binary from the repository root.
fn correlator(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_correlator"))
        .args(args)
        .current_dir(repo_root())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run correlator")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_accepts_the_shipped_config() {
    let out = correlator(&["check-config", "config/correlator.toml"]);
    assert!(
        out.status.success(),
        "{:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("config/correlator.toml: ok ("),
        "stdout: {stdout}"
    );
    assert_eq!(text(&out.stderr), "");
}

/// A matcher the UTF-8 and classic parsers read differently is accepted
/// with a warning naming its key, its reading in each mode and what to
/// write instead (`tests/golden/matchers/mode_dependent.warn`).
#[test]
fn check_config_warns_where_a_matcher_reads_differently_per_mode() {
    let file = "tests/golden/matchers/mode_dependent.toml";
    let out = correlator(&["check-config", file]);
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        text(&out.stderr)
    );
    let want = std::fs::read_to_string(repo_root().join(file.replace(".toml", ".warn")))
        .expect("the .warn file");
    assert_eq!(text(&out.stderr), want);
}

/// Every config the golden replays use is valid too.
#[test]
fn check_config_accepts_every_golden_replay_config() {
    let dir = repo_root().join("tests/golden/replay");
    let mut n = 0;
    for case in std::fs::read_dir(&dir)
        .expect("golden replay dir")
        .flatten()
    {
        let config = case.path().join("config.toml");
        if !config.exists() {
            continue;
        }
        let rel = config.strip_prefix(repo_root()).expect("under the repo");
        let rel = rel.to_str().expect("UTF-8 path");
        let out = correlator(&["check-config", rel]);
        assert!(out.status.success(), "{rel}: {}", text(&out.stderr));
        n += 1;
    }
    assert!(n >= 10, "only {n} golden replay configs");
}

fn bad_configs() -> Vec<std::path::PathBuf> {
    let dir = repo_root().join("tests/golden/config/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/golden/config/bad")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn check_config_rejects_each_bad_config_with_its_exact_error() {
    let files = bad_configs();
    assert!(files.len() >= 7, "only {} bad configs", files.len());
    check_bad_configs(&files);
}

fn check_bad_configs(files: &[std::path::PathBuf]) {
    let mut failures = Vec::new();
    for file in files {
        let rel = file.strip_prefix(repo_root()).expect("under the repo");
        let rel = rel.to_str().expect("UTF-8 path");
        let err_path = file.with_extension("err");
        let want = match std::fs::read_to_string(&err_path) {
            Ok(w) => w,
            Err(e) => {
                failures.push(format!("{rel}: no {}: {e}", err_path.display()));
                continue;
            }
        };
        let out = correlator(&["check-config", rel]);
        let got = text(&out.stderr);
        if out.status.code() != Some(EX_CONFIG) {
            failures.push(format!(
                "{rel}: exit code\n  want: {EX_CONFIG}\n   got: {:?}",
                out.status.code()
            ));
        }
        if !out.stdout.is_empty() {
            failures.push(format!(
                "{rel}: stdout should be empty, got {}",
                text(&out.stdout)
            ));
        }
        if got != want {
            failures.push(format!("{rel}: stderr\n  want:\n{want}\n   got:\n{got}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// Checks one bad config of `tests/golden/config/bad` by name.
fn check_bad_config(name: &str) {
    check_bad_configs(&[repo_root().join(format!("tests/golden/config/bad/{name}.toml"))]);
}

#[test]
fn check_config_refuses_a_huge_duration_naming_its_key() {
    check_bad_config("huge_duration");
}

#[test]
fn check_config_refuses_a_nanosecond_tick() {
    check_bad_config("tick_too_short");
}

#[test]
fn check_config_refuses_an_unknown_librdkafka_property_naming_its_key() {
    check_bad_config("unknown_kafka_property");
}

/// Keys that cannot be read (unknown, bad duration, wrong type) are all
/// reported, not only the first.
#[test]
fn check_config_reports_every_unreadable_key_at_once() {
    check_bad_config("several_parse_errors");
}

/// `run` refuses a bad config with the same code and text as
/// `check-config`, before it opens the store or connects to Kafka.
#[test]
fn run_refuses_a_bad_config_like_check_config() {
    for name in ["huge_duration", "unknown_kafka_property"] {
        let config = format!("tests/golden/config/bad/{name}.toml");
        let out = correlator(&["run", "--config", &config]);
        assert_eq!(out.status.code(), Some(EX_CONFIG), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stderr),
            std::fs::read_to_string(
                repo_root().join(format!("tests/golden/config/bad/{name}.err"))
            )
            .expect("err file"),
            "{name}"
        );
    }
}

#[test]
fn every_bad_config_error_file_has_its_config() {
    let dir = repo_root().join("tests/golden/config/bad");
    for e in std::fs::read_dir(&dir).expect("bad dir").flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "err") {
            assert!(
                p.with_extension("toml").exists(),
                "{} has no .toml beside it",
                p.display()
            );
        }
    }
}

#[test]
fn replay_with_a_bad_config_exits_78() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("in.jsonl");
    std::fs::write(&input, "").expect("write input");
    let out_dir = tmp.path().join("out");
    let out = correlator(&[
        "replay",
        "--config",
        "tests/golden/config/bad/topology_cycle.toml",
        "--input",
        input.to_str().expect("UTF-8"),
        "--out-dir",
        out_dir.to_str().expect("UTF-8"),
    ]);
    assert_eq!(out.status.code(), Some(EX_CONFIG), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        std::fs::read_to_string(repo_root().join("tests/golden/config/bad/topology_cycle.err"))
            .expect("err file")
    );
    assert!(!out_dir.exists(), "nothing is written with a bad config");
}

#[test]
fn replay_with_a_missing_input_fails_but_not_as_a_config_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("missing.jsonl");
    let out = correlator(&[
        "replay",
        "--config",
        "config/correlator.toml",
        "--input",
        missing.to_str().expect("UTF-8"),
        "--out-dir",
        tmp.path().join("out").to_str().expect("UTF-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: opening ") && stderr.contains("missing.jsonl"),
        "{stderr}"
    );
}

/// The replay's summary line on stdout is summary.json, compact.
#[test]
fn replay_prints_the_summary() {
    let case = Path::new("tests/golden/replay/dedup_resends");
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = correlator(&[
        "replay",
        "--config",
        case.join("config.toml").to_str().expect("UTF-8"),
        "--input",
        case.join("input.jsonl").to_str().expect("UTF-8"),
        "--out-dir",
        tmp.path().to_str().expect("UTF-8"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    let file: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("summary.json")).expect("summary.json"),
    )
    .expect("JSON");
    assert_eq!(printed, file);
    assert_eq!(printed["records"], 9);
}

/// `correlator send` with a line no producer can send (over the 1,000,000
/// byte message limit) between two small ones: the line is reported with its
/// number, size and the limit, the lines around it are delivered, and the
/// command exits non-zero. The child gets a bounded time, so a send that
/// retries the line forever fails the test instead of hanging it.
#[test]
fn send_reports_a_line_over_the_message_limit_and_sends_the_rest() {
    use crate::brokers::mock::MockKafka;
    use crate::brokers::{consume_blocking, unique_name, wait_until, Attach};
    use std::process::Stdio;
    use std::time::Duration;

    let kafka = MockKafka::start(1);
    let topic = unique_name("send-oversized");
    kafka.create_topic(&topic, 1);
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("alerts.jsonl");
    let small = |name: &str| format!(r#"{{"labels":{{"alertname":"{name}","cluster":"eu1"}}}}"#);
    let big = format!(
        r#"{{"labels":{{"alertname":"Big","cluster":"eu1"}},"annotations":{{"description":"{}"}}}}"#,
        "x".repeat(1_500_000)
    );
    let lines = [small("First"), big.clone(), small("Third")];
    std::fs::write(&input, lines.join("\n") + "\n").expect("write input");

    let mut child = Command::new(env!("CARGO_BIN_EXE_correlator"))
        .args(["send", "--brokers", &kafka.bootstrap(), "--topic", &topic])
        .arg(&input)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run correlator send");
    let exited = wait_until(Duration::from_secs(60), || {
        child.try_wait().expect("wait for send").is_some()
    });
    if !exited {
        child.kill().expect("kill send");
        child.wait().expect("reap send");
        panic!("correlator send still running after 60 s");
    }
    let status = child.wait().expect("send status");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");

    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    let size = big.len() + "eu1".len();
    let want = format!(
        "{}: line 2: message of {size} bytes (value and key) is over the limit of \
         1000000 bytes (--max-message-bytes, framing included); not sent\n",
        input.display()
    );
    assert!(stderr.contains(&want), "want {want:?} in stderr: {stderr}");
    assert!(
        stderr.contains(&format!("sent 2 of 3 records to {topic}\n")),
        "stderr: {stderr}"
    );
    assert!(
        stderr.ends_with("error: 1 record not sent\n"),
        "stderr: {stderr}"
    );

    let got = consume_blocking(
        &kafka.bootstrap(),
        &topic,
        2,
        Duration::from_secs(30),
        Attach::Assign,
    );
    let payloads: Vec<&str> = got.records.iter().map(|r| r.payload_str()).collect();
    assert_eq!(
        payloads,
        [small("First"), small("Third")],
        "{:?}",
        got.errors
    );
    assert!(got.records.iter().all(|r| r.key_str() == "eu1"));
}
