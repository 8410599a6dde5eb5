-- Benchmark data for PostgreSQL, run by generate.py (see its docstring) one step at a time
-- (one psql session each), after `kettle migrate` and after it made bench_params (sizes,
-- the present instant) and bench_words (the word lists), dropped the bulk tables'
-- secondary indexes and turned their triggers off. fill.sqlite.sql makes the same data the
-- same way; keep the two in step. Everything is set-based: generate_series and
-- INSERT … SELECT. Ids are given (OVERRIDING SYSTEM VALUE) so rows can refer to each other
-- by arithmetic; the identity sequences are moved past them at the end.

-- step: random
-- Eight independent random numbers per row number, drawn once, so that every statement
-- below that derives something from row n sees the same draw.
CREATE UNLOGGED TABLE bench_random AS
SELECT n, (random() * 2147483646)::bigint AS a, (random() * 2147483646)::bigint AS b,
       (random() * 2147483646)::bigint AS c, (random() * 2147483646)::bigint AS d,
       (random() * 2147483646)::bigint AS e, (random() * 2147483646)::bigint AS f,
       (random() * 2147483646)::bigint AS g, (random() * 2147483646)::bigint AS h
FROM generate_series(1, (SELECT size FROM bench_params)) AS n;
ALTER TABLE bench_random ADD PRIMARY KEY (n);
CREATE UNLOGGED TABLE bench_k AS SELECT k FROM generate_series(0, 9) AS k;

-- step: paragraphs
-- 2,000 paragraphs of eight ten-word sentences (~520 bytes). Word i of the vocabulary is
-- drawn with probability falling off like 1/sqrt(i) (u squared); 'service' takes one
-- place in three paragraphs out of five.
CREATE UNLOGGED TABLE bench_paragraphs (id BIGINT PRIMARY KEY, text TEXT NOT NULL);
INSERT INTO bench_paragraphs (id, text)
SELECT p, string_agg(token, ' ' ORDER BY pos)
FROM (
    SELECT p, pos,
           CASE WHEN pos % 10 = 0 THEN upper(substr(w, 1, 1)) || substr(w, 2) ELSE w END
           || CASE WHEN pos % 10 = 9 THEN '.' WHEN pos % 10 = 4 AND (p + pos) % 3 = 0 THEN ',' ELSE '' END AS token
    FROM (
        SELECT s.p, s.pos,
               CASE WHEN s.p * 2654435761 % 1000003 % 5 < 3 AND s.pos = 1 + (s.p * 7) % 79 THEN 'service' ELSE w.word END AS w
        FROM (SELECT i / 80 AS p, i % 80 AS pos, random() AS u FROM generate_series(0, 2000 * 80 - 1) AS i) s
        CROSS JOIN bench_params bp
        JOIN bench_words w ON w.list = 'vocabulary' AND w.position = 1 + floor(s.u * s.u * bp.vocabulary)::bigint
    ) worded
) tokens
GROUP BY p;

-- step: members
INSERT INTO members (id, email, email_normalized, display_name, handle, role, created_at, updated_at,
                     email_verified_at)
OVERRIDING SYSTEM VALUE
SELECT r.n, 'member' || r.n || '@example.org', 'member' || r.n || '@example.org', fn.word || ' ' || ln.word,
       'member' || r.n, 'member', p.now_ms - p.span_ms + r.n * (p.span_ms / p.members),
       p.now_ms - p.span_ms + r.n * (p.span_ms / p.members), p.now_ms - p.span_ms + r.n * (p.span_ms / p.members)
FROM bench_random r CROSS JOIN bench_params p
JOIN bench_words fn ON fn.list = 'first_name' AND fn.position = 1 + r.a % 20
JOIN bench_words ln ON ln.list = 'last_name' AND ln.position = 1 + r.b % 20
WHERE r.n <= p.members;

