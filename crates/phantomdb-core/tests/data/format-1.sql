-- The script that made format-1.phantomdb (see README.md beside it). Do not change either.
CREATE TABLE items (id INT PRIMARY KEY, name TEXT NOT NULL, price DOUBLE DEFAULT 0, added DATE, active BOOLEAN);
INSERT INTO items VALUES (1, 'apple', 1.5, '2026-01-02', true), (2, 'pear', 2.0, '2026-02-03', false), (3, 'plum', 0.5, NULL, true);
INSERT INTO items (id, name) VALUES (4, 'fig');
DELETE FROM items WHERE id = 3;
UPDATE items SET price = 2.25 WHERE id = 2;
ALTER TABLE items ADD COLUMN stock BIGINT DEFAULT 10;
CREATE TABLE events (id BIGINT PRIMARY KEY, ts TIMESTAMP, kind TEXT, n BIGINT);
INSERT INTO events SELECT value, to_timestamp(1767225600 + value * 60), CASE WHEN value % 3 = 0 THEN 'a' ELSE 'b' END, value * 2 FROM generate_series(1, 10000) AS g(value);
DELETE FROM events WHERE id % 10 = 0;
CREATE VIEW cheap AS SELECT name FROM items WHERE price < 2;
CREATE TABLE scratch (k TEXT) USING memory;
SET default_table_access_method = 'redb';
