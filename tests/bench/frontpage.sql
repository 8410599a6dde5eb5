-- The front page as ONE hand-written statement: the 20 newest published, visible case
-- studies with their authors, organisation, topics and three counts, as the JSON
-- Kettle's `caseStudies(first: 20)` returns them. pgbench runs it as the floor for what
-- any server on this database could do (tests/bench/frontpage.py):
--
--     pgbench -n -M prepared -c 16 -j 2 -T 20 -f tests/bench/frontpage.sql kettle_bench_10k
--
-- The counts are those kept on the case_studies row (useful_count, comment_count,
-- artefact_count), as Kettle reads them. Authors in position order, topics by name, as
-- Kettle lists them.
SELECT coalesce(json_agg(f ORDER BY f."publishedAt" DESC, f.id DESC), '[]')
FROM (
    SELECT c.id, c.title, c.summary, c.phase, c.published_at AS "publishedAt",
           c.useful_count AS "usefulCount", c.comment_count AS "commentCount",
           c.artefact_count AS "artefactCount",
           coalesce((SELECT json_agg(json_build_object('handle', m.handle, 'displayName', m.display_name) ORDER BY a.position)
                     FROM case_study_authors a JOIN members m ON m.id = a.member_id
                     WHERE a.case_study_id = c.id), '[]') AS authors,
           (SELECT json_build_object('name', o.name, 'slug', o.slug)
            FROM organisations o WHERE o.id = c.organisation_id) AS organisation,
           coalesce((SELECT json_agg(json_build_object('name', t.name, 'slug', t.slug) ORDER BY t.name)
                     FROM case_study_topics ct JOIN topics t ON t.id = ct.topic_id
                     WHERE ct.case_study_id = c.id), '[]') AS topics
    FROM case_studies c
    WHERE c.status = 'published' AND c.hidden_at IS NULL
    ORDER BY c.published_at DESC, c.id DESC
    LIMIT 20
) f;