-- step: organisations
INSERT INTO organisations (id, slug, name, kind, website, created_by, created_at, updated_at)
OVERRIDING SYSTEM VALUE
SELECT r.n, lower(replace(pl.word, ' ', '-')) || '-' || r.n, pl.word || ' ' || kn.word, k.word,
       'https://' || lower(replace(pl.word, ' ', '-')) || '-' || r.n || '.example.gov.uk',
       1 + r.a % p.members, p.now_ms - p.span_ms + r.n * (p.span_ms / p.organisations),
       p.now_ms - p.span_ms + r.n * (p.span_ms / p.organisations)
FROM bench_random r CROSS JOIN bench_params p
JOIN bench_words pl ON pl.list = 'place' AND pl.position = 1 + r.b % 30
JOIN bench_words k ON k.list = 'organisation_kind' AND k.position = 1 + r.c % 6
JOIN bench_words kn ON kn.list = 'organisation_kind_name' AND kn.position = k.position
WHERE r.n <= p.organisations;
INSERT INTO organisation_members (organisation_id, member_id, role, status, requested_at, decided_at, decided_by)
SELECT id, created_by, 'admin', 'approved', created_at, created_at, created_by FROM organisations;

-- step: topics
INSERT INTO topics (id, slug, name, description, created_at, updated_at)
OVERRIDING SYSTEM VALUE
SELECT w.position, lower(replace(w.word, ' ', '-')), w.word, 'Case studies about ' || lower(w.word) || '.',
       p.now_ms - p.span_ms, p.now_ms - p.span_ms
FROM bench_words w CROSS JOIN bench_params p WHERE w.list = 'topic';

-- step: case_studies
-- Published in id order over eight years (2% drafts, ids 49 modulo 50). The Markdown body
-- is four sections of nine paragraphs; the HTML is what Kettle's renderer makes of it
-- (a `##` heading becomes <h3>); 'procurement' and 'zeppelin' go in as extra paragraphs.
INSERT INTO case_studies (id, title, summary, body_source, body_html, phase, organisation_id, author_id, status,
                          version, created_at, updated_at, published_at)
OVERRIDING SYSTEM VALUE
SELECT n, title, summary, body_source,
       replace(replace(replace(replace(
           '<p>' || replace(body_source, chr(10) || chr(10), '</p>' || chr(10) || '<p>') || '</p>',
           '<p>## Background</p>', '<h3>Background</h3>'),
           '<p>## What we did</p>', '<h3>What we did</h3>'),
           '<p>## What we learned</p>', '<h3>What we learned</h3>'),
           '<p>## What comes next</p>', '<h3>What comes next</h3>'),
       phase, organisation_id, author_id, status, 1, created_at, coalesce(published_at, created_at), published_at
