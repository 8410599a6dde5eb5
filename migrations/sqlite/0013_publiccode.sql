-- A code artefact's publiccode.yml (https://github.com/publiccodeyml/publiccode.yml):
-- the text as the member gave it, and the fields Kettle checked and shows. At most one per
-- artefact; it goes with the artefact.

CREATE TABLE artefact_publiccode (
    artefact_id BIGINT PRIMARY KEY REFERENCES artefacts (id) ON DELETE CASCADE,
    -- The original text (at most 64 KiB, checked before it is stored).
    source TEXT NOT NULL,
    yml_version TEXT NOT NULL,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    -- legal.license: an SPDX licence expression (`EUPL-1.2 OR MIT`).
    licence TEXT NOT NULL,
    maintenance_type TEXT NOT NULL CHECK (maintenance_type IN ('internal', 'contract', 'community', 'none')),
    development_status TEXT NOT NULL
        CHECK (development_status IN ('concept', 'development', 'beta', 'stable', 'obsolete')),
    -- The description in one language (English when there is one).
    description_language TEXT NOT NULL,
    short_description TEXT NOT NULL,
    long_description TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
