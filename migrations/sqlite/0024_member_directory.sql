-- The member directory and @mention suggestions (accounts::directory) read members by
-- handle, a prefix at a time, compared byte by byte: SQLite's unique index on handle
-- (members_handle_key) already compares so and serves them. PostgreSQL's needs an index
-- in the "C" collation; this file keeps the numbering the same in both.
SELECT 1;