FROM (
    SELECT r.n,
           tv.word || ' ' || tob.word || ' ' || ts.word AS title,
           'How we went about ' || lower(tv.word) || ' ' || tob.word || ', and what we would do again.' AS summary,
           '## Background' || chr(10) || chr(10)
           || (SELECT text FROM bench_paragraphs WHERE id = (r.a + 0 * (1 + r.b % 1999)) % 2000) || chr(10) || chr(10)
           || (SELECT text FROM bench_paragraphs WHERE id = (r.a + 1 * (1 + r.b % 1999)) % 2000) || chr(10) || chr(10)
           || '## What we did' || chr(10) || chr(10)
           || (SELECT text FROM bench_paragraphs WHERE id = (r.a + 2 * (1 + r.b % 1999)) % 2000) || chr(10) || chr(10)
           || (SELECT text FROM bench_paragraphs WHERE id = (r.a + 3 * (1 + r.b % 1999)) % 2000) || chr(10) || chr(10)
           || (SELECT text FROM bench_paragraphs WHERE id = (r.a + 4 * (1 + r.b % 1999)) % 2000) || chr(10) || chr(10)
           || CASE WHEN r.n % 50 = 17 THEN 'The procurement took longer than we planned, so we shared the contract '
                   || 'and what we learned about buying with other councils.' || chr(10) || chr(10) ELSE '' END
           || '## What we learned' || chr(10) || chr(10)
           || (SELECT text FROM bench_paragraphs WHERE id = (r.a + 5 * (1 + r.b % 1999)) % 2000) || chr(10) || chr(10)
           || (SELECT text FROM bench_paragraphs WHERE id = (r.a + 6 * (1 + r.b % 1999)) % 2000) || chr(10) || chr(10)
           || CASE WHEN r.n % 10000 = 4321 THEN 'Someone suggested a zeppelin for the deliveries. We hired vans.'
                   || chr(10) || chr(10) ELSE '' END
           || '## What comes next' || chr(10) || chr(10)
           || (SELECT text FROM bench_paragraphs WHERE id = (r.a + 7 * (1 + r.b % 1999)) % 2000) || chr(10) || chr(10)
           || (SELECT text FROM bench_paragraphs WHERE id = (r.a + 8 * (1 + r.b % 1999)) % 2000) AS body_source,
           (ARRAY['discovery', 'alpha', 'beta', 'live', 'retired'])[1 + (r.f / 12) % 5] AS phase,
           CASE WHEN r.a % 10 = 0 THEN NULL ELSE 1 + r.g % p.organisations END AS organisation_id,
           1 + r.b % p.members AS author_id,
           CASE WHEN r.n % 50 = 49 THEN 'draft' ELSE 'published' END AS status,
           p.now_ms - p.span_ms + (r.n - 1) * (p.span_ms / p.size) + r.d % (p.span_ms / p.size)
               - r.e % 2592000000 AS created_at,
           CASE WHEN r.n % 50 = 49 THEN NULL
                ELSE p.now_ms - p.span_ms + (r.n - 1) * (p.span_ms / p.size) + r.d % (p.span_ms / p.size) END
               AS published_at
    FROM bench_random r CROSS JOIN bench_params p
    JOIN bench_words tv ON tv.list = 'title_verb' AND tv.position = 1 + r.c % 10
    JOIN bench_words tob ON tob.list = 'title_object' AND tob.position = 1 + (r.c / 10) % 30
    JOIN bench_words ts ON ts.list = 'title_suffix' AND ts.position = 1 + (r.c / 300) % 10
    WHERE r.n <= p.size
    ORDER BY r.n
) made;

-- step: authors
-- The author at position 0; a co-author at position 1 on one case study in ten, with the
-- accepted invitation every co-author has on record (migration 0008).
INSERT INTO case_study_authors (case_study_id, member_id, position)
SELECT id, author_id, 0 FROM case_studies;
INSERT INTO case_study_authors (case_study_id, member_id, position)
SELECT c.id, 1 + c.author_id % p.members, 1
FROM case_studies c JOIN bench_random r ON r.n = c.id CROSS JOIN bench_params p
WHERE (r.e / 15) % 10 = 0 AND 1 + c.author_id % p.members <> c.author_id;
INSERT INTO case_study_coauthor_invitations (case_study_id, invitee_id, invited_by, status, created_at, responded_at)
SELECT a.case_study_id, a.member_id, c.author_id, 'accepted', c.created_at, c.created_at
FROM case_study_authors a JOIN case_studies c ON c.id = a.case_study_id WHERE a.position = 1;

-- step: topics_links
INSERT INTO case_study_topics (case_study_id, topic_id)
SELECT c.id, 1 + (r.g / 7 + k.k * 17) % 50
FROM case_studies c JOIN bench_random r ON r.n = c.id JOIN bench_k k ON k.k <= (r.e / 5) % 3
ON CONFLICT DO NOTHING;

-- step: comments
-- 0-4 comments on each published case study (two on average), an hour apart.
INSERT INTO comments (subject_type, subject_id, parent_id, author_id, body_source, body_html, created_at)
SELECT 'case_study', c.id, NULL, 1 + (r.d + k.k * 104729) % p.members,
       'Thank you for writing this up. Did the ' || w.word || ' work carry on after the pilot?',
       '<p>Thank you for writing this up. Did the ' || w.word || ' work carry on after the pilot?</p>',
       c.published_at + (k.k + 1) * 3600000
