-- A member's profile lists the artefacts they shared, newest first
-- (backend/artefacts/mod.rs, `shared_by`).
CREATE INDEX artefacts_by_sharer ON artefacts (created_by, id);
