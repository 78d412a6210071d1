#!/bin/sh
# Creates the databourse catalog's role and database next to Prefect's, on the first start of
# the postgres container only (an empty data volume runs /docker-entrypoint-initdb.d/*).
# Names and password come from the container's environment (deploy/.env); psql variables
# quote them, so a password needs no escaping here.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v role="$CATALOG_DB_USER" -v password="$CATALOG_DB_PASSWORD" -v db="$CATALOG_DB_NAME" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role";
SQL
