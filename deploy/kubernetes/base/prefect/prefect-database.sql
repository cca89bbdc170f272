-- Prefect's own role and database beside MLflow's, on the same PostgreSQL server: run by the
-- prefect-server pod's init container (as the admin of florisense-postgres) and by compose's
-- create-prefect-database (which mounts this file).
-- Idempotent: creates what is missing and sets the role's password to the one in the Secret
-- florisense-prefect now, so a changed password takes effect at the pod's next start. The
-- password comes from the environment (\getenv), never from a command line.
\getenv prefect_password PREFECT_DB_PASSWORD
SELECT format('CREATE ROLE prefect LOGIN PASSWORD %L', :'prefect_password')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'prefect')\gexec
SELECT format('ALTER ROLE prefect LOGIN PASSWORD %L', :'prefect_password')\gexec
SELECT 'CREATE DATABASE prefect OWNER prefect'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'prefect')\gexec
