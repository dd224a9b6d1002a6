//! A real Tansu 0.6.0 broker (sqlite storage) as a child process.
//! Facts and traps: `../shared/TANSU.md`.
//!
//! ```ignore
//! let mut broker = Tansu::start();              // own port + tempdir, ready, header index applied
//! broker.create_topic("alerts", 3);             // waits until metadata shows 3 partitions
//! let bootstrap = broker.bootstrap();           // "127.0.0.1:PORT"
//! broker.kill();                                // SIGKILL (or stop(): SIGTERM, 10 s, SIGKILL)
//! broker.restart();                             // same data dir and port, ready again
//! assert!(ok, "…\n{}", broker.log());           // broker log for failure messages
//! ```
//!
//! Environment:
//! - `CORRELATOR_TANSU_BIN`: the tansu binary; otherwise `scripts/install-tansu.sh`
//!   is run (it builds the binary into a cache the first time, ~10 minutes).
//! - `CORRELATOR_KEEP_TANSU=1`: keep the data directory (path is printed).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use tempfile::TempDir;

use super::{block_on, client_config, drop_with_deadline, wait_for_topic, CLOSE_DEADLINE};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(10);
const TOPIC_TIMEOUT: Duration = Duration::from_secs(15);
const LOG_FILE: &str = "tansu.log";
const DB_FILE: &str = "tansu.db";

/// The header index that keeps sqlite fetches fast (TANSU.md difference 1).
const HEADER_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS header_topition_offset ON header (topition, offset_id)";

/// Environment variables tansu reads that would override or add to our flags.
const TANSU_ENV: &[&str] = &[
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

pub struct Tansu {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    starts: u32,
}

/// Path of the tansu binary (resolved once per test process).
pub fn tansu_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("CORRELATOR_TANSU_BIN") {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "CORRELATOR_TANSU_BIN={} is not a file",
                p.display()
            );
            return p;
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("bash")
            .arg(root.join("scripts/install-tansu.sh"))
            .current_dir(root)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/install-tansu.sh");
        assert!(
            out.status.success(),
            "scripts/install-tansu.sh failed ({}); set CORRELATOR_TANSU_BIN to skip it",
            out.status
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .expect("install-tansu.sh printed no path");
        let p = PathBuf::from(line.trim());
        assert!(p.is_file(), "install-tansu.sh printed {line:?}, not a file");
        p
    })
    .clone()
}

/// A free 127.0.0.1 port: bind :0, read it, drop the listener.
fn pick_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[derive(Debug)]
enum StartError {
    /// The port was taken right before spawning.
    PortBusy,
    /// The child exited during startup (a taken port makes it exit 0).
    Exited(String),
    /// Not ready in time.
    Timeout(String),
}