FROM case_studies c JOIN bench_random r ON r.n = c.id CROSS JOIN bench_params p
JOIN bench_k k ON k.k < r.e % 5
JOIN bench_words w ON w.list = 'vocabulary' AND w.position = 1 + (r.h + k.k) % p.vocabulary
WHERE c.status = 'published'
ORDER BY c.id, k.k;

-- step: marks
-- 0-3 'useful' marks on each published case study (never by its author) and a bookmark
-- on one in three.
INSERT INTO case_study_marks (case_study_id, member_id, kind, created_at)
SELECT c.id, 1 + (r.f + k.k * 7919) % p.members, 'useful', c.published_at + (k.k + 1) * 86400000
FROM case_studies c JOIN bench_random r ON r.n = c.id CROSS JOIN bench_params p JOIN bench_k k ON k.k < r.f % 4
WHERE c.status = 'published' AND 1 + (r.f + k.k * 7919) % p.members <> c.author_id
ON CONFLICT DO NOTHING;
INSERT INTO case_study_marks (case_study_id, member_id, kind, created_at)
SELECT c.id, 1 + (r.h / 3) % p.members, 'bookmark', c.published_at + 86400000
FROM case_studies c JOIN bench_random r ON r.n = c.id CROSS JOIN bench_params p
WHERE c.status = 'published' AND (r.f / 4) % 3 = 0
ON CONFLICT DO NOTHING;

-- step: artefacts
-- One in ten per case study, shared over the same eight years; each describes itself in
-- one paragraph and links one or two published case studies.
INSERT INTO artefacts (id, title, kind, description_source, description_html, url, licence, status, organisation_id,
                       created_by, reuse_count, version, created_at, updated_at)
OVERRIDING SYSTEM VALUE
SELECT r.n, upper(substr(tob.word, 1, 1)) || substr(tob.word, 2) || ' ' || th.word,
       (ARRAY['code', 'design_pattern', 'template', 'research', 'dataset', 'procurement', 'service_component',
              'other'])[1 + r.e % 8],
       para.text, '<p>' || para.text || '</p>', 'https://example.org/artefacts/' || r.n,
       (ARRAY['MIT', 'OGL-UK-3.0', 'Apache-2.0', 'CC-BY-4.0'])[1 + r.f % 4],
       (ARRAY['experimental', 'in_use', 'in_use', 'deprecated'])[1 + (r.f / 4) % 4],
       CASE WHEN r.a % 5 = 0 THEN NULL ELSE 1 + r.g % p.organisations END, 1 + r.b % p.members, 0, 1,
       p.now_ms - p.span_ms + r.n * (p.span_ms / p.artefacts), p.now_ms - p.span_ms + r.n * (p.span_ms / p.artefacts)
FROM bench_random r CROSS JOIN bench_params p
JOIN bench_words tob ON tob.list = 'title_object' AND tob.position = 1 + r.c % 30
JOIN bench_words th ON th.list = 'artefact_thing' AND th.position = 1 + (r.c / 30) % 10
JOIN bench_paragraphs para ON para.id = r.d % 2000
WHERE r.n <= p.artefacts;
INSERT INTO artefact_topics (artefact_id, topic_id)
SELECT a.id, 1 + r.h % 50 FROM artefacts a JOIN bench_random r ON r.n = a.id;
INSERT INTO artefact_case_studies (artefact_id, case_study_id)
SELECT a.id, 1 + (r.h / 50 + k.k * 131) % p.size
FROM artefacts a JOIN bench_random r ON r.n = a.id CROSS JOIN bench_params p JOIN bench_k k ON k.k <= r.g % 2
WHERE (1 + (r.h / 50 + k.k * 131) % p.size) % 50 <> 49
ON CONFLICT DO NOTHING;
INSERT INTO comments (subject_type, subject_id, parent_id, author_id, body_source, body_html, created_at)
SELECT 'artefact', a.id, NULL, 1 + (r.a / 3 + k.k * 104729) % p.members, 'We reused this. Thank you.',
       '<p>We reused this. Thank you.</p>', a.created_at + (k.k + 1) * 3600000
