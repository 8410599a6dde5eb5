#!/usr/bin/env python3
"""Fills a fresh Kettle database with benchmark data (a tool for benchmarks, not a test).

    CARGO_TARGET_DIR=$HOME/.cache/kettle-bench/target cargo build --release
    python3 tests/bench/data/generate.py --size 10k \\
        --database postgres://postgres@127.0.0.1:5432/kettle_bench_10k
    python3 tests/bench/data/generate.py --size 1m \\
        --database sqlite://$HOME/.cache/kettle-bench/data/kettle_bench_1m.db

    --size      10k or 1m: how many case studies
    --database  postgres://…/NAME (the database NAME is dropped and created again) or
                sqlite://PATH (the file is deleted and created again)
    --kettle    the kettle binary that migrates the new database [default:
                $CARGO_TARGET_DIR/release/kettle, else target/release/kettle]

It (re)creates the database, runs `kettle migrate` on it, then runs the set-based SQL in
`fill.postgres.sql` or `fill.sqlite.sql` beside this file (generate_series on PostgreSQL,
recursive CTEs on SQLite; no per-row round trips), one `-- step:` at a time, timing each.
Only stdlib Python and the `psql` command line are needed.

What it makes, for N case studies: N/10 members, N/100 organisations (each with its
creator as admin), 50 topics, N case studies (98% published, `published_at` spread over
eight years with ids in publishing order, 2% drafts) with ~5 KB Markdown bodies and the
HTML Kettle would store, the author at position 0 in case_study_authors and a co-author on
one in ten (with the accepted invitation 0008 requires), 1-3 topics each, on average two
comments (0-4) and 1.5 "useful" marks (0-3, never by the author) per published case study
and a bookmark on a third, N/10 artefacts with one topic, one or two case studies and on
average one comment, and a search_index row for every published case study, artefact and
organisation, exactly as `backend/search/mod.rs::index` writes it (the title, and the
plain text of what the application indexes; on SQLite with its search_rows entry),
inserted in the order the items appeared.

The bodies are made of paragraphs drawn from VOCABULARY below (earlier words more often),
with three words of known frequency for search benchmarks:
  service      in ~60% of paragraphs, so in nearly every case study (and ~1 title in 10)
  procurement  in every case study whose id is 17 modulo 50: 2%
  zeppelin     in every case study whose id is 4321 modulo 10,000: 0.01% (1 at 10k, 100 at 1m)

Counts kept by triggers (case_studies.useful_count, comment_count, artefact_count and
artefacts.comment_count, when the schema has them): the triggers are off while the link
tables fill, then each count is set by one UPDATE and a sample is compared with a COUNT.
It prints how long each step took, the row counts, how many documents match each of the
three words, and the database's size.

Measured on a 2-core machine shared with other work: 10k in 5 s on SQLite (0.18 GiB) and
25 s on PostgreSQL (0.18 GiB); 1m in 15 min on SQLite (17.6 GiB) and 45 min on
PostgreSQL (most of it to_tsvector over 5 GB of text, which PostgreSQL runs on one core).
"""
import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = {"10k": 10_000, "1m": 1_000_000}
EIGHT_YEARS_MS = 8 * 365 * 86_400_000

