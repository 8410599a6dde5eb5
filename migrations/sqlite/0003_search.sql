-- Full-text search over published case studies and organisations (FTS5). Rows are kept
-- by the application in the same transaction as the change they reflect.
CREATE VIRTUAL TABLE search_index USING fts5(
    kind UNINDEXED,
    item_id UNINDEXED,
    title,
    body,
    tokenize = 'porter unicode61'
);
