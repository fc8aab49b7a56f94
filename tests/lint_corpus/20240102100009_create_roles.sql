-- migrate:up
CREATE TABLE roles (
    id    smallint PRIMARY KEY,
    name  text NOT NULL UNIQUE
);

INSERT INTO roles (id, name) VALUES -- expect: seed-data-in-migration
    (1, 'viewer'),
    (2, 'editor'),
    (3, 'owner');

-- migrate:down
DROP TABLE roles;
