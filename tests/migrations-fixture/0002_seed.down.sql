DELETE FROM fixture_notes;
