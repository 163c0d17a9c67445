#!/bin/sh
# Entrypoint of the local PostgreSQL image (Debian's server, built by gxlib.k8simages): start the server on
# $PGDATA, creating the cluster first when the volume is empty. Environment (names as the official image's):
#   PGDATA              data directory (default /var/lib/postgresql/data; the persistent volume)
#   POSTGRES_PASSWORD   superuser password, required on first start
#   POSTGRES_USER       superuser name (default postgres)
#   POSTGRES_DB         database created on first start (default: none besides postgres)
# Extra arguments are passed to postgres (e.g. -c max_connections=200).
set -eu
PGBIN=/usr/lib/postgresql/15/bin
: "${PGDATA:=/var/lib/postgresql/data}"
superuser=${POSTGRES_USER:-postgres}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (the superuser password) for the first start}"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  "$PGBIN/initdb" --pgdata="$PGDATA" --username="$superuser" --pwfile="$pwfile" --encoding=UTF8 \
    --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ -n "${POSTGRES_DB:-}" ] && [ "$POSTGRES_DB" != "$superuser" ]; then
    echo "CREATE DATABASE \"$POSTGRES_DB\";" | "$PGBIN/postgres" --single -D "$PGDATA" -j postgres > /dev/null
  fi
fi
exec "$PGBIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp -c jit=off "$@"
