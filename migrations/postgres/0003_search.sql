-- Full-text search over published case studies and organisations (tsvector with a GIN
-- index). Rows are kept by the application in the same transaction as the change they
-- reflect.
CREATE TABLE search_index (
    kind TEXT NOT NULL,
    item_id BIGINT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    document tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')
    ) STORED,
    PRIMARY KEY (kind, item_id)
);
CREATE INDEX search_index_document ON search_index USING GIN (document);
