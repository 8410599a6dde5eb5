#!/usr/bin/env python3
"""Front-page throughput and p99 through /graphql, against the floor and a generic server
(a benchmark that prints figures, not a test). tests/bench/run starts the Kettle servers
and calls this; by hand, against servers already running:

    python3 tests/bench/frontpage.py --database postgres://postgres@127.0.0.1:5432/kettle_bench_10k \\
        --kettle postgres=http://127.0.0.1:18081 --pgbench --postgraphile

The front page is `caseStudies(first: 20)` with authors, organisation, topics and the
three counts. Each round measures every target in turn, the same load for each, so that
a slow minute on a shared machine falls on all of them alike:

- every `--kettle NAME=URL`: wrk POSTing the query to URL/graphql;
- `--pgbench`: pgbench running tests/bench/frontpage.sql, one hand-written statement that
  returns the same data as JSON, on the same database with the same client count;
- `--postgraphile`: PostGraphile 4 (tests/bench/postgraphile, `npm ci` first) started
  here on the same database, sent the equivalent query, with wrk.

Name the Kettle that serves --database `postgres`. Before measuring, pgbench's and
PostGraphile's answers are compared with its answer (the same 20 case studies, authors,
organisations, topics and counts), so the figures compare equal work; any other Kettle
(on SQLite, whose generated rows differ) must list 20. Then it counts the statements one
front page costs that Kettle and PostGraphile, from the database's transaction count
(pgbench's is one by construction). Prints each round, then
the medians and the median of the per-round ratios of the first Kettle to every other
target.
"""
import argparse
import glob
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
# The name of the Kettle target that serves --database, which pgbench and PostGraphile
# are compared with.
ON_DATABASE = "postgres"

KETTLE_QUERY = """{ caseStudies(first: 20) { edges { node {
  id title summary phase publishedAt usefulCount commentCount artefactCount
  authors { handle displayName } organisation { name slug } topics { name slug }
} } } }"""

# The same page from PostGraphile's generated schema: published and not hidden, newest
# first with the id breaking ties (as Kettle's keyset does), the related rows through
# the foreign keys. The counts are columns, or SQL fragments its server adds (server.js).
POSTGRAPHILE_QUERY = """{ allCaseStudies(first: 20, orderBy: [PUBLISHED_AT_DESC, ID_DESC],
    condition: { status: "published", hiddenAt: null }) { edges { node {
  id title summary phase publishedAt usefulCount commentCount artefactCount
  caseStudyAuthorsByCaseStudyId(orderBy: POSITION_ASC) { nodes { memberByMemberId { handle displayName } } }
  organisationByOrganisationId { name slug }
  caseStudyTopicsByCaseStudyId { nodes { topicByTopicId { name slug } } }
} } } }"""

WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_graphql(url, query):
    request = urllib.request.Request(url + "/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    if answer.get("errors"):
        sys.exit(f"{url}/graphql answered with errors: {answer['errors']}")
    return answer["data"]


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


# Each target's answer, reduced to what all three return alike: ids and instants are
# spelt differently (global ids, RFC 3339, milliseconds), and only Kettle sorts topics.
def page_of_kettle(data):
    return [(n["title"], n["summary"], n["phase"].lower(), int(n["usefulCount"]), int(n["commentCount"]),
             int(n["artefactCount"]), [(a["handle"], a["displayName"]) for a in n["authors"]],
             n["organisation"] and (n["organisation"]["name"], n["organisation"]["slug"]),
             sorted((t["name"], t["slug"]) for t in n["topics"]))
            for n in (e["node"] for e in data["caseStudies"]["edges"])]


def page_of_postgraphile(data):
    return [(n["title"], n["summary"], n["phase"].lower(), int(n["usefulCount"]), int(n["commentCount"]),
             int(n["artefactCount"]),
             [(a["memberByMemberId"]["handle"], a["memberByMemberId"]["displayName"])
              for a in n["caseStudyAuthorsByCaseStudyId"]["nodes"]],
             n["organisationByOrganisationId"] and (n["organisationByOrganisationId"]["name"],
                                                    n["organisationByOrganisationId"]["slug"]),
             sorted((t["topicByTopicId"]["name"], t["topicByTopicId"]["slug"])
                    for t in n["caseStudyTopicsByCaseStudyId"]["nodes"]))
            for n in (e["node"] for e in data["allCaseStudies"]["edges"])]


def page_of_statement(rows):
    return [(n["title"], n["summary"], n["phase"].lower(), n["usefulCount"], n["commentCount"], n["artefactCount"],
             [(a["handle"], a["displayName"]) for a in n["authors"]],
             n["organisation"] and (n["organisation"]["name"], n["organisation"]["slug"]),
             sorted((t["name"], t["slug"]) for t in n["topics"]))
            for n in rows]


class Wrk:
    """A GraphQL endpoint loaded by wrk."""

    def __init__(self, name, url, query, args, scratch):
        self.name, self.url, self.query, self.args = name, url, query, args
        self.script = os.path.join(scratch, f"{re.sub(r'[^a-z0-9]', '-', name.lower())}.lua")
        with open(self.script, "w") as f:
            f.write(WRK_SCRIPT.format(body=json.dumps(json.dumps({"query": query}))))

    def measure(self, seconds):
        output = run(["wrk", f"-t{self.args.threads}", f"-c{self.args.connections}", f"-d{seconds}s", "--latency",
                      "--timeout", "10s", "-s", self.script, self.url + "/graphql"])
        failures = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        errors = re.search(r"Socket errors: (.*)", output)
        if failures or errors:
            sys.exit(f"{self.name}: wrk saw failures:\n{output}")
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
        return rps, {p: wrk_millis(re.search(rf"^\s+{p}%\s+(\S+)", output, re.M).group(1)) for p in (50, 99)}


def wrk_millis(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


class Pgbench:
    """tests/bench/frontpage.sql under pgbench, with per-transaction logs for the p99."""

    name = "pgbench (one statement)"

    def __init__(self, database, args, scratch):
        self.database, self.args, self.scratch = database, args, scratch

    def measure(self, seconds):
        prefix = os.path.join(self.scratch, "pgbench")
        for old in glob.glob(prefix + ".*"):
            os.remove(old)
        output = run(["pgbench", "-n", "-M", "prepared", f"-c{self.args.connections}", f"-j{self.args.threads}",
                      f"-T{seconds}", "-f", os.path.join(HERE, "frontpage.sql"),
                      "--log", f"--log-prefix={prefix}", self.database])
        failed = re.search(r"number of failed transactions: (\d+)", output)
        if failed and failed.group(1) != "0":
            sys.exit(f"pgbench saw failures:\n{output}")
        tps = float(re.search(r"tps = ([\d.]+)", output).group(1))
        latencies = []
        for log in glob.glob(prefix + ".*"):
            with open(log) as f:
                latencies += [int(line.split()[2]) / 1000 for line in f]
        latencies.sort()
        return tps, {p: latencies[min(len(latencies) - 1, len(latencies) * p // 100)] for p in (50, 99)}

    def page(self):
        output = run(["psql", self.database, "-At",
                      "-f", os.path.join(HERE, "frontpage.sql")])
        return page_of_statement(json.loads(output))


def transactions(database):
    sql = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
    return int(run(["psql", database, "-Atc", sql]))


def statements_per_request(url, query, database, requests=200):
    """PostgreSQL transactions per front page, one request at a time: each statement a
    server runs outside a transaction is one, so this counts statements. PostgreSQL
    publishes a backend's counts within ten seconds of its going idle, hence the waits.
    Other clients of the database (the servers' own background jobs, other people's
    servers) are counted too, so their rate over an idle window is taken off."""
    settle = 11

    def reading():
        return transactions(database), time.monotonic()

    # Each difference of two readings includes the earlier reading's own transaction.
    time.sleep(settle)
    idle_from, idle_at = reading()
    time.sleep(settle)
    before, started = reading()
    background = (before - idle_from - 1) / (started - idle_at)
    for _ in range(requests):
        post_graphql(url, query)
    time.sleep(settle)
    after, ended = reading()
    return (after - before - 1 - background * (ended - started)) / requests


def start_postgraphile(database):
    server = os.path.join(HERE, "postgraphile", "server.js")
    if not os.path.isdir(os.path.join(HERE, "postgraphile", "node_modules")):
        sys.exit("PostGraphile is not installed: run `npm ci` in tests/bench/postgraphile")
    port = free_port()
    process = subprocess.Popen(["node", server, database, str(port)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if process.poll() is not None:
            sys.exit("PostGraphile stopped while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, url
        except OSError:
            time.sleep(0.1)
    process.terminate()
    sys.exit("PostGraphile did not start within a minute")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kettle", action="append", default=[], metavar="NAME=URL",
                        help="a running Kettle; the first is the one the ratios are of; name the one "
                        f"serving --database `{ON_DATABASE}`")
    parser.add_argument("--database", help="the PostgreSQL database for --pgbench and --postgraphile")
    parser.add_argument("--pgbench", action="store_true")
    parser.add_argument("--postgraphile", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5, help="seconds of load on each target before round 1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not args.kettle:
        parser.error("name at least one --kettle NAME=URL")
    if (args.pgbench or args.postgraphile) and not args.database:
        parser.error("--pgbench and --postgraphile need --database")
    if (args.pgbench or args.postgraphile) and not any(k.startswith(ON_DATABASE + "=") for k in args.kettle):
        parser.error(f"--pgbench and --postgraphile are compared with --kettle {ON_DATABASE}=URL, serving --database")
    for tool in ["wrk"] + (["pgbench", "psql"] if args.pgbench or args.postgraphile else []):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (tests/bench/run installs wrk)")

    scratch = tempfile.mkdtemp(prefix="kettle-frontpage-")
    postgraphile = None
    try:
        targets, pages = [], {}
        for spec in args.kettle:
            name, _, url = spec.partition("=")
            target = Wrk(f"Kettle {name}", url.rstrip("/"), KETTLE_QUERY, args, scratch)
            targets.append(target)
            pages[name] = page_of_kettle(post_graphql(target.url, KETTLE_QUERY))
            if len(pages[name]) != 20:
                sys.exit(f"{target.name} lists {len(pages[name])} case studies, not 20: is its database filled?")
        # The generator fills SQLite and PostgreSQL alike but not with the same rows, so
        # only what runs on --database is compared, with the Kettle serving it.
        checks = []
        if args.pgbench:
            targets.append(Pgbench(args.database, args, scratch))
            checks.append((targets[-1].name, targets[-1].page()))
        if args.postgraphile:
            postgraphile, url = start_postgraphile(args.database)
            targets.append(Wrk("PostGraphile 4", url, POSTGRAPHILE_QUERY, args, scratch))
            checks.append((targets[-1].name, page_of_postgraphile(post_graphql(url, POSTGRAPHILE_QUERY))))
        reference = pages.get(ON_DATABASE)
        for name, page in checks:
            if page != reference:
                first = next(i for i, (a, b) in enumerate(zip(page + [None] * 20, reference)) if a != b)
                sys.exit(f"{name} answers differently from Kettle {ON_DATABASE} at case study {first}:\n"
                         f"  {name}: {page[first] if first < len(page) else None}\n"
                         f"  Kettle {ON_DATABASE}: {reference[first]}")
        print(f"Every target lists 20 case studies{', the same ones on ' + ON_DATABASE if checks else ''}. "
              f"wrk and pgbench: {args.threads} threads, {args.connections} connections, {args.seconds} s a run, "
              f"rounds: {args.rounds}; load generator, servers and PostgreSQL share this machine's "
              f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} before the runs.")

        for target in targets:
            target.measure(args.warmup)
        if args.database:
            counted = [t for t in targets if isinstance(t, Wrk) and t.name in (f"Kettle {ON_DATABASE}", "PostGraphile 4")]
            for target in counted:
                count = statements_per_request(target.url, target.query, args.database)
                print(f"{target.name}: {count:.1f} statements per front page")
        results = {t.name: [] for t in targets}
        for round_number in range(1, args.rounds + 1):
            for target in targets:
                rate, latency = target.measure(args.seconds)
                results[target.name].append((rate, latency))
                print(f"round {round_number}  {target.name:<26} {rate:9.1f} req/s  p50 {latency[50]:7.2f} ms  "
                      f"p99 {latency[99]:7.2f} ms", flush=True)

        print(f"\nmedians (load average {os.getloadavg()[0]:.1f} at the end)")
        for target in targets:
            runs = results[target.name]
            print(f"  {target.name:<26} {statistics.median(r for r, _ in runs):9.1f} req/s  "
                  f"p99 {statistics.median(l[99] for _, l in runs):7.2f} ms")
        first = targets[0].name
        for target in targets[1:]:
            pairs = list(zip(results[first], results[target.name]))
            throughput = statistics.median(a[0] / b[0] for a, b in pairs)
            p99 = statistics.median(a[1][99] / b[1][99] for a, b in pairs)
            print(f"  {first} / {target.name}: throughput x{throughput:.2f}, p99 x{p99:.2f} (medians of the per-round ratios)")
    finally:
        if postgraphile:
            postgraphile.terminate()
            postgraphile.wait()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