# The words bodies are made of, most frequent first (a word at position i is drawn with
# probability falling off like 1/sqrt(i)). None of them stems like the three benchmark
# words (service, procurement, zeppelin), which the SQL places on purpose.
VOCABULARY = """
the and to of we a in for it that with our on was this is they were by from as at be
have had their not but more people team what so which users could one all there when
how did about new would first work into need who them some time needed data system
made found other also form online council residents staff found learned built tested
launched improved reduced changed started moved replaced worked asked listened mapped
shared reused published iterated simplified removed added helped saved spent took gave
showed met ran wrote read chose agreed decided wanted tried weeks months year years day
days way ways problem problems question questions answer answers change changes step
steps process processes approach idea ideas plan plans goal goals result results lesson
lessons story stories example examples part parts number numbers half third percent
thousand hundred quickly slowly together often early later second next last every each
many most fewer less better clearer simpler faster small large whole real hard easy
common weekly monthly daily housing repairs parking permits benefits tax waste recycling
bins libraries schools admissions transport highways planning licensing social care
adults children families health appointments hospital patients clinic pharmacy records
dashboard analytics research interviews survey prototype discovery alpha beta live
designer developer analyst product manager owner delivery agile sprint backlog roadmap
journey journeys forms digital paper phone contact centre email text message letters
notifications payments invoices budget funding savings costs contract supplier vendor
platform cloud hosting migration legacy systems software code open source standard
standards accessibility assessment inclusive language content design pattern patterns
component components testing usability feedback insight evidence outcome outcomes
metrics performance uptake channel shift demand caseworkers training support guidance
policy legislation consultation engagement community volunteers partners partnership
charity neighbourhood ward borough county district region national local government
department agency authority ministry directorate board governance risk security privacy
consent identity verification login account accounts portal website pages search
navigation mobile app map maps address postcode location booking calendar reminders
queue waiting times reports reporting issues potholes streetlights flytipping noise
complaints enquiries requests applications eligibility assessments decisions appeals
grants loans tenants landlords homelessness temporary accommodation energy heating
insulation climate carbon emissions travel buses cycling walking roads bridges flooding
drainage parks leisure sport culture museums archives registrars births deaths marriages
elections voters electoral register census statistics population growth economy business
rates licences inspections food hygiene trading environmental nurseries childcare
education skills employment jobs apprenticeships careers youth older carers disability
mental wellbeing safeguarding police fire rescue ambulance emergency resilience weather
winter gritting snow summer events festival markets tourism heritage kettle marmalade
""".split()

HEADINGS = ["Background", "What we did", "What we learned", "What comes next"]
TITLE_VERBS = ["Redesigning", "Rebuilding", "Simplifying", "Moving", "Testing", "Replacing", "Improving",
               "Opening up", "Measuring", "Reusing"]
TITLE_OBJECTS = ["parking permits", "council tax payments", "bin collection reminders", "school admissions",
                 "housing repairs", "library loans", "blue badge applications", "planning applications",
                 "birth registration", "pothole reporting", "care assessments", "benefit claims",
                 "outpatient letters", "GP appointments", "garden waste subscriptions", "street lighting reports",
                 "electoral registration", "business rates", "taxi licensing", "food hygiene inspections",
                 "flood warnings", "bus passes", "temporary accommodation", "school transport", "burial bookings",
                 "noise complaints", "allotment waiting lists", "free school meals", "pest control visits",
                 "market stall bookings"]
TITLE_SUFFIXES = ["with residents", "for staff", "online", "in three councils", "on a shoestring",
                  "with open source", "as a shared service", "across the region", "with a small team",
                  "in twelve weeks"]
PLACES = ["Barsetshire", "Middlemarch", "Casterbridge", "Loamshire", "Wessex", "Cranford", "Gimmerton",
          "Lowick", "Mudfog", "Eatanswill", "Coketown", "Hollowmere", "Ambridge", "Borchester", "Felpersham",
          "Midsomer", "Causton", "Royston Vasey", "Brigadoon", "Lunnonshire", "Kingsmarkham", "Markshire",
          "Denton", "Holby", "Walford", "Weatherfield", "Emmerdale", "Summerisle", "Tilling", "Blandings"]
ORGANISATION_KINDS = [("council", "Council"), ("central_government", "Digital"), ("nhs", "NHS Trust"),
                      ("charity", "Community Trust"), ("supplier", "Digital Partners"), ("other", "Housing Association")]
TOPICS = ["Waste", "Housing", "Parking", "Benefits", "Council tax", "Libraries", "Schools", "Transport",
          "Planning", "Licensing", "Adult social care", "Children and families", "Health", "Appointments",
          "Data", "Accessibility", "Content design", "User research", "Open source", "Cloud hosting",
          "Legacy systems", "Identity", "Payments", "Notifications", "Forms", "Maps", "Booking", "Reporting",
          "Complaints", "Grants", "Homelessness", "Energy", "Climate", "Roads", "Flooding", "Parks", "Culture",
          "Registrars", "Elections", "Statistics", "Business", "Food safety", "Employment", "Skills",
          "Safeguarding", "Emergency planning", "Events", "Tourism", "Agile delivery", "Performance"]
FIRST_NAMES = ["Ada", "Grace", "Alan", "Mary", "Tim", "Karen", "Ravi", "Aisha", "Tom", "Siobhan", "Dylan",
               "Priya", "Olu", "Mei", "Jonas", "Fatima", "Ewan", "Nia", "Lin", "Sam"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Seacole", "Berners-Lee", "Sparck Jones", "Patel", "Khan",
              "Jones", "Murphy", "Evans", "Shah", "Okafor", "Chen", "Berg", "Ahmed", "Fraser", "Davies",
              "Wong", "Taylor"]
