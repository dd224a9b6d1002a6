//! What a person sees, run as the real binary: `tail`'s line per event,
//! `incidents show` and `problems show` detail views (colour off) and their
//! `--json`, against golden files; the daemon's log file (no colour codes,
//! lifecycle lines) and two demo runs that do not share state.
//!
//! The events and API answers are those of the byte-exact example replay
//! (`tests/golden/replay/example/`), rendered as the daemon renders them,
//! so they are fixed. `CORRELATOR_BLESS=1` rewrites `tests/golden/cli/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use correlator::kafka::events;
use serde_json::Value;

use crate::brokers::mock::MockKafka;
use crate::brokers::{produce_all_blocking, wait_until, Msg};
use crate::support::{engine_from_file, repo_root};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Compares with `tests/golden/cli/NAME`, or writes it when blessing.
fn golden(name: &str, got: &str) {
    let path = repo_root().join("tests/golden/cli").join(name);
    if std::env::var_os("CORRELATOR_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (CORRELATOR_BLESS=1 writes it)", path.display()));
    assert_eq!(got, want, "{} differs", path.display());
}

/// The example replay as the daemon would publish and serve it: every
/// event (incident and problem) in order, and the engine at the end.
struct Example {
    events: Vec<Vec<u8>>,
    engine: correlator::engine::Engine,
}

fn example() -> Example {
    let dir = repo_root().join("tests/golden/replay/example");
    let mut engine = engine_from_file(&dir.join("config.toml"));
    let input = std::fs::read_to_string(dir.join("input.jsonl")).unwrap();
    let mut out = Vec::new();
    let mut last = None;
    let lines = input.lines().filter(|l| !l.trim().is_empty());
    // After the last record, an hour passes: every incident settles (and
    // meets problem management).
    for line in lines.map(Some).chain([None]) {
        let mut evs = match line {
            Some(line) => {
                let Ok(r) = correlator::replay::parse_line(line) else {
                    continue;
                };
                last = Some(r.ts);
                engine.handle(&r.body, r.ts).events
            }
            None => match last {
                Some(t) => engine.tick(t.plus(std::time::Duration::from_secs(3600))),
                None => Vec::new(),
            },
        };
        evs.extend(engine.take_updates());
        for ev in engine.take_problem_events() {
            let p = engine.problem(ev.problem).unwrap();
            out.push(events::render_problem(&ev, p));
        }
        for ev in evs {
            let inc = engine.incident(ev.incident).unwrap();
            out.push(events::render(&ev, inc));
        }
    }
    Example {
        events: out,
        engine,
    }
}

fn correlator(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_correlator"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("NO_COLOR")
        .output()
        .expect("run correlator")
}

#[test]
fn tail_prints_one_aligned_line_per_event_and_json_as_published() {
    let ex = example();
    assert!(ex.events.len() >= 10, "{} events", ex.events.len());
    let kafka = MockKafka::start(1);
    kafka.create_topic("incidents", 1);
    let msgs: Vec<Msg> = ex.events.iter().map(|e| Msg::new("k", e)).collect();
    produce_all_blocking(&kafka.bootstrap(), "incidents", &msgs);
    let n = ex.events.len().to_string();
    let base = [
        "tail",
        "--brokers",
        &kafka.bootstrap(),
        "--from-beginning",
        "--limit",
        &n,
        "--idle",
        "30s",
    ];

    let human = correlator(&[&base[..], &["--color", "never"]].concat());
    assert!(human.status.success(), "{}", text(&human.stderr));
    let stdout = text(&human.stdout);
    assert_eq!(stdout.lines().count(), ex.events.len(), "{stdout}");
    assert!(!stdout.contains('\x1b'));
    assert!(stdout.contains("root postgres/"), "{stdout}");
    golden("tail.txt", &stdout);

    let coloured = correlator(&[&base[..], &["--color", "always"]].concat());
    assert!(text(&coloured.stdout).contains('\x1b'));

    let json = correlator(&[&base[..], &["--json"]].concat());
    let want: Vec<String> = ex.events.iter().map(|e| text(e) + "\n").collect();
    assert_eq!(text(&json.stdout), want.concat());
}

