-- Embedded by `dbx::migrations!` in tests/tests/suite/migrate.rs.
CREATE TABLE fixture_notes (
    id BIGINT PRIMARY KEY,
    body TEXT NOT NULL
);