ARTEFACT_THINGS = ["prototype", "design pattern", "research report", "form template", "API client", "dataset",
                   "content guide", "component library", "accessibility checklist", "open data schema"]

WORD_LISTS = {
    "vocabulary": VOCABULARY,
    "heading": HEADINGS,
    "title_verb": TITLE_VERBS,
    "title_object": TITLE_OBJECTS,
    "title_suffix": TITLE_SUFFIXES,
    "place": PLACES,
    "organisation_kind": [kind for kind, _ in ORGANISATION_KINDS],
    "organisation_kind_name": [name for _, name in ORGANISATION_KINDS],
    "topic": TOPICS,
    "first_name": FIRST_NAMES,
    "last_name": LAST_NAMES,
    "artefact_thing": ARTEFACT_THINGS,
}
# The three benchmark words must not turn up by accident (nor anything that stems like them).
for words in WORD_LISTS.values():
    for word in words:
        assert not re.search(r"servic|procur|zeppelin", word, re.I) or word == "as a shared service", word
        assert "'" not in word and "\\" not in word, word

# Tables the fill writes in bulk: their secondary indexes are dropped before it and made
# again after it (PostgreSQL: a GIN index built at once is many times faster than one
# that grows row by row), and their triggers are off while it runs.
BULK_TABLES = ["members", "organisations", "organisation_members", "topics", "case_studies", "case_study_authors",
               "case_study_coauthor_invitations", "case_study_topics", "case_study_marks", "comments", "artefacts",
               "artefact_topics", "artefact_case_studies", "search_index"]


def main():
    parser = argparse.ArgumentParser(
        description="Fill a fresh Kettle database with benchmark data.",
        epilog="See the docstring at the top of this file for what it makes.",
    )
    parser.add_argument("--size", choices=sorted(SIZES), required=True)
    parser.add_argument("--database", required=True, help="postgres://…/NAME or sqlite://PATH")
    parser.add_argument("--kettle", help="the kettle binary [default: $CARGO_TARGET_DIR/release/kettle]")
    args = parser.parse_args()
    size = SIZES[args.size]
    kettle = args.kettle or default_kettle()
    if not Path(kettle).is_file():
        sys.exit(f"no kettle binary at {kettle}: build it with `cargo build --release` or pass --kettle")

    started = time.perf_counter()
    database = Postgres(args.database) if args.database.startswith("postgres") else Sqlite(args.database)
    print(f"{args.size}: {size:,} case studies into {database.shown}")
    database.recreate()
    step("migrate", lambda: migrate(kettle, args.database))
    now_ms = int(time.time() * 1000) - 30 * 86_400_000
    database.prepare(size, now_ms)
    has_counts = database.has_column("case_studies", "useful_count")
    fill = (HERE / f"fill.{database.name}.sql").read_text()
    for name, sql in split_steps(fill):
        table, column = STEP_NEEDS.get(name, (None, None))
        if table and not database.has_column(table, column):
            print(f"  {name:<28} skipped: the schema has no {table}.{column}")
            continue
        step(name, lambda sql=sql: database.run(sql))
    database.finish()
    generation = time.perf_counter() - started

    if has_counts:
        database.check_counts()
    print("rows:")
    for table in BULK_TABLES:
        print(f"  {table:<32} {database.scalar(f'SELECT COUNT(*) FROM {table}'):>12,}")
    print("search_index documents matching:")
    for word in ["service", "procurement", "zeppelin"]:
        t = time.perf_counter()
        n = database.scalar(database.match_count_sql(word))
        print(f"  {word:<12} {n:>10,} ({100 * n / size:.2f}% of the case study count; counted in "
              f"{(time.perf_counter() - t) * 1000:.0f} ms)")
    print(f"database size: {database.size_bytes() / 2**30:.2f} GiB")
    print(f"generation took {generation:.1f} s ({generation / 60:.1f} min)")


def default_kettle():
    target = os.environ.get("CARGO_TARGET_DIR") or str(HERE.parents[2] / "target")
    return str(Path(target) / "release" / "kettle")


def migrate(kettle, url):
    with tempfile.TemporaryDirectory() as data_dir:
        env = dict(os.environ, KETTLE_DATABASE_URL=url, KETTLE_DATA_DIR=data_dir, KETTLE_LOG="warn")
        subprocess.run([kettle, "migrate"], env=env, check=True)