/// Serves `answers` (path → JSON) over HTTP until dropped with the process.
fn serve(answers: Vec<(String, Value)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
            let (status, body) = match answers.iter().find(|(p, _)| *p == path) {
                Some((_, v)) => ("200 OK", v.to_string()),
                None => ("404 Not Found", r#"{"error":"no such thing"}"#.to_string()),
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn incidents_and_problems_show_print_a_detail_view_and_json() {
    let ex = example();
    let incident = ex
        .engine
        .incidents_sorted()
        .into_iter()
        .filter(|i| i.root_cause.is_some() && i.members.len() >= 2)
        .max_by_key(|i| i.members.len())
        .expect("an incident with a root cause");
    let iv = serde_json::to_value(incident.view(true)).unwrap();
    let problem = ex.engine.problems_sorted()[0];
    let mut pv = problem.view();
    pv.version = Some(problem.version);
    let pv = serde_json::to_value(pv).unwrap();
    let (iid, pid) = (incident.id.to_string(), problem.id.to_string());
    let url = serve(vec![
        (format!("/api/v1/incidents/{iid}"), iv.clone()),
        (format!("/api/v1/problems/{pid}"), pv.clone()),
        (
            "/api/v1/incidents?limit=50".into(),
            serde_json::json!({"incidents": [iv.clone()], "next_cursor": null}),
        ),
    ]);
    let run = |args: &[&str]| {
        let out = correlator(&[args, &["--url", &url, "--color", "never"]].concat());
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };

    let show = run(&["incidents", "show", &iid]);
    assert!(show.contains("Root cause:  postgres/"), "{show}");
    assert!(
        show.contains("Timeline:") && show.contains("Alerts ("),
        "{show}"
    );
    golden("incident-show.txt", &show);
    let json: Value = serde_json::from_str(&run(&["incidents", "show", &iid, "--json"])).unwrap();
    assert_eq!(json, iv);
    assert_eq!(json["root_cause_alert"]["service"], "postgres");
    golden("incident-list.txt", &run(&["incidents", "list"]));

    let show = run(&["problems", "show", &pid]);
    assert!(show.contains(&format!("Problem {pid}")), "{show}");
    golden("problem-show.txt", &show);
    let json: Value =
        serde_json::from_str(&run(&["problems", "show", &pid, "-o", "json"])).unwrap();
    assert_eq!(json, pv);

    let missing = correlator(&["incidents", "show", "inc-0000000000000000", "--url", &url]);
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("404: no such thing"),
        "{}",
        text(&missing.stderr)
    );
}

/// `correlator run --embedded-kafka --demo` with standard error in a file,
/// from `dir`; returns the child and the log path.
fn start_demo(dir: &Path, n: usize) -> (std::process::Child, std::path::PathBuf) {
    let config = dir.join("demo.toml");
    std::fs::write(&config, "[http]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let log = dir.join(format!("run{n}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_correlator"))
        .args([
            "run",
            "--embedded-kafka",
            "--demo",
            "--embedded-kafka-listen",
        ])
        .arg("127.0.0.1:0")
        .arg("--config")
        .arg(&config)
        .current_dir(dir)
        .env("RUST_LOG", "info,rdkafka=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("run correlator");
    (child, log)
}

fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exited = wait_until(Duration::from_secs(40), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        panic!("daemon did not stop on SIGTERM");
    }
}

fn read(path: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    std::fs::File::open(path)
        .unwrap()
        .read_to_end(&mut v)
        .unwrap();
    v
}

/// A log file has no colour codes and shows each incident opening with its
/// fields; a second demo run starts with an empty store, not the first
/// run's incidents and offsets.
#[test]
fn demo_logs_to_a_file_without_colour_and_two_runs_do_not_share_state() {
    let dir = tempfile::tempdir().unwrap();
    let (first, log) = start_demo(dir.path(), 1);
    let opened = wait_until(Duration::from_secs(60), || {
        text(&read(&log)).contains("incident opened")
    });
    stop(first);
    let bytes = read(&log);
    let logged = text(&bytes);
    assert!(opened, "no incident opened line in: {logged}");
    assert!(
        !bytes.contains(&0x1b),
        "colour codes in the log file: {logged:?}"
    );
    let line = logged
        .lines()
        .find(|l| l.contains("incident opened"))
        .unwrap();
    for field in [
        "incident_id=inc-",
        "priority=P",
        "severity=",
        "title=",
        "alerts=",
    ] {
        assert!(line.contains(field), "{field} missing in {line}");
    }

    let (second, log) = start_demo(dir.path(), 2);
    let loaded = wait_until(Duration::from_secs(30), || {
        text(&read(&log)).contains("state loaded")
    });
    // The consumer has checked its offsets against the new broker (where a
    // shared store warns that the broker restarted empty) once it assigned.
    let assigned = wait_until(Duration::from_secs(30), || {
        text(&read(&log)).contains("assigned partitions manually")
    });
    stop(second);
    let logged = text(&read(&log));
    assert!(loaded && assigned, "{logged}");
    let state = logged.lines().find(|l| l.contains("state loaded")).unwrap();
    assert!(
        state.contains("incidents=0"),
        "second demo loaded state: {state}"
    );
    assert!(!logged.contains("restarted empty"), "{logged}");
    assert!(
        !dir.path().join("data").exists(),
        "the demo wrote its store into the working directory"
    );
}

/// Completions and the man page come from the command line's definition:
/// every subcommand is in them.
#[test]
fn completions_and_man_page_name_every_subcommand() {
    let bash = correlator(&["completions", "bash"]);
    assert!(bash.status.success(), "{}", text(&bash.stderr));
    let man = correlator(&["man"]);
    assert!(man.status.success(), "{}", text(&man.stderr));
    let (bash, man) = (text(&bash.stdout), text(&man.stdout));
    assert!(man.starts_with(".ie"), "{}", &man[..man.len().min(200)]);
    assert!(man.contains(".TH correlator"), "{man}");
    for sub in [
        "run",
        "demo",
        "tail",
        "incidents",
        "problems",
        "check-config",
        "completions",
    ] {
        assert!(bash.contains(sub), "{sub} not in bash completions");
        // roff escapes hyphens.
        let roff = sub.replace('-', "\\-");
        assert!(man.contains(&roff), "{sub} not in the man page");
    }
    for shell in ["zsh", "fish"] {
        let out = correlator(&["completions", shell]);
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
}
