"""Schemas and data for the snapshot tests: composite keys, self-references, an FK cycle, a
partitioned table, enums, arrays, jsonb, bytea, numeric, timestamptz, intervals, uuid, ranges, and
text that YAML and CSV find awkward."""

PG_SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE orgs (id serial PRIMARY KEY, slug text NOT NULL UNIQUE, name text NOT NULL);
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    org_id int NOT NULL REFERENCES orgs(id),
    manager_id bigint REFERENCES users(id),
    mood mood, tags text[], prefs jsonb, avatar bytea, balance numeric(12,2), seen_at timestamptz,
    nap interval, public_id uuid NOT NULL DEFAULT gen_random_uuid(), nickname text, during int4range,
    born date, score float8, ratio real, flags boolean[], doc json, nums numeric[]);
CREATE TABLE projects (id serial PRIMARY KEY, org_id int NOT NULL REFERENCES orgs(id), slug text NOT NULL,
    lead_id bigint REFERENCES users(id), UNIQUE (org_id, slug));
CREATE TABLE memberships (project_id int NOT NULL REFERENCES projects(id), user_id bigint NOT NULL REFERENCES users(id),
    role text NOT NULL, PRIMARY KEY (project_id, user_id));
CREATE TABLE teams (id serial PRIMARY KEY, name text NOT NULL UNIQUE, captain_id int);
CREATE TABLE players (id serial PRIMARY KEY, handle text NOT NULL UNIQUE, team_id int REFERENCES teams(id));
ALTER TABLE teams ADD FOREIGN KEY (captain_id) REFERENCES players(id);
CREATE TABLE events (org_id int NOT NULL REFERENCES orgs(id), day date NOT NULL, seq int NOT NULL, payload jsonb,
    PRIMARY KEY (org_id, day, seq)) PARTITION BY RANGE (day);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE countries (code char(2) PRIMARY KEY, name text NOT NULL, population bigint, area float8, langs text[]);
CREATE TABLE categories (code text PRIMARY KEY, parent_code text REFERENCES categories(code), label text);
CREATE TABLE invites (code text PRIMARY KEY, email text NOT NULL, org_id int REFERENCES orgs(id));
CREATE TABLE langs (id serial PRIMARY KEY, name char(10) NOT NULL UNIQUE);
CREATE TABLE books (id serial PRIMARY KEY, title text NOT NULL UNIQUE, lang_id int REFERENCES langs(id));
"""

PG_DATA = r"""
INSERT INTO orgs (slug, name) VALUES ('acme', 'Acme, Inc.'), ('globex', 'Globex "GX"'), ('a/b', 'slash: yes');
INSERT INTO users (email, org_id, mood, tags, prefs, avatar, balance, seen_at, nap, nickname, during, born, score,
                   ratio, flags, doc, nums)
VALUES
 ('boss@acme.test', 1, 'happy', ARRAY['a', 'b,c', NULL, 'quote"d', ''],
  '{"theme": "dark", "n": 1.50, "deep": {"x": [1, null, "é", 0.1000000000000000000001]}}',
  '\x00ff10'::bytea, 1234.50, '2024-03-01 10:00:00.123456+02', '1 year 2 mons 3 days 04:05:06.5', 'yes', '[1,5)',
  '1970-01-01', 0.1, 1.5, ARRAY[true, false, NULL], '{"b": 1, "a": [2, 3]}', ARRAY[1.10, 2]::numeric[]),
 ('dev@acme.test', 1, 'ok', '{}', '"just a string"', ''::bytea, 0.00, '2024-12-31 23:59:59+00', '00:00:00',
  '', 'empty', '2000-02-29', -1e300, 0, '{}', '[]', NULL),
 ('line@globex.test', 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, E'two\nlines\ttab \\ back ' || chr(127) || ' del '
  || chr(8232) || ' ls', NULL, NULL, 'NaN', NULL, NULL, NULL, NULL),
 ('null@globex.test', 2, 'sad', ARRAY['null', 'no', '~'], '{"k": null}', '\x5c78'::bytea, 99999999.99,
  '1999-01-01 00:00:00+00', '-1 days', 'null', '(,10]', NULL, 'Infinity', NULL, NULL, '{"z": "\u00e9"}', NULL);
