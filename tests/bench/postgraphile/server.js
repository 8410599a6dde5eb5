// PostGraphile 4 over a Kettle database, the "generic GraphQL over PostgreSQL" side of the
// front-page comparison (tests/bench/frontpage.py starts and stops it).
//
//     npm ci && node server.js postgres://postgres@127.0.0.1:5432/kettle_bench_10k 18090
//
// As `postgraphile --disable-graphiql` with no watch, but through the library so that the
// pool matches Kettle's on PostgreSQL (16 connections; pg's default is 10) and no query is
// logged (Kettle runs with KETTLE_LOG=warn).
//
// Before the counts are kept on the case_studies row, CaseStudy gets usefulCount,
// commentCount and artefactCount as SQL fragments inlined into PostGraphile's one
// statement, what a computed column would give, without creating a function in a
// database that Kettle's migrations own. Once the columns exist PostGraphile exposes them
// itself under the same names, so the benchmark sends one document in both states.
"use strict";

const http = require("http");
const { Pool } = require("pg");
const { postgraphile } = require("postgraphile");
const { makeExtendSchemaPlugin, makePgSmartTagsPlugin, gql, embed } = require("graphile-utils");

const [databaseUrl, portText] = process.argv.slice(2);
if (!databaseUrl || !portText) {
  console.error("usage: node server.js DATABASE_URL PORT");
  process.exit(2);
}

// The tables the front page reads. The others are left out of the schema: some of their
// names clash with PostGraphile's own types (a `cursors` table against its `Cursor`),
// and a schema's size does not change what one query costs.
const FRONT_PAGE_TABLES = new Set([
  "case_studies",
  "case_study_authors",
  "members",
  "organisations",
  "case_study_topics",
  "topics",
]);

const onlyFrontPageTables = makePgSmartTagsPlugin([
  {
    kind: "class",
    match: (table) => table.namespaceName === "public" && !FRONT_PAGE_TABLES.has(table.name),
    tags: { omit: true },
  },
]);

const countFragments = {
  usefulCount: (sql, cs) =>
    sql.fragment`(SELECT count(*) FROM case_study_marks m WHERE m.case_study_id = ${cs}.id AND m.kind = 'useful')`,
  // As Kettle counts them: replies included, deleted ones not.
  commentCount: (sql, cs) =>
    sql.fragment`(SELECT count(*) FROM comments c WHERE c.subject_type = 'case_study' AND c.subject_id = ${cs}.id AND c.deleted_at IS NULL)`,
  artefactCount: (sql, cs) =>
    sql.fragment`(SELECT count(*) FROM artefact_case_studies a WHERE a.case_study_id = ${cs}.id)`,
};

function countsPlugin() {
  return makeExtendSchemaPlugin((build) => {
    const sql = build.pgSql;
    // gql is a template tag: call it with the document's parts so that each fragment
    // is embedded where its field's directive names it.
    const strings = ["extend type CaseStudy {\n"];
    const values = [];
    for (const [name, fragment] of Object.entries(countFragments)) {
      strings[strings.length - 1] += `  ${name}: BigInt! @pgQuery(fragment: `;
      values.push(embed((queryBuilder) => fragment(sql, queryBuilder.getTableAlias())));
      strings.push(")\n");
    }
    strings[strings.length - 1] += "}\n";
    return { typeDefs: gql(strings, ...values) };
  });
}

async function main() {
  const pool = new Pool({ connectionString: databaseUrl, max: 16 });
  const { rows } = await pool.query(
    "SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'case_studies' AND column_name = 'comment_count'",
  );
  const storedCounts = rows.length > 0;
  const middleware = postgraphile(pool, "public", {
    graphiql: false,
    watchPg: false,
    disableQueryLog: true,
    appendPlugins: storedCounts ? [onlyFrontPageTables] : [onlyFrontPageTables, countsPlugin()],
  });
  // Built now rather than on the first request, so that the benchmark's warm-up is not
  // spent introspecting, and a schema that cannot be built stops the server at once.
  await middleware.getGraphQLSchema();
  const server = http.createServer(middleware);
  server.keepAliveTimeout = 60000;
  server.listen(Number(portText), "127.0.0.1", () => {
    console.log(`postgraphile listening on 127.0.0.1:${portText} (counts ${storedCounts ? "stored" : "computed"})`);
  });
  const stop = () => server.close(() => pool.end().then(() => process.exit(0)));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
