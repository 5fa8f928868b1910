DROP TABLE fixture_notes;
