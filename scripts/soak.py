#!/usr/bin/env python3
"""Soak and fault-injection run of the daemon, for longer than the tests.

    scripts/soak.sh [--minutes N] [--kill-every S] [--seed N]

Starts `correlator run --embedded-kafka` on a fresh store, then for N minutes
posts alerts to the webhook from a few client threads (valid alerts of many
services, poison bodies of every size class around the limits, slow and
stalled clients), kills the daemon with SIGKILL every S seconds and starts it
again on the same store. At the end it checks, against the daemon's own API:

- every alert the webhook answered 200 for is in an incident (nothing
  acknowledged is lost, across every kill -9);
- no record was reported lost and nothing is parked in the outbox;
- the daemon is ready and not degraded.

Exits 0 when all hold, 1 otherwise, printing what failed. Talks only to
127.0.0.1; every loop is bounded in count and time.
"""

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

TOKEN = "soak-token"


def config(store, port):
    return f"""[kafka]
brokers = "unused:9092"
group_id = "soak"
tick_interval = "200ms"

[store]
path = "{store}"

[http]
listen = "127.0.0.1:{port}"
token_env = "CORRELATOR_SOAK_TOKEN"
header_timeout = "2s"
body_timeout = "5s"
max_connections = 64

[limits]
max_record_bytes = 65536

[[rules]]
name = "by-service"
group_by = ["service"]
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, binary, cfg, log):
        self.binary, self.cfg, self.log = binary, cfg, log
        self.proc = None

    def start(self, port):
        env = dict(os.environ, CORRELATOR_SOAK_TOKEN=TOKEN, RUST_LOG="warn")
        self.proc = subprocess.Popen(
            [self.binary, "run", "--config", self.cfg, "--embedded-kafka",
             "--log-format", "json"],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL, env=env)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"daemon exited at start: {self.proc.returncode}")
            if ready(port) is not None:
                return
            time.sleep(0.1)
        raise SystemExit("daemon not ready within 30 s")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


def request(port, method, path, body=None, timeout=40):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                 method=method)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return None, str(e)


def ready(port):
    status, body = request(port, "GET", "/readyz", timeout=2)
    if status is None:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def poison(rng):
    """A body that must be refused: every size class around the limits."""
    size = rng.choice([0, 1, 100, 65535, 65536, 65537, 200000])
    kind = rng.choice(["junk", "json", "array"])
    if kind == "junk":
        return "x" * size
    if kind == "json":
        return json.dumps({"not": "an alert", "pad": "p" * size})
    return json.dumps([{"labels": {}, "pad": "p" * size}])


def slow_client(port, rng, stop):
    """Headers one byte at a time, or a body that never comes."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                if rng.random() < 0.5:
                    for b in b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\n":
                        s.send(bytes([b]))
                        time.sleep(0.2)
                else:
                    s.send(b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                           b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n{")
                    time.sleep(8)
        except OSError:
            time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/correlator")
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--kill-every", type=float, default=30)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="correlator-soak-")
    port = free_port()
    cfg = os.path.join(work, "soak.toml")
    with open(cfg, "w") as f:
        f.write(config(os.path.join(work, "state.redb"), port))
    log = open(os.path.join(work, "daemon.log"), "ab")
    d = Daemon(args.binary, cfg, log)
    d.start(port)
    acked, refused, failed, lock = set(), 0, 0, threading.Lock()
    stop = threading.Event()
    counter = iter(range(10**9))

    def sender(seed):
        nonlocal refused, failed
        r = random.Random(seed)
        while not stop.is_set():
            if r.random() < 0.2:
                status, _ = request(port, "POST", "/api/v1/alerts", poison(r))
                with lock:
                    if status is not None and 400 <= status < 500:
                        refused += 1
                continue
            with lock:
                n = next(counter)
            name = f"svc{n}"
            body = json.dumps([{"labels": {"alertname": "SoakDown", "service": name,
                                           "severity": "critical"},
                                "annotations": {"summary": f"{name} is down"}}])
            status, _ = request(port, "POST", "/api/v1/alerts", body)
            with lock:
                if status == 200:
                    acked.add(name)
                else:
                    failed += 1  # 5xx or daemon down: the sender retries, nothing acked
            if status is None:
                time.sleep(0.2)

    threads = [threading.Thread(target=sender, args=(args.seed * 100 + i,)) for i in range(4)]
    threads += [threading.Thread(target=slow_client, args=(port, random.Random(i), stop))
                for i in range(3)]
    for t in threads:
        t.daemon = True
        t.start()
    end = time.time() + args.minutes * 60
    kills = 0
    while time.time() < end:
        time.sleep(min(args.kill_every, max(0.0, end - time.time())))
        if time.time() >= end:
            break
        d.kill()
        kills += 1
        d.start(port)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    # Settle: ready, caught up, outbox empty.
    deadline = time.time() + 120
    r = None
    while time.time() < deadline:
        r = ready(port)
        if r and r.get("caught_up") and r.get("outbox_backlog") == 0:
            break
        time.sleep(0.5)
    services = set()
    cursor = None
    for _ in range(100000):
        path = "/api/v1/incidents?limit=1000" + (f"&cursor={cursor}" if cursor else "")
        status, body = request(port, "GET", path)
        if status != 200:
            break
        page = json.loads(body)
        for inc in page.get("incidents", []):
            for a in inc.get("alerts", []):
                services.add(a.get("labels", {}).get("service"))
        cursor = page.get("next_cursor")
        if not cursor:
            break
    d.stop()
    lost = sorted(acked - services)
    problems = []
    if lost:
        problems.append(f"{len(lost)} alerts acknowledged with 200 are in no incident: {lost[:10]}")
    if not r:
        problems.append("the daemon did not answer /readyz at the end")
    else:
        if r.get("records_lost", 0):
            problems.append(f"records_lost = {r['records_lost']}")
        if r.get("outbox_parked", 0):
            problems.append(f"outbox_parked = {r['outbox_parked']}")
        if r.get("status") != "ok":
            problems.append(f"status {r.get('status')}: {r.get('degraded')}")
    print(f"soak: {args.minutes} min, {kills} kill -9 restarts, {len(acked)} alerts acknowledged, "
          f"{refused} poison bodies refused, {failed} requests failed (retryable), work dir {work}")
    for p in problems:
        print("FAIL:", p)
    print("soak: ok" if not problems else "soak: FAILED")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