def step(name, action):
    t = time.perf_counter()
    action()
    print(f"  {name:<28} {time.perf_counter() - t:8.1f} s", flush=True)


def split_steps(sql):
    """The `-- step: NAME` sections of a fill file, in order."""
    parts = re.split(r"^-- step: *(\S+) *$", sql, flags=re.M)
    return [(parts[i], parts[i + 1]) for i in range(1, len(parts), 2)]


def word_rows():
    return [(name, position, word) for name, words in WORD_LISTS.items() for position, word in enumerate(words, 1)]


def prepare_sql():
    """The scratch tables the fill reads: its parameters and the word lists."""
    values = ",\n".join(f"('{name}', {position}, '{word}')" for name, position, word in word_rows())
    return ("CREATE TABLE bench_words (list TEXT NOT NULL, position BIGINT NOT NULL, word TEXT NOT NULL, "
            "PRIMARY KEY (list, position));\n"
            f"INSERT INTO bench_words (list, position, word) VALUES\n{values};\n")


def params_sql(size, now_ms):
    return ("CREATE TABLE bench_params (size BIGINT NOT NULL, members BIGINT NOT NULL, organisations BIGINT NOT NULL, "
            "artefacts BIGINT NOT NULL, now_ms BIGINT NOT NULL, span_ms BIGINT NOT NULL, vocabulary BIGINT NOT NULL);\n"
            f"INSERT INTO bench_params VALUES ({size}, {size // 10}, {size // 100}, {size // 10}, {now_ms}, "
            f"{EIGHT_YEARS_MS}, {len(VOCABULARY)});\n")


# Fill steps for what a later migration added, run only when the schema has it, so the
# generator also fills a database migrated by an older kettle binary.
STEP_NEEDS = {
    "counts": ("case_studies", "useful_count"),  # migration 0014
    "search_rows": ("search_rows", "doc"),  # migration 0015, SQLite
}

# Each count the triggers of migration 0014 keep, and the COUNT it must equal.
COUNTS = [
    ("case_studies", "useful_count",
     "(SELECT COUNT(*) FROM case_study_marks m WHERE m.case_study_id = t.id AND m.kind = 'useful')"),
    ("case_studies", "comment_count",
     "(SELECT COUNT(*) FROM comments c WHERE c.subject_type = 'case_study' AND c.subject_id = t.id "
     "AND c.deleted_at IS NULL)"),
    ("case_studies", "artefact_count",
     "(SELECT COUNT(*) FROM artefact_case_studies a WHERE a.case_study_id = t.id)"),
    ("artefacts", "comment_count",
     "(SELECT COUNT(*) FROM comments c WHERE c.subject_type = 'artefact' AND c.subject_id = t.id "
     "AND c.deleted_at IS NULL)"),
]


class Database:
    def check_counts(self):
        """Compares the stored counts of a sample of rows with a COUNT of the link table."""
        for table, column, truth in COUNTS:
            if not self.has_column(table, column):
                continue
            wrong = self.scalar(f"SELECT COUNT(*) FROM (SELECT t.{column} AS stored, {truth} AS counted "
                                f"FROM {table} t WHERE t.id % 97 = 5) s WHERE stored <> counted")
            total = self.scalar(f"SELECT COUNT(*) FROM {table} WHERE id % 97 = 5")
            print(f"  counts: {table}.{column} {'agrees' if wrong == 0 else 'DISAGREES'} on a sample of "
                  f"{total:,} rows ({wrong} wrong)")
            if wrong:
                sys.exit(f"{table}.{column} disagrees with the rows it counts")


