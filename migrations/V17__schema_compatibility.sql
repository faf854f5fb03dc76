-- Which releases may run against this schema: those built for schema `readable_from` or
-- later. The migrate step writes it (na_storage::OLDEST_COMPATIBLE_SCHEMA) after applying
-- its migrations, so code rolled back by a release runs on the newer schema as long as the
-- migrations between were additive (docs/operations.md, "Rolling back a release").
CREATE TABLE schema_compatibility (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    readable_from integer NOT NULL
);
INSERT INTO schema_compatibility (readable_from) VALUES (17);