UPDATE users SET manager_id = 1 WHERE email <> 'boss@acme.test';
UPDATE users SET manager_id = 3 WHERE email = 'null@globex.test';
INSERT INTO projects (org_id, slug, lead_id) VALUES (1, 'rocket', 1), (2, 'rocket', 3), (1, 'zz top', NULL),
  (3, 'x', 2);
INSERT INTO memberships VALUES (1, 1, 'owner'), (1, 2, 'dev'), (2, 3, 'owner'), (3, 2, 'guest'), (4, 4, 'a: b');
INSERT INTO teams (name) VALUES ('red'), ('blue');
INSERT INTO players (handle, team_id) VALUES ('ann', 1), ('bob', 1), ('cy', 2), ('free agent', NULL);
UPDATE teams SET captain_id = 2 WHERE name = 'red';
UPDATE teams SET captain_id = 3 WHERE name = 'blue';
-- jsonb numbers keep their digits (1.10 is not 1.1); the JSON value null is not SQL NULL
INSERT INTO events VALUES (1, '2024-05-01', 1, '{"a": 1, "p": 1.10, "q": 0.1000000000000000000001, "r": [1.50, 2e-3]}'),
  (1, '2024-05-02', 1, 'null'), (1, '2025-01-02', 1, NULL), (2, '2024-05-01', 1, '[]'),
  (2, '2024-05-01', 2, '{"big": 12345678901234567890}');
