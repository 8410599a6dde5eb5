#!/usr/bin/env python3
"""The server's memory under a burst of sign-ins, and after it (a benchmark that prints
figures, not a test). tests/bench/run starts Kettle once per allocator and calls this;
by hand, against a server already running (its sign-in limits raised):

    KETTLE_RATE_LIMITS="sign_in_account=1000000/60, sign_in_address=1000000/60" \\
        KETTLE_LISTEN=127.0.0.1:18081 KETTLE_DATA_DIR=$(mktemp -d) KETTLE_LOG=warn target/release/kettle serve &
    python3 tests/bench/signin_memory.py --url http://127.0.0.1:18081 --pid $!

Registers one member, then 16 clients sign in with the right password as fast as they
are answered for 15 s. Each sign-in verifies an argon2id hash, which takes 19 MiB while
it runs; the server lets one run per core at a time. Samples the server's resident set
(VmRSS in /proc/<pid>/status) before the load, at its peak during it, and 5, 15 and 30 s
after it, to show whether memory stays bounded and goes back to the system when idle.
"""
import argparse
import http.client
import json
import os
import statistics
import threading
import time
import urllib.parse
import uuid

PASSWORD = "kettle whistles over marmalade"
SIGN_IN = "mutation($i: SignInInput!) { signIn(input: $i) { token userErrors { message } } }"
REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { email userErrors { message } } }"


def rss_mib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def post(conn, query, variables):
    conn.request("POST", "/graphql", body=json.dumps({"query": query, "variables": variables}),
                 headers={"content-type": "application/json"})
    response = conn.getresponse()
    answer = json.loads(response.read())
    if response.status != 200 or answer.get("errors"):
        raise RuntimeError(f"HTTP {response.status}: {answer}")
    return answer["data"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the Kettle server")
    parser.add_argument("--pid", type=int, required=True, help="its process id, whose memory is sampled")
    parser.add_argument("--label", default="kettle", help="what to call this server in the figures")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    base = urllib.parse.urlparse(args.url)

    def connect():
        return http.client.HTTPConnection(base.hostname, base.port, timeout=120)

    email = f"signin-{uuid.uuid4().hex[:8]}@example.org"
    payload = post(connect(), REGISTER, {"i": {"email": email, "password": PASSWORD, "displayName": "Sign-in bench"}})
    if payload["register"]["userErrors"]:
        raise SystemExit(f"could not register: {payload['register']['userErrors']}")
    time.sleep(2)
    before = rss_mib(args.pid)

    stop = threading.Event()
    latencies, failures, lock = [], [], threading.Lock()

    def client():
        conn = connect()
        while not stop.is_set():
            started = time.perf_counter()
            try:
                data = post(conn, SIGN_IN, {"i": {"email": email, "password": PASSWORD}})
                if not data["signIn"]["token"]:
                    raise RuntimeError(data["signIn"]["userErrors"])
            except Exception as error:  # noqa: BLE001 - any failure ends the run with its reason
                with lock:
                    failures.append(error)
                stop.set()
                return
            with lock:
                latencies.append(time.perf_counter() - started)

    peak = before
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while time.monotonic() - started < args.seconds and not stop.is_set():
        peak = max(peak, rss_mib(args.pid))
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    load = os.getloadavg()[0]
    peak = max(peak, rss_mib(args.pid))
    if failures:
        raise SystemExit(f"a sign-in failed (are the sign-in limits raised?): {failures[0]}")

    ended = time.monotonic()
    after = {}
    for wait in (5, 15, 30):
        time.sleep(max(0.0, ended + wait - time.monotonic()))
        after[wait] = rss_mib(args.pid)

    latencies.sort()
    print(f"{args.label}: {len(latencies)} sign-ins by {args.clients} clients in {elapsed:.1f} s "
          f"({len(latencies) / elapsed:.1f}/s, p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"p99 {latencies[len(latencies) * 99 // 100] * 1000:.0f} ms; load average {load:.1f})")
    print(f"{args.label}: RSS before {before:.0f} MiB, peak during {peak:.0f} MiB (high-water mark "
          f"{rss_mib(args.pid, 'VmHWM'):.0f} MiB), after 5 s {after[5]:.0f} MiB, 15 s {after[15]:.0f} MiB, "
          f"30 s {after[30]:.0f} MiB")


if __name__ == "__main__":
    main()
