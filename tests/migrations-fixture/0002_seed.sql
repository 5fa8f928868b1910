INSERT INTO fixture_notes (id, body) VALUES (1, 'it''s; not -- a comment');
