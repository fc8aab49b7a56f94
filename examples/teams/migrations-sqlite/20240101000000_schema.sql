-- migrate:up
CREATE TABLE task_statuses (code TEXT PRIMARY KEY, label TEXT NOT NULL, position INTEGER NOT NULL);
CREATE TABLE orgs (id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
                   settings JSON NOT NULL DEFAULT '{}', founded DATE);
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, password_hash TEXT,
                    manager_id INTEGER REFERENCES users(id), created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE memberships (org_id INTEGER NOT NULL REFERENCES orgs(id), user_id INTEGER NOT NULL REFERENCES users(id),
                          role TEXT NOT NULL DEFAULT 'member', PRIMARY KEY (org_id, user_id));
CREATE TABLE projects (id INTEGER PRIMARY KEY, org_id INTEGER NOT NULL REFERENCES orgs(id), slug TEXT NOT NULL,
                       title TEXT NOT NULL, budget DECIMAL(12, 2), tags JSON NOT NULL DEFAULT '[]',
                       UNIQUE (org_id, slug));
CREATE TABLE tasks (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects(id),
                    number INTEGER NOT NULL, title TEXT NOT NULL, status TEXT NOT NULL REFERENCES task_statuses(code),
                    parent_id INTEGER REFERENCES tasks(id), assignee_id INTEGER REFERENCES users(id),
                    UNIQUE (project_id, number));

-- migrate:down
DROP TABLE tasks;
DROP TABLE projects;
DROP TABLE memberships;
DROP TABLE users;
DROP TABLE orgs;
DROP TABLE task_statuses;
