-- Images members upload (backend/uploads/): each is decoded, checked and re-encoded
-- without its metadata, then kept at up to three widths, in the database itself so
-- that every instance serves the same images and one backup holds everything.
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    -- Random, 32 hex digits: the image's address, /uploads/<key>.<png|jpg>.
    key TEXT NOT NULL UNIQUE,
    owner_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    alt TEXT NOT NULL,
    format TEXT NOT NULL CHECK (format IN ('png', 'jpeg')),
    -- The largest width kept, and its height.
    width BIGINT NOT NULL,
    height BIGINT NOT NULL,
    -- Every width's bytes together: what counts towards the owner's quota.
    bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
-- Serves a member's images, newest first, and erasing them.
CREATE INDEX images_by_owner ON images (owner_id, id);

-- Each width an image is kept at; the largest is the image's own width.
CREATE TABLE image_files (
    image_id BIGINT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    width BIGINT NOT NULL,
    height BIGINT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (image_id, width)
);

-- The bytes a member's images take, kept with every upload and deletion, so that the
-- quota is one conditional update and two uploads at once cannot both slip under it.
ALTER TABLE members ADD COLUMN image_bytes BIGINT NOT NULL DEFAULT 0;
