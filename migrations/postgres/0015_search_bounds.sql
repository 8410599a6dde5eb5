-- Search whose work is bounded (backend/search/mod.rs): a search ranks only the most recent
-- matches, so PostgreSQL must find those without fetching every match.
--
-- `id` numbers the rows in the order they were indexed (an edit indexes a row again, so it
-- counts as recent, as FTS5's rowid does on SQLite). Each GIN index holds, beside the
-- words, the block of 1,024 rows the row falls in (ARRAY[(id / 1024)::int], the same
-- expression the search uses): intersecting the words with a window of recent blocks
-- happens inside the index, so a word in a million documents costs a window's worth.
-- `title_document` is the title's own tsvector, small enough to stay in the row, so title
-- matches (ranked first) are found the same way. Rows get ids in their current order.
ALTER TABLE search_index
    ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN title_document tsvector GENERATED ALWAYS AS (to_tsvector('english', title)) STORED;
CREATE UNIQUE INDEX search_index_id ON search_index (id);
DROP INDEX search_index_document;
CREATE INDEX search_index_document ON search_index USING GIN (document, (ARRAY[(id / 1024)::int]));
CREATE INDEX search_index_title ON search_index USING GIN (title_document, (ARRAY[(id / 1024)::int]));
-- The search sizes its window from the share of documents holding each word (pg_stats);
-- have them now rather than at autovacuum's next pass.
ANALYZE search_index;
