-- The member directory and @mention suggestions (accounts::directory) read members by
-- handle, a prefix at a time, compared byte by byte (handles are ASCII): this index uses
-- the same collation, so a prefix is one range of it whatever the database's locale.
CREATE INDEX members_handle_bytewise ON members (handle COLLATE "C");