INSERT INTO countries VALUES ('de', 'Germany', 83000000, 357588.5, ARRAY['de']), ('fr', 'France', NULL, NULL, NULL),
  ('xx', 'Comma, "Quoted"
Newline', 1, 1e-7, ARRAY['a"b', 'c,d']);
-- every control character COPY passes through raw or escapes itself, quotes and backslashes
INSERT INTO categories VALUES ('root', NULL, 'Root'), ('a', 'root', 'A'), ('a1', 'a', NULL), ('b', 'root', ''),
  ('c"\', 'root', 'ctl ' || chr(1) || chr(7) || chr(8) || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)
   || chr(14) || chr(27) || chr(31) || ' "q" \" \\ end\');
INSERT INTO invites VALUES ('i1', 'dev@acme.test', 1), ('i2', 'dev@acme.test', NULL), ('i3', 'nobody@else.test', 2);
INSERT INTO langs (name) VALUES ('English'), ('fr');
INSERT INTO books (title, lang_id) VALUES ('Emma', 1), ('Candide', 2), ('Untitled', NULL);
"""

# What "B equals A" means, independently of the snapshot code: every row, with ids replaced by the
# natural keys of the rows they point at.
PG_CANONICAL = {
    "orgs": "SELECT slug, name FROM orgs ORDER BY slug",
    # json as text: 1.10 is not 1.1, and the JSON value null is not SQL NULL
  "users": """SELECT u.email, o.slug, m.email, u.mood, u.tags, u.prefs::text, u.avatar, u.balance, u.seen_at, u.nap,
                       u.nickname, u.during, u.born, u.score, u.ratio, u.flags, u.doc::jsonb, u.nums, u.public_id
                FROM users u JOIN orgs o ON o.id = u.org_id LEFT JOIN users m ON m.id = u.manager_id
                ORDER BY u.email""",
    "projects": """SELECT o.slug, p.slug, l.email FROM projects p JOIN orgs o ON o.id = p.org_id
                   LEFT JOIN users l ON l.id = p.lead_id ORDER BY 1, 2""",
    "memberships": """SELECT o.slug, p.slug, u.email, m.role FROM memberships m JOIN projects p ON p.id = m.project_id
                      JOIN orgs o ON o.id = p.org_id JOIN users u ON u.id = m.user_id ORDER BY 1, 2, 3""",
    "teams": """SELECT t.name, c.handle FROM teams t LEFT JOIN players c ON c.id = t.captain_id ORDER BY 1""",
    "players": """SELECT p.handle, t.name FROM players p LEFT JOIN teams t ON t.id = p.team_id ORDER BY 1""",
    "events": """SELECT o.slug, e.day, e.seq, e.payload::text, e.tableoid::regclass::text FROM events e
                 JOIN orgs o ON o.id = e.org_id ORDER BY 1, 2, 3""",
    "countries": "SELECT * FROM countries ORDER BY code",
    "categories": "SELECT * FROM categories ORDER BY code",
    "invites": "SELECT i.code, i.email, o.slug FROM invites i LEFT JOIN orgs o ON o.id = i.org_id ORDER BY 1",
    # a char(n) key keeps its padding inside !ref (found on the pagila sample database: language.name)
    "langs": "SELECT name FROM langs ORDER BY 1",
    "books": "SELECT b.title, l.name FROM books b LEFT JOIN langs l ON l.id = b.lang_id ORDER BY 1",
}

SQLITE_SCHEMA = """
CREATE TABLE orgs (id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE, name TEXT NOT NULL);
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, org_id INTEGER NOT NULL REFERENCES orgs(id),
    manager_id INTEGER REFERENCES users(id), score REAL, balance NUMERIC, avatar BLOB, prefs JSON, active BOOLEAN,
    nickname TEXT, born DATE);
CREATE TABLE projects (id INTEGER PRIMARY KEY, org_id INTEGER NOT NULL REFERENCES orgs(id), slug TEXT NOT NULL,
    UNIQUE (org_id, slug));
CREATE TABLE memberships (project_id INTEGER NOT NULL REFERENCES projects(id),
    user_id INTEGER NOT NULL REFERENCES users(id), role TEXT NOT NULL, PRIMARY KEY (project_id, user_id));
CREATE TABLE countries (code TEXT PRIMARY KEY, name TEXT NOT NULL, population INTEGER);
"""

SQLITE_DATA = """
INSERT INTO orgs (slug, name) VALUES ('acme', 'Acme, Inc.'), ('globex', 'Globex "GX"');
INSERT INTO users (email, org_id, score, balance, avatar, prefs, active, nickname, born) VALUES
 ('boss@acme.test', 1, 0.1, '1234.5', x'00ff10', '{"b": "é", "a": [1.10, 2, 0.1000000000000000000001]}', 1, 'yes',
  '1970-01-01'),
 ('dev@acme.test', 1, -2.5e10, 0, x'', '[]', 0, '', NULL),
 ('x@globex.test', 2, NULL, NULL, NULL, NULL, NULL, 'two
lines', NULL);
UPDATE users SET manager_id = 1 WHERE id > 1;
INSERT INTO projects (org_id, slug) VALUES (1, 'rocket'), (2, 'rocket');
INSERT INTO memberships VALUES (1, 1, 'owner'), (1, 2, 'dev'), (2, 3, 'owner');
INSERT INTO countries VALUES ('de', 'Germany', 83000000), ('fr', 'France', NULL);
-- the JSON value null, not SQL NULL
INSERT INTO users (email, org_id, prefs) VALUES ('jnull@globex.test', 2, 'null');
"""

SQLITE_CANONICAL = {
    "orgs": "SELECT slug, name FROM orgs ORDER BY slug",
    "users": """SELECT u.email, o.slug, m.email, u.score, u.balance, u.avatar, json_type(u.prefs),
                       json_extract(u.prefs, '$.a'),
                       json_extract(u.prefs, '$.b'), u.active, u.nickname,
                       u.born FROM users u JOIN orgs o ON o.id = u.org_id LEFT JOIN users m ON m.id = u.manager_id
                ORDER BY u.email""",
    "projects": "SELECT o.slug, p.slug FROM projects p JOIN orgs o ON o.id = p.org_id ORDER BY 1, 2",
    "memberships": """SELECT o.slug, p.slug, u.email, m.role FROM memberships m JOIN projects p ON p.id = m.project_id
                      JOIN orgs o ON o.id = p.org_id JOIN users u ON u.id = m.user_id ORDER BY 1, 2, 3""",
    "countries": "SELECT * FROM countries ORDER BY code",
}
