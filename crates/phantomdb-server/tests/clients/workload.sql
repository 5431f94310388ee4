-- Run by psql against `phantomdb serve` (tests/server/psql.rs), which replaces @CSV_IN@ and
-- @CSV_OUT@ with file paths.
\set VERBOSITY verbose
CREATE TABLE accounts (id INT PRIMARY KEY, owner TEXT NOT NULL, balance BIGINT DEFAULT 0);
INSERT INTO accounts VALUES (1, 'ann', 100), (2, 'bob', 50);
BEGIN;
UPDATE accounts SET balance = balance - 10 WHERE id = 1;
UPDATE accounts SET balance = balance + 10 WHERE id = 2;
COMMIT;
SELECT id, owner, balance FROM accounts ORDER BY id;
BEGIN;
DELETE FROM accounts;
SELECT * FROM no_such_table;
SELECT 1;
ROLLBACK;
SELECT count(*) AS kept FROM accounts;
\copy accounts FROM '@CSV_IN@' WITH (FORMAT csv)
\copy accounts (id, owner) FROM stdin
5	eve\ttab
6	frank
\.
\copy (SELECT id, owner, balance FROM accounts ORDER BY id) TO '@CSV_OUT@' WITH (FORMAT csv, HEADER)
SELECT sum(balance) AS total, count(*) AS n FROM accounts;
\dt
\d accounts
