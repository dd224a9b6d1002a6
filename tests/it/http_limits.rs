//! The HTTP edge under hostile or sloppy clients, over raw TCP against a
//! real daemon (in process, mock cluster): headers sent slowly, bodies that
//! never finish, unauthenticated bodies, too many connections, and the
//! JSON error body of every refusal.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use correlator::config::Config;
use correlator::daemon::Daemon;
use correlator::engine::EngineConfig;
use serde_json::Value;

use crate::brokers::mock::MockKafka;

const TOKEN: &str = "edge-s3cret";

/// A daemon with `http` appended to its `[http]` section.
struct Edge {
    addr: SocketAddr,
    daemon: Option<Daemon>,
    _kafka: MockKafka,
    _dir: tempfile::TempDir,
}

impl Drop for Edge {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.take() {
            let _ = d.shutdown();
        }
    }
}

fn token_env(test: &str) -> String {
    format!("CORRELATOR_EDGE_TOKEN_{}_{test}", std::process::id())
}

fn config(brokers: &str, dir: &std::path::Path, env: &str, http: &str) -> Config {
    let text = format!(
        r#"
[kafka]
brokers = "{brokers}"
assignment = "manual"
[store]
path = "{s}"
[http]
listen = "127.0.0.1:0"
token_env = "{env}"
max_body_bytes = 8192
{http}
"#,
        s = dir.join("state.redb").display()
    );
    Config::parse(&text, "edge.toml").unwrap()
}

fn start(test: &str, http: &str) -> Edge {
    let kafka = MockKafka::start(1);
    for t in ["alerts", "incidents", "alerts-dlq"] {
        kafka.create_topic(t, 1);
    }
    let dir = tempfile::tempdir().unwrap();
    let env = token_env(test);
    std::env::set_var(&env, TOKEN);
    let cfg = config(&kafka.bootstrap(), dir.path(), &env, http);
    let ec = EngineConfig::compile(&cfg).unwrap();
    let d = Daemon::start(cfg, ec, true, false, Duration::from_secs(10)).unwrap();
    Edge {
        addr: d.http_addr,
        daemon: Some(d),
        _kafka: kafka,
        _dir: dir,
    }
}

/// Reads until the server closes the connection or `limit` passes.
/// Returns what was read and whether the server closed it.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break false
            }
            // A reset after the server gave up on us is a close too.
            Err(_) => break true,
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// Status code and JSON body of a raw response.
fn parse(text: &str) -> (u16, Value) {
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |x| x.1);
    let v = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
    (status, v)
}

/// Sends `head` (request line and headers, no blank line) plus `rest`,
/// then reads the whole answer (the server must close within 10 s).
fn exchange(addr: SocketAddr, head: &str, rest: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(format!("{head}\r\nHost: t\r\nConnection: close\r\n\r\n{rest}").as_bytes())
        .unwrap();
    let (text, closed) = read_until_closed(&mut s, Duration::from_secs(10));
    assert!(closed, "{head}: connection still open; got {text:?}");
    parse(&text)
}

/// A JSON error body: `{"error": <text containing want>, "code": status}`.
fn assert_json_error(what: &str, got: (u16, Value), status: u16, want: &str) {
    let (code, v) = got;
    assert_eq!(code, status, "{what}: {v}");
    assert_eq!(v["code"].as_u64(), Some(u64::from(status)), "{what}: {v}");
    let e = v["error"].as_str().unwrap_or_default();
    assert!(e.contains(want), "{what}: error {e:?} lacks {want:?}");
}