class Postgres(Database):
    name = "postgres"

    def __init__(self, url):
        parsed = urllib.parse.urlparse(url)
        self.url = url
        self.database = parsed.path.lstrip("/")
        if not re.fullmatch(r"[a-z0-9_]+", self.database):
            sys.exit(f"name the database in lower case letters, digits and _: {self.database!r}")
        self.admin_url = urllib.parse.urlunparse(parsed._replace(path="/postgres"))
        self.shown = urllib.parse.urlunparse(parsed._replace(netloc=parsed.hostname + f":{parsed.port or 5432}"))

    def psql(self, sql, url=None, capture=False):
        result = subprocess.run(["psql", url or self.url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-f", "-"],
                                input=sql, text=True, check=True, stdout=subprocess.PIPE if capture else None)
        return result.stdout if capture else None

    def recreate(self):
        self.psql(f"SET client_min_messages = warning;\nDROP DATABASE IF EXISTS {self.database} WITH (FORCE);\nCREATE DATABASE {self.database};\n",
                  url=self.admin_url)

    def prepare(self, size, now_ms):
        tables = ", ".join(f"'{t}'" for t in BULK_TABLES)
        self.run(params_sql(size, now_ms) + prepare_sql() + f"""
-- The secondary indexes of the bulk tables, to build again once they are full.
CREATE TABLE bench_indexes AS
    SELECT i.indexname, i.indexdef FROM pg_indexes i
    WHERE i.schemaname = 'public' AND i.tablename IN ({tables})
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname);
DO $$ DECLARE r record; BEGIN
    FOR r IN SELECT indexname FROM bench_indexes LOOP EXECUTE format('DROP INDEX %I', r.indexname); END LOOP;
END $$;
""" + "".join(f"ALTER TABLE {t} DISABLE TRIGGER USER;\n" for t in BULK_TABLES))

    def finish(self):
        step("indexes", lambda: self.run("""
DO $$ DECLARE r record; BEGIN
    FOR r IN SELECT indexdef FROM bench_indexes LOOP EXECUTE r.indexdef; END LOOP;
END $$;
DROP TABLE bench_indexes, bench_params, bench_words;
""" + "".join(f"ALTER TABLE {t} ENABLE TRIGGER USER;\n" for t in BULK_TABLES)))
        step("vacuum analyze", lambda: self.psql("VACUUM ANALYZE;\n"))

    def run(self, sql):
        self.psql("SET maintenance_work_mem = '1GB';\nSET work_mem = '256MB';\n" + sql, capture=True)

    def scalar(self, sql):
        return int(self.psql(sql + ";\n", capture=True).strip())

    def has_column(self, table, column):
        return self.scalar(f"SELECT COUNT(*) FROM information_schema.columns WHERE table_name = '{table}' "
                           f"AND column_name = '{column}'") > 0

    def match_count_sql(self, word):
        return f"SELECT COUNT(*) FROM search_index WHERE document @@ to_tsquery('english', '{word}')"

    def size_bytes(self):
        return self.scalar(f"SELECT pg_database_size('{self.database}')")


class Sqlite(Database):
    name = "sqlite"

    def __init__(self, url):
        path = url.removeprefix("sqlite:").removeprefix("//").split("?")[0]
        self.path = Path(os.path.expanduser(path)).resolve()
        self.shown = str(self.path)
        self.conn = None

    def recreate(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ["", "-wal", "-shm", "-journal"]:
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def connect(self):
        if self.conn is None:
            self.conn = sqlite3.connect(self.path, isolation_level=None)
            # A benchmark database made from scratch: nothing to lose if the machine stops.
            self.conn.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; "
                                    "PRAGMA cache_size = -1000000; PRAGMA temp_store = FILE;")
        return self.conn

    def prepare(self, size, now_ms):
        conn = self.connect()
        names = ", ".join(f"'{t}'" for t in BULK_TABLES)
        self.triggers = conn.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ({names})").fetchall()
        for name, _ in self.triggers:
            conn.execute(f'DROP TRIGGER "{name}"')
        self.run(params_sql(size, now_ms) + prepare_sql())

    def finish(self):
        conn = self.connect()
        for _, sql in self.triggers:
            conn.execute(sql)
        self.run("DROP TABLE bench_params; DROP TABLE bench_words;")
        step("analyze", lambda: self.run("ANALYZE;"))
        conn.close()
        # What the application sets on the file (backend/db/mod.rs), now the bulk load is over.
        self.conn = None
        self.connect().execute("PRAGMA journal_mode = WAL")

    def run(self, sql):
        self.connect().executescript(sql)

    def scalar(self, sql):
        return self.connect().execute(sql).fetchone()[0]

    def has_column(self, table, column):
        return any(row[1] == column for row in self.connect().execute(f"PRAGMA table_info({table})"))

    def match_count_sql(self, word):
        return f"SELECT COUNT(*) FROM search_index WHERE search_index MATCH '{word}'"

    def size_bytes(self):
        return sum(Path(f"{self.path}{s}").stat().st_size for s in ["", "-wal"] if Path(f"{self.path}{s}").exists())


if __name__ == "__main__":
    if not shutil.which("psql") and any("postgres" in a for a in sys.argv):
        sys.exit("psql is needed for PostgreSQL")
    main()
