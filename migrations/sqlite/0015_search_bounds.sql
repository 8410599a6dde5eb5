-- Search whose work is bounded (backend/search/mod.rs). FTS5 already reads a word's
-- documents newest first (by rowid) and stops at a limit, so the search itself needs no
-- change here (PostgreSQL's 0015 adds what it needs for the same search). But FTS5 finds
-- a row only by rowid or by its words: `kind` and `item_id` are UNINDEXED, so removing an
-- item's row (which every publish, edit and archive does) read every row, seconds at a
-- million. `search_rows` keeps each item's rowid; search::index and search::remove keep
-- it with the row, in the same transaction.
CREATE TABLE search_rows (
    kind TEXT NOT NULL,
    item_id BIGINT NOT NULL,
    -- The rowid of the item's row in search_index.
    doc INTEGER NOT NULL,
    PRIMARY KEY (kind, item_id)
);
INSERT INTO search_rows (kind, item_id, doc) SELECT kind, item_id, rowid FROM search_index;