#[test]
fn slow_headers_are_cut_off_after_header_timeout() {
    let e = start("slow_headers", "header_timeout = \"1s\"");
    let mut s = TcpStream::connect(e.addr).unwrap();
    let mut w = s.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_w = stop.clone();
    // One header byte every 50 ms: never a complete head, never idle.
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n");
        for b in b"X-Slow: ".iter().chain(&[b'a'; 200]) {
            if stop_w.load(Ordering::Relaxed) || w.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let t0 = Instant::now();
    let (text, closed) = read_until_closed(&mut s, Duration::from_secs(8));
    let took = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(closed, "slow headers held the connection for {took:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "closed after {took:?}, header_timeout is 1s"
    );
    assert!(!text.contains(" 200 "), "slow request was served: {text}");

    // A kept-alive connection left idle after its answer closes as well.
    let mut s = TcpStream::connect(e.addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let t0 = Instant::now();
    let (text, closed) = read_until_closed(&mut s, Duration::from_secs(8));
    let took = t0.elapsed();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        closed && took < Duration::from_secs(5),
        "idle kept-alive connection open after {took:?}"
    );
}

#[test]
fn stalled_or_oversized_body_is_refused() {
    let e = start("stalled_body", "body_timeout = \"1s\"");
    // Declares 1000 bytes, sends 10, then waits.
    let mut s = TcpStream::connect(e.addr).unwrap();
    s.write_all(
        format!(
            "POST /api/v1/alerts HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{{\"labels\""
        )
        .as_bytes(),
    )
    .unwrap();
    let t0 = Instant::now();
    let (text, closed) = read_until_closed(&mut s, Duration::from_secs(8));
    let took = t0.elapsed();
    assert!(
        closed,
        "stalled body held the connection for {took:?}: {text:?}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "answered after {took:?}, body_timeout is 1s"
    );
    assert_json_error("stalled body", parse(&text), 408, "http.body_timeout");

    // A declared length over max_body_bytes is refused before any byte of it.
    let mut s = TcpStream::connect(e.addr).unwrap();
    s.write_all(
        format!(
            "POST /api/v1/alerts HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Length: 100000000\r\n\r\n0123456789"
        )
        .as_bytes(),
    )
    .unwrap();
    let (text, closed) = read_until_closed(&mut s, Duration::from_secs(8));
    assert!(closed, "oversized declared body: connection still open");
    assert_json_error(
        "declared 100000000 bytes",
        parse(&text),
        413,
        "Content-Length 100000000",
    );

    // Chunked, no length declared: cut at the limit.
    let chunk = "x".repeat(5000);
    let body = format!("1388\r\n{chunk}\r\n1388\r\n{chunk}\r\n0\r\n\r\n");
    assert_json_error(
        "chunked 10000 bytes",
        exchange(
            e.addr,
            &format!(
                "POST /api/v1/alerts HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Transfer-Encoding: chunked"
            ),
            &body,
        ),
        413,
        "over the limit of 8192 bytes",
    );
}

#[test]
fn unauthenticated_post_gets_401_before_its_body() {
    // A long body timeout: the answer must not wait for it.
    let e = start("auth_first", "body_timeout = \"30s\"");
    for path in [
        "/api/v1/alerts",
        "/api/v1/incidents/inc-0000000000000001/acknowledge",
        "/api/v1/problems/prb-0000000000000001/known-error",
    ] {
        for auth in ["", "Authorization: Bearer wrong\r\n"] {
            let mut s = TcpStream::connect(e.addr).unwrap();
            s.write_all(
                format!(
                    "POST {path} HTTP/1.1\r\nHost: t\r\n{auth}Content-Type: application/json\r\n\
                     Content-Length: 50000000\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
            let t0 = Instant::now();
            let (text, closed) = read_until_closed(&mut s, Duration::from_secs(10));
            let took = t0.elapsed();
            assert!(closed, "{path} {auth:?}: connection still open: {text:?}");
            assert!(took < Duration::from_secs(5), "{path}: 401 took {took:?}");
            assert_json_error(path, parse(&text), 401, "");
        }
    }
    // The webhook still counts its unauthorised calls.
    let (_, v) = exchange(e.addr, "GET /metrics HTTP/1.1", "");
    let metrics = v.as_str().unwrap_or_default();
    assert!(
        metrics.contains("correlator_webhook_requests_total{outcome=\"unauthorized\"} 2"),
        "{metrics}"
    );
}

#[test]
fn connection_over_max_connections_waits_until_one_closes() {
    let e = start(
        "conn_limit",
        "max_connections = 2\nheader_timeout = \"60s\"",
    );
    // Two connections held open by incomplete requests.
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(e.addr).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    let mut third = TcpStream::connect(e.addr).unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (text, closed) = read_until_closed(&mut third, Duration::from_millis(1500));
    assert!(
        text.is_empty() && !closed,
        "third connection served while two were held: {text:?}"
    );
    drop(held.remove(0));
    let (text, closed) = read_until_closed(&mut third, Duration::from_secs(10));
    assert!(closed, "third connection never finished: {text:?}");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    drop(held);
}

#[test]
fn every_error_is_json() {
    let e = start("json_errors", "");
    let cases: [(&str, &str, u16, &str); 5] = [
        (
            "unknown route",
            "GET /nope HTTP/1.1",
            404,
            "no route for GET /nope",
        ),
        (
            "wrong method on a read",
            "DELETE /api/v1/incidents HTTP/1.1",
            405,
            "DELETE is not allowed on /api/v1/incidents",
        ),
        (
            "wrong method on the webhook",
            "GET /api/v1/alerts HTTP/1.1",
            405,
            "GET is not allowed",
        ),
        (
            "bad path encoding",
            "GET /api/v1/incidents/%FF HTTP/1.1",
            400,
            "UTF-8",
        ),
        (
            "bad path encoding of a problem id",
            "GET /api/v1/problems/%C3%28 HTTP/1.1",
            400,
            "UTF-8",
        ),
    ];
    for (what, head, status, want) in cases {
        assert_json_error(what, exchange(e.addr, head, ""), status, want);
    }
    // A 405 still names the methods that are allowed.
    let mut s = TcpStream::connect(e.addr).unwrap();
    s.write_all(b"GET /api/v1/alerts HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (text, _) = read_until_closed(&mut s, Duration::from_secs(10));
    assert!(
        text.to_ascii_lowercase().contains("\r\nallow: post\r\n"),
        "{text}"
    );
    let json = |body: &str| {
        exchange(
            e.addr,
            &format!(
                "POST /api/v1/problems/prb-0000000000000001/known-error HTTP/1.1\r\n\
                 Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}",
                body.len()
            ),
            body,
        )
    };
    assert_json_error("bad JSON", json("{oops"), 400, "request body");
    let big = "x".repeat(9000);
    assert_json_error("too large", json(&big), 413, "http.max_body_bytes");
}

#[test]
fn bearer_scheme_is_case_insensitive() {
    let e = start("bearer_case", "");
    // Past the token check this request fails on its JSON (400), before it
    // on the token (401): the status tells which.
    let call = |auth: &str| {
        exchange(
            e.addr,
            &format!(
                "POST /api/v1/problems/prb-0000000000000001/known-error HTTP/1.1\r\n\
                 Authorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 5"
            ),
            "{oops",
        )
    };
    for auth in [
        format!("Bearer {TOKEN}"),
        format!("bearer {TOKEN}"),
        format!("BEARER {TOKEN}"),
        format!("bEaReR  {TOKEN}"),
    ] {
        assert_json_error(&auth, call(&auth), 400, "request body");
    }
    assert_json_error("Basic", call("Basic dXNlcjpwYXNz"), 401, "Bearer scheme");
    assert_json_error("bare token", call(TOKEN), 401, "Bearer scheme");
    assert_json_error(
        "wrong token",
        call("bearer nope"),
        401,
        "invalid bearer token",
    );
    assert_json_error(
        "token with a suffix",
        call(&format!("Bearer {TOKEN}x")),
        401,
        "invalid bearer token",
    );
}

#[test]
fn blank_or_unprintable_token_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (value, want)) in [
        ("", "is set but blank"),
        ("   ", "is set but blank"),
        ("\t\n", "is set but blank"),
        ("s3cret\n", "control character at byte 6"),
        ("two words", "space or control character at byte 3"),
    ]
    .into_iter()
    .enumerate()
    {
        let env = token_env(&format!("blank_{i}"));
        std::env::set_var(&env, value);
        // No broker is needed: the token is checked before anything starts.
        let store_dir = dir.path().join(i.to_string());
        std::fs::create_dir_all(&store_dir).unwrap();
        let cfg = config("127.0.0.1:9", &store_dir, &env, "");
        let ec = EngineConfig::compile(&cfg).unwrap();
        match Daemon::start(cfg, ec, false, false, Duration::from_secs(5)) {
            Ok(d) => {
                let _ = d.shutdown();
                panic!("token {value:?} accepted");
            }
            Err(err) => {
                let msg = format!("{err:#}");
                assert!(msg.contains(&env), "{value:?}: {msg}");
                assert!(msg.contains(want), "{value:?}: {msg}");
            }
        }
        std::env::remove_var(&env);
    }
}
