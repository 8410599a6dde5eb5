#!/usr/bin/env python3
"""How fast /healthz answers while 8 clients send the hostile shapes in a loop (a
benchmark that prints figures, not a test).

    cargo build --release
    python3 tests/bench/hostile_load.py                  # starts target/release/kettle itself
    python3 tests/bench/hostile_load.py --seconds 60     # longer
    python3 tests/bench/hostile_load.py --url http://127.0.0.1:18081   # against a running one

The shapes: the fragment chain at n = 30 (2^30 field visits if expanded), and
`markdownPreview` of `"> - "`, `">"` and `"1. "` repeated to 100 KB. When it starts the
server itself it raises the preview and cost rate limits, so every hostile request is
really worked on rather than refused by a limit: the worst case for /healthz.
"""
import argparse
import collections
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

MAX_MARKDOWN = 100 * 1000


def chain(n):
    parts = ["query { ...F0 }"]
    parts += [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n)]
    parts.append(f"fragment F{n} on Query {{ __typename }}")
    return " ".join(parts)


def nested(unit):
    return (unit * (MAX_MARKDOWN // len(unit) + 1))[:MAX_MARKDOWN]


SHAPES = [
    ("fragment chain n=30", {"query": chain(30)}),
    ("markdown '> - ' x 100 KB", {"query": "query($s: String!) { markdownPreview(source: $s) }", "variables": {"s": nested("> - ")}}),
    ("markdown '>' x 100 KB", {"query": "query($s: String!) { markdownPreview(source: $s) }", "variables": {"s": nested(">")}}),
    ("markdown '1. ' x 100 KB", {"query": "query($s: String!) { markdownPreview(source: $s) }", "variables": {"s": nested("1. ")}}),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server():
    binary = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "kettle")
    if not os.path.exists(binary):
        sys.exit(f"{binary} not found: run cargo build --release first (or pass --url)")
    port = free_port()
    data = tempfile.mkdtemp(prefix="kettle-bench-")
    env = dict(os.environ, KETTLE_LISTEN=f"127.0.0.1:{port}", KETTLE_DATA_DIR=data, KETTLE_LOG="warn",
               KETTLE_RATE_LIMITS="preview_client=1000000/60, graphql_cost_client=1000000000/60")
    env.pop("KETTLE_DATABASE_URL", None)
    env.pop("KETTLE_REDIS_URL", None)
    server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return server, url
        except OSError:
            time.sleep(0.05)
    server.kill()
    sys.exit("the server did not start")


def hostile_client(base, index, stop, counts, lock):
    body_cycle = SHAPES[index % len(SHAPES):] + SHAPES[:index % len(SHAPES)]
    i = 0
    conn = http.client.HTTPConnection(base.hostname, base.port, timeout=60)
    while not stop.is_set():
        name, body = body_cycle[i % len(body_cycle)]
        i += 1
        started = time.perf_counter()
        try:
            conn.request("POST", "/graphql", body=json.dumps(body), headers={"content-type": "application/json"})
            response = conn.getresponse()
            payload = response.read()
            code = ""
            try:
                errors = json.loads(payload).get("errors") or []
                code = (errors[0].get("extensions") or {}).get("code", "") if errors else "ok"
            except ValueError:
                code = "not json"
            outcome = f"{response.status} {code}"
        except (OSError, http.client.HTTPException) as err:
            outcome = f"connection error {type(err).__name__}"
            conn = http.client.HTTPConnection(base.hostname, base.port, timeout=60)
        took = time.perf_counter() - started
        with lock:
            counts[(name, outcome)].append(took)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    server = None
    url = args.url
    if not url:
        server, url = start_server()
    base = urllib.parse.urlparse(url)
    stop = threading.Event()
    counts = collections.defaultdict(list)
    lock = threading.Lock()
    threads = [threading.Thread(target=hostile_client, args=(base, i, stop, counts, lock), daemon=True)
               for i in range(args.clients)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    probes = []
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection(base.hostname, base.port, timeout=10)
            conn.request("GET", "/healthz")
            ok = conn.getresponse().status == 200
            conn.close()
        except OSError:
            ok = False
        probes.append((time.perf_counter() - started, ok))
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(timeout=70)
    if server:
        server.terminate()
        server.wait(timeout=30)

    print(f"{args.clients} hostile clients for {args.seconds:.0f} s against {url}")
    print(f"{'shape':30} {'outcome':28} {'n':>6} {'p50 ms':>9} {'max ms':>9}")
    for (name, outcome), times in sorted(counts.items()):
        times.sort()
        print(f"{name:30} {outcome:28} {len(times):6} {times[len(times) // 2] * 1000:9.1f} {times[-1] * 1000:9.1f}")
    latencies = sorted(p[0] for p in probes)
    failed = sum(1 for p in probes if not p[1])
    slow = sum(1 for t in latencies if t > 0.1)
    n = len(latencies)
    print(f"/healthz: n={n} p50={latencies[n // 2] * 1000:.1f} ms p99={latencies[min(n - 1, int(n * 0.99))] * 1000:.1f} ms "
          f"max={latencies[-1] * 1000:.1f} ms; over 100 ms: {slow}; failed: {failed}")


if __name__ == "__main__":
    main()
