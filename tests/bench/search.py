#!/usr/bin/env python3
"""Prints search latency at two data sizes (a benchmark, not a test).

Generate the data (tests/bench/data/generate.py), then start one release server per size,
with the rate limit on GraphQL cost raised so the benchmark is not throttled:

    CARGO_TARGET_DIR=$HOME/.cache/kettle-bench/target cargo build --release
    K=$HOME/.cache/kettle-bench/target/release/kettle
    LIMITS=graphql_cost_client=1000000000/60
    KETTLE_DATABASE_URL=postgres://postgres@127.0.0.1:5432/kettle_bench_10k KETTLE_LISTEN=127.0.0.1:18101 \\
        KETTLE_DATA_DIR=$(mktemp -d) KETTLE_RATE_LIMITS=$LIMITS KETTLE_LOG=warn $K serve &
    KETTLE_DATABASE_URL=postgres://postgres@127.0.0.1:5432/kettle_bench_1m KETTLE_LISTEN=127.0.0.1:18102 \\
        KETTLE_DATA_DIR=$(mktemp -d) KETTLE_RATE_LIMITS=$LIMITS KETTLE_LOG=warn $K serve &
    python3 tests/bench/search.py 10k=http://127.0.0.1:18101 1m=http://127.0.0.1:18102

(For SQLite, KETTLE_DATABASE_URL=sqlite://$HOME/.cache/kettle-bench/data/kettle_bench_10k.db and so on.)

For each word — a common one in nearly every case study, one in ~2% and one in ~0.01%
(see generate.py) — it sends `search(query: WORD, first: 20)` through /graphql on one
keep-alive connection per server: a warm-up, then --requests timed requests, one at a
time, the sizes taking turns request by request so that both see the same machine. It
prints p50 and p99 per word and size, how many hits came back, and the p99 ratio of the
last size to the first (LABEL order on the command line). Requests that fail (a TIMEOUT,
say) are counted and shown, their time included. `--query` adds the variables of a different search (a filter).
"""
import argparse
import http.client
import json
import time
import urllib.parse

SEARCH = """query($q: String!, $kind: SearchKind, $topic: String, $organisation: String, $offset: Int!) {
  search(query: $q, kind: $kind, topic: $topic, organisation: $organisation, first: 20, offset: $offset) {
    snippet
    node { __typename ... on CaseStudy { id title } ... on Artefact { id title } ... on Organisation { id name } }
  }
}"""


class Server:
    def __init__(self, label, url):
        self.label = label
        parsed = urllib.parse.urlparse(url)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port)

    def search(self, variables):
        body = json.dumps({"query": SEARCH, "variables": variables})
        started = time.perf_counter()
        self.conn.request("POST", "/graphql", body=body, headers={"content-type": "application/json"})
        response = self.conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        answer = json.loads(payload)
        assert response.status == 200, payload[:500]
        if "errors" in answer:
            # Counted, not fatal: before search was bounded, a common word at 1,000,000 case
            # studies ran into the server's 10-second request timeout.
            return elapsed, None, answer["errors"][0].get("extensions", {}).get("code", "ERROR")
        return elapsed, answer["data"]["search"], None


def percentile(times, fraction):
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main():
    parser = argparse.ArgumentParser(description="Search latency at two or more data sizes.")
    parser.add_argument("servers", nargs="+", metavar="LABEL=URL", help="e.g. 10k=http://127.0.0.1:18101")
    parser.add_argument("--words", default="service,procurement,zeppelin")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--query", action="append", default=[], metavar="JSON",
                        help='extra variables, e.g. {"kind": "ARTEFACT"} or {"topic": "housing"}')
    args = parser.parse_args()
    servers = [Server(*spec.split("=", 1)) for spec in args.servers]
    extras = [json.loads(q) for q in args.query] or [{}]

    print(f"search(query: W, first: 20, offset: {args.offset}): {args.requests} requests per word and size "
          f"after {args.warmup} to warm up, one connection each")
    width = max(12, *(len(s.label) + 5 for s in servers))
    header = f"{'query':<34}" + "".join(f"{s.label + ' p50':>{width}}{s.label + ' p99':>{width}}{'hits':>6}" for s in servers)
    if len(servers) > 1:
        header += f"{'p99 ratio':>14}"
    print(header)
    for extra in extras:
        for word in args.words.split(","):
            variables = {"q": word, "kind": None, "topic": None, "organisation": None, "offset": args.offset, **extra}
            times = {s.label: [] for s in servers}
            hits = {}
            failures = {s.label: {} for s in servers}
            for i in range(args.warmup + args.requests):
                for server in servers:
                    elapsed, found, failure = server.search(variables)
                    if failure:
                        failures[server.label][failure] = failures[server.label].get(failure, 0) + 1
                    else:
                        hits[server.label] = len(found)
                    if i >= args.warmup:
                        times[server.label].append(elapsed)
            name = word + (" " + json.dumps(extra) if extra else "")
            line = f"{name:<34}"
            for server in servers:
                t = times[server.label]
                line += f"{percentile(t, 0.5) * 1000:>{width - 2}.1f}ms{percentile(t, 0.99) * 1000:>{width - 2}.1f}ms"
                line += f"{hits.get(server.label, '-'):>6}"
            notes = [f"{s.label}: {n} x {code}" for s in servers for code, n in failures[s.label].items()]
            if len(servers) > 1:
                ratio = percentile(times[servers[-1].label], 0.99) / percentile(times[servers[0].label], 0.99)
                line += f"{ratio:>13.2f}x"
            print(line + ("  (" + ", ".join(notes) + ")" if notes else ""), flush=True)


if __name__ == "__main__":
    main()
