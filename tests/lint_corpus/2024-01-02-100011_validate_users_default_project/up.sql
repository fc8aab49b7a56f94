-- Step 2 of 2: VALIDATE takes a SHARE UPDATE EXCLUSIVE lock; writes continue.
ALTER TABLE users VALIDATE CONSTRAINT users_default_project_fk;