FROM artefacts a JOIN bench_random r ON r.n = a.id CROSS JOIN bench_params p JOIN bench_k k ON k.k < r.a % 3
ORDER BY a.id, k.k;

-- step: search_index
-- What backend/search/mod.rs::index writes for each item (the title; the plain text of the
-- Markdown it is given, words separated by single spaces), in the order the items appeared.
-- The scalar subqueries run after the sort, on one row at a time, so only the keys are sorted.
CREATE UNLOGGED TABLE bench_index_order AS
SELECT row_number() OVER (ORDER BY at, kind, item_id) AS seq, kind, item_id FROM (
    SELECT 'organisation' AS kind, id AS item_id, created_at AS at FROM organisations
    UNION ALL SELECT 'artefact', id, created_at FROM artefacts
    UNION ALL SELECT 'case_study', id, published_at FROM case_studies WHERE status = 'published'
) items;
INSERT INTO search_index (kind, item_id, title, body)
SELECT kind, item_id,
       CASE kind
           WHEN 'case_study' THEN (SELECT title FROM case_studies WHERE id = item_id)
           WHEN 'artefact' THEN (SELECT title FROM artefacts WHERE id = item_id)
           ELSE (SELECT name FROM organisations WHERE id = item_id) END,
       CASE kind
           WHEN 'case_study' THEN (SELECT summary || ' ' || replace(replace(body_source, '## ', ''), chr(10) || chr(10), ' ')
                                   FROM case_studies WHERE id = item_id)
           WHEN 'artefact' THEN (SELECT licence || ' ' || description_source FROM artefacts WHERE id = item_id)
           ELSE (SELECT replace(kind, '_', ' ') || ' ' || website FROM organisations WHERE id = item_id) END
FROM bench_index_order
ORDER BY seq;

-- step: sequences
-- Past the ids given above, so rows the application adds later get new ones.
SELECT setval(pg_get_serial_sequence('members', 'id'), (SELECT max(id) FROM members));
SELECT setval(pg_get_serial_sequence('organisations', 'id'), (SELECT max(id) FROM organisations));
SELECT setval(pg_get_serial_sequence('topics', 'id'), (SELECT max(id) FROM topics));
SELECT setval(pg_get_serial_sequence('case_studies', 'id'), (SELECT max(id) FROM case_studies));
SELECT setval(pg_get_serial_sequence('artefacts', 'id'), (SELECT max(id) FROM artefacts));

-- step: counts
-- Only when the schema keeps counts (migration 0014). The triggers that keep them were off
-- while the link tables filled, so every count is still 0: set those that are not, from
-- one aggregate of each link table.
CREATE TABLE bench_counts AS
SELECT id, sum(useful) AS useful, sum(comments) AS comments, sum(artefacts) AS artefacts FROM (
    SELECT case_study_id AS id, 1 AS useful, 0 AS comments, 0 AS artefacts FROM case_study_marks WHERE kind = 'useful'
    UNION ALL SELECT subject_id, 0, 1, 0 FROM comments WHERE subject_type = 'case_study' AND deleted_at IS NULL
    UNION ALL SELECT case_study_id, 0, 0, 1 FROM artefact_case_studies
) links GROUP BY id;
UPDATE case_studies SET useful_count = n.useful, comment_count = n.comments, artefact_count = n.artefacts
FROM bench_counts n WHERE n.id = case_studies.id;
UPDATE artefacts SET comment_count = n.comments
FROM (SELECT subject_id AS id, COUNT(*) AS comments FROM comments WHERE subject_type = 'artefact' AND deleted_at IS NULL
      GROUP BY subject_id) n
WHERE n.id = artefacts.id;
DROP TABLE bench_counts;

-- step: cleanup
DROP TABLE bench_index_order, bench_paragraphs, bench_random, bench_k;
