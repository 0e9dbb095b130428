#!/bin/bash
# Creates the databases listed in POSTGRES_MULTIPLE_DATABASES (comma-separated).
set -eu
for db in $(echo "$POSTGRES_MULTIPLE_DATABASES" | tr ',' ' '); do
  psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -c "CREATE DATABASE $db"
done