impl Tansu {
    /// Starts a broker on a fresh port and data directory, waits until it is
    /// ready (<= 30 s) and applies the header index. Panics with the broker
    /// log if it cannot.
    pub fn start() -> Tansu {
        let dir = tempfile::Builder::new()
            .prefix("tansu-")
            .tempdir()
            .expect("create tansu tempdir");
        let mut t = Tansu {
            bin: tansu_bin(),
            dir,
            port: 0,
            child: None,
            starts: 0,
        };
        // A port picked with bind(:0) can be taken again before tansu binds it
        // (and tansu then exits 0): pick another one and retry.
        let mut errors = Vec::new();
        for _ in 0..5 {
            t.port = pick_port();
            match t.spawn_and_wait() {
                Ok(()) => {
                    t.apply_header_index();
                    return t;
                }
                Err(e @ (StartError::PortBusy | StartError::Exited(_))) => errors.push(e),
                Err(e) => panic!("tansu did not start: {e:?}\n{}", t.log()),
            }
        }
        panic!("tansu did not start after 5 ports: {errors:?}\n{}", t.log());
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory (cwd of the broker; holds tansu.db and tansu.log).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the broker process runs.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Creates `name` with `partitions` partitions (replication 1) with the
    /// admin API, then waits until metadata shows every partition with a
    /// leader (<= 15 s). An existing topic is accepted if its partition count
    /// matches.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = client_config(&self.bootstrap())
            .create()
            .unwrap_or_else(|e| panic!("create admin client: {e}"));
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let opts = AdminOptions::new()
            .operation_timeout(Some(Duration::from_secs(10)))
            .request_timeout(Some(Duration::from_secs(10)));
        let results = block_on(admin.create_topics([&topic], &opts))
            .unwrap_or_else(|e| panic!("create topic {name}: {e}\n{}", self.log()));
        drop_with_deadline("admin client", admin, CLOSE_DEADLINE);
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, e)) => panic!("create topic {t}: {e:?}\n{}", self.log()),
            }
        }
        wait_for_topic(&self.bootstrap(), name, partitions, TOPIC_TIMEOUT);
    }

    /// Graceful stop: SIGTERM, wait up to 10 s, then SIGKILL. Returns how long
    /// the broker took to exit. No-op if not running.
    pub fn stop(&mut self) -> Duration {
        let started = Instant::now();
        let Some(mut child) = self.child.take() else {
            return Duration::ZERO;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + STOP_GRACE;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if matches!(child.try_wait(), Ok(None)) {
                self.note(&format!("SIGTERM not honoured in {STOP_GRACE:?}: SIGKILL"));
                let _ = child.kill();
            }
        }
        let status = child.wait();
        self.note(&format!(
            "stopped (SIGTERM) after {:?}: {status:?}",
            started.elapsed()
        ));
        started.elapsed()
    }

    /// SIGKILL, no grace. No-op if not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let status = child.wait();
            self.note(&format!("killed (SIGKILL): {status:?}"));
        }
    }

    /// Starts the broker again on the same data directory and port (stopping
    /// it gracefully first if it still runs), waits until ready (<= 30 s).
    /// Returns how long it took to be ready. Panics with the log if it cannot.
    pub fn restart(&mut self) -> Duration {
        if self.child.is_some() {
            self.stop();
        }
        let started = Instant::now();
        // The port must stay the same (clients know it). If something took
        // it meanwhile, wait for it to go away.
        let deadline = started + READY_TIMEOUT;
        loop {
            match self.spawn_and_wait() {
                Ok(()) => break,
                Err(StartError::PortBusy | StartError::Exited(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!(
                    "tansu did not restart on port {}: {e:?}\n{}",
                    self.port,
                    self.log()
                ),
            }
        }
        self.apply_header_index();
        started.elapsed()
    }

    /// The broker's log (stdout and stderr of every start, with markers).
    pub fn log(&self) -> String {
        let path = self.dir.path().join(LOG_FILE);
        match std::fs::read(&path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => format!("(no log at {}: {e})", path.display()),
        }
    }

    /// Appends a harness note to the log, so the log tells the whole story.
    fn note(&self, what: &str) {
        if let Ok(mut f) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(LOG_FILE))
        {
            let _ = writeln!(f, "=== harness: {what}");
        }
    }

    fn spawn_and_wait(&mut self) -> Result<(), StartError> {
        if !port_is_free(self.port) {
            return Err(StartError::PortBusy);
        }
        self.starts += 1;
        self.note(&format!("start #{} on port {}", self.starts, self.port));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(LOG_FILE))
            .expect("open tansu log");
        let log2: File = log.try_clone().expect("clone log handle");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut cmd = Command::new(&self.bin);
        cmd.arg("broker")
            .arg("--listener-url")
            .arg(&url)
            .arg("--advertised-listener-url")
            .arg(&url)
            .arg("--storage-engine")
            .arg(format!("sqlite://{DB_FILE}"))
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        for var in TANSU_ENV {
            cmd.env_remove(var);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        self.child = Some(child);
        let r = self.wait_ready();
        if r.is_err() {
            // Never leave a half-started broker behind.
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        r
    }

    /// Child alive + TCP connect + metadata returns a broker (<= 30 s).
    fn wait_ready(&mut self) -> Result<(), StartError> {
        let started = Instant::now();
        let deadline = started + READY_TIMEOUT;
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let mut client: Option<BaseConsumer> = None;
        let mut last = String::from("nothing tried yet");
        let result = loop {
            if let Some(status) = self.exit_status() {
                break Err(StartError::Exited(format!(
                    "exited during startup: {status}"
                )));
            }
            if Instant::now() >= deadline {
                break Err(StartError::Timeout(format!(
                    "not ready in {READY_TIMEOUT:?}: {last}"
                )));
            }
            if let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                last = format!("connect: {e}");
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let c = client.get_or_insert_with(|| {
                client_config(&self.bootstrap())
                    .create()
                    .expect("create metadata client")
            });
            match c.fetch_metadata(None, Duration::from_secs(1)) {
                Ok(md) if !md.brokers().is_empty() => break Ok(()),
                Ok(_) => last = "metadata lists no broker".into(),
                Err(e) => last = format!("metadata: {e}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(c) = client {
            drop_with_deadline("readiness client", c, CLOSE_DEADLINE);
        }
        result?;
        // A broker that lost the port race exits right away; the metadata may
        // have come from whoever holds the port. Make sure ours is alive.
        std::thread::sleep(Duration::from_millis(50));
        if let Some(status) = self.exit_status() {
            return Err(StartError::Exited(format!(
                "exited after readiness: {status}"
            )));
        }
        self.note(&format!("ready in {:?}", started.elapsed()));
        Ok(())
    }

    fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Creates the header index on tansu.db with python3's sqlite3, retrying
    /// while the schema is not there yet (<= 10 s). Idempotent.
    fn apply_header_index(&self) {
        const SCRIPT: &str = r#"
import sqlite3, sys, time
db, ddl = sys.argv[1], sys.argv[2]
deadline = time.time() + 10
while True:
    try:
        c = sqlite3.connect(db, timeout=10)
        c.execute(ddl)
        c.commit()
        n = c.execute("select count(*) from sqlite_master where type='index' and name='header_topition_offset'").fetchone()[0]
        c.close()
        if n != 1:
            raise sqlite3.OperationalError("index not visible after create")
        break
    except sqlite3.OperationalError as e:
        if time.time() > deadline:
            print("header index: %s" % e, file=sys.stderr)
            sys.exit(1)
        time.sleep(0.05)
"#;
        let db = self.dir.path().join(DB_FILE);
        let out = Command::new("python3")
            .arg("-c")
            .arg(SCRIPT)
            .arg(&db)
            .arg(HEADER_INDEX)
            .stdin(Stdio::null())
            .output()
            .expect("run python3 (needed for the tansu header index)");
        assert!(
            out.status.success(),
            "creating the header index on {} failed: {}\n{}",
            db.display(),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let keep = std::env::var_os("CORRELATOR_KEEP_TANSU").is_some_and(|v| v == "1");
        if std::thread::panicking() {
            let log = self.log();
            let tail: String = {
                let lines: Vec<&str> = log.lines().collect();
                lines[lines.len().saturating_sub(40)..].join("\n")
            };
            eprintln!(
                "--- tansu on port {} (dir {}), last log lines:\n{tail}\n---",
                self.port,
                self.dir.path().display()
            );
        }
        if keep {
            self.dir.disable_cleanup(true);
            eprintln!("tansu data kept in {}", self.dir.path().display());
        }
    }
}
