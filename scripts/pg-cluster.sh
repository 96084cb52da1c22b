#!/usr/bin/env bash
# Build a throw-away PostgreSQL 15 cluster with data checksums and a pgbench
# data set, used as the source of real on-disk pages for smgr-api fixtures.
#
# Usage: scripts/pg-cluster.sh [DIR] [SCALE]
#   DIR    default: $REPO/target/pg15-scale100
#   SCALE  pgbench scale factor, default 100 (pgbench_accounts ~1.3 GB,
#          so it spills into a second 1 GiB segment file `.1`)
#
# Idempotent: if DIR/READY holds this script's LAYOUT nothing is done. A
# DIR without READY is a leftover of an interrupted run, and one whose
# READY names another layout was built by an older version of this
# script: both are rebuilt from scratch.
#
# Result:
#   DIR/data      the cluster (cleanly shut down, verified by pg_checksums)
#   DIR/MANIFEST  name<TAB>value lines: relation paths relative to DIR/data
#                 and the oid of database `bench`
#   DIR/READY     marker written last
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCALE="${2:-100}"
# Outside the repository by default: the server runs as user postgres, which
# must be able to reach the directory (a clone under /root is not).
DIR="${1:-/var/tmp/smgr-pg15-scale$SCALE}"
PGBIN=/usr/lib/postgresql/15/bin
PGVER=15
# What the cluster holds; change it whenever the build below changes, so
# that clusters built before are rebuilt.
LAYOUT="layout 2: pgbench, VACUUM, an unlogged table with an index"

case "$SCALE" in
  ''|0*|*[!0-9]*) echo "SCALE must be a positive integer, got '$SCALE'" >&2; exit 2 ;;
esac

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"            # absolute; the server needs absolute paths
DATA="$DIR/data"
# The socket lives in a short private directory: a unix socket path may not
# exceed 107 bytes, and DIR may be long.
SOCK="$(mktemp -d /tmp/smgr-pgsock.XXXXXX)"
trap 'rm -rf "$SOCK"' EXIT
LOG="$DIR/server.log"

# A built cluster is reused, but only where PostgreSQL is installed too: the
# tests also run its pg_checksums.
built() { [[ -e "$DIR/READY" && "$(cat "$DIR/READY")" == "$LAYOUT" ]]; }
if built && [[ -x "$PGBIN/pg_checksums" ]]; then
  echo "cluster at $DIR already built"
  exit 0
fi

T_START=$EPOCHREALTIME
T_PHASE=$T_START
phase_done() { # name
  local now=$EPOCHREALTIME
  awk -v n="$1" -v a="$now" -v b="$T_PHASE" 'BEGIN{printf "[pg-cluster] %-22s %8.1f s\n", n, a-b}'
  T_PHASE=$now
}

# ---------------------------------------------------------------- install --
if [[ ! -x "$PGBIN/initdb" ]]; then
  if [[ $EUID -ne 0 ]]; then
    echo "$PGBIN/initdb missing and not root: install postgresql-$PGVER first" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  # Keep Debian from creating and starting its own 15/main cluster: install
  # postgresql-common first, switch off create_main_cluster (the conf file is
  # managed by ucf, not a dpkg conffile), and forbid service starts while
  # the server package installs.
  apt-get install -y postgresql-common
  if [[ -f /etc/postgresql-common/createcluster.conf ]]; then
    sed -ri 's/^#?[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' \
      /etc/postgresql-common/createcluster.conf
  fi
  own_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  rc=0
  apt-get install -y "postgresql-$PGVER" || rc=$?
  if [[ $own_policy -eq 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
  [[ $rc -eq 0 ]] || exit "$rc"
  [[ -x "$PGBIN/initdb" ]] || { echo "install did not provide $PGBIN/initdb" >&2; exit 1; }
  phase_done install
fi
"$PGBIN/postgres" --version

# Run a PostgreSQL binary as the cluster owner: `postgres` when we are root
# (initdb/postgres refuse to run as root), otherwise the current user.
if [[ $EUID -eq 0 ]]; then
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

# ------------------------------------------------------------- clean slate --
# No READY marker: anything in DIR is from an interrupted run. Stop a server
# that might still be running there, then start over.
if [[ -f "$DATA/postmaster.pid" ]]; then
  as_pg "$PGBIN/pg_ctl" stop -D "$DATA" -m immediate -w >/dev/null 2>&1 || true
fi
if built; then
  echo "cluster at $DIR already built (PostgreSQL installed now)"
  exit 0
fi
rm -rf "$DATA" "$LOG" "$DIR/READY" "$DIR/MANIFEST" "$DIR/MANIFEST.tmp" "$DIR/sock"
if [[ $EUID -eq 0 ]]; then
  chown -R postgres:postgres "$DIR" "$SOCK"
  if ! runuser -u postgres -- test -w "$DIR"; then
    echo "user postgres cannot reach $DIR (a parent directory is not traversable)" >&2
    exit 1
  fi
fi
chmod 700 "$SOCK"
cd "$DIR"   # the postgres user must be able to stat the working directory

# ------------------------------------------------------------------ initdb --
as_pg "$PGBIN/initdb" -D "$DATA" --data-checksums -U postgres --auth=trust \
  --locale=C --encoding=UTF8 >"$DIR/initdb.log"
phase_done initdb

# ------------------------------------------------------------------- start --
SERVER_UP=0
cleanup() {
  if [[ $SERVER_UP -eq 1 ]]; then
    as_pg "$PGBIN/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# No TCP; a private socket dir; settings tuned for a fast one-shot load.
# autovacuum is off so that fsm/vm forks appear only from our explicit VACUUM.
as_pg "$PGBIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 120 -o "\
 -c listen_addresses='' \
 -c unix_socket_directories='$SOCK' \
 -c shared_buffers=512MB \
 -c maintenance_work_mem=512MB \
 -c fsync=off \
 -c synchronous_commit=off \
 -c full_page_writes=off \
 -c wal_level=minimal \
 -c max_wal_senders=0 \
 -c max_wal_size=8GB \
 -c checkpoint_timeout=1h \
 -c autovacuum=off" >/dev/null
SERVER_UP=1
phase_done start

PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -U postgres)
as_pg "${PSQL[@]}" -d postgres -c 'CREATE DATABASE bench'

# ----------------------------------------------------------------- pgbench --
# d=drop, t=create tables, G=server-side data generation.
as_pg "$PGBIN/pgbench" -i -s "$SCALE" -I dtG -h "$SOCK" -U postgres bench
phase_done "pgbench -I dtG"

# p=primary keys, as its own step, so that pgbench_accounts_pkey exists
# (a btree index for fixture pages).
as_pg "$PGBIN/pgbench" -i -s "$SCALE" -I p -h "$SOCK" -U postgres bench
phase_done "pgbench -I p"

# VACUUM creates the _fsm and _vm forks.
as_pg "${PSQL[@]}" -d bench -c \
  'VACUUM ANALYZE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history'
phase_done "vacuum analyze"

# An unlogged table and its index: each gets an _init fork (empty for the
# table; the index's holds its metapage, a real checksummed page).
as_pg "${PSQL[@]}" -d bench \
  -c "CREATE UNLOGGED TABLE unlogged_notes AS
        SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 20000) g" \
  -c 'CREATE INDEX unlogged_notes_id ON unlogged_notes (id)' \
  -c 'VACUUM unlogged_notes'
phase_done "unlogged table"

# ---------------------------------------------------------------- manifest --
as_pg "${PSQL[@]}" -d bench -At -F $'\t' >"$DIR/MANIFEST.tmp" <<'SQL'
SELECT 'database_oid', oid::text FROM pg_database WHERE datname = current_database();
SELECT c.relname, pg_relation_filepath(c.oid)
FROM unnest(ARRAY['pgbench_accounts', 'pgbench_accounts_pkey',
                  'pgbench_branches', 'pgbench_tellers',
                  'pg_class', 'pg_database',
                  'unlogged_notes', 'unlogged_notes_id']) WITH ORDINALITY AS r(name, ord)
JOIN pg_class c ON c.oid = to_regclass(r.name)
ORDER BY r.ord;
SQL
mv "$DIR/MANIFEST.tmp" "$DIR/MANIFEST"
cat "$DIR/MANIFEST"

as_pg "${PSQL[@]}" -d bench -c CHECKPOINT
phase_done "manifest+checkpoint"

# -------------------------------------------------------------------- stop --
as_pg "$PGBIN/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null
SERVER_UP=0
phase_done stop

# ------------------------------------------------------------------ verify --
# pg_checksums is the oracle that every page on disk carries a valid checksum.
as_pg "$PGBIN/pg_checksums" --check -D "$DATA"
phase_done "pg_checksums --check"

if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$DIR/MANIFEST" "$DIR/initdb.log"; fi
as_pg sh -c 'printf "%s\n" "$1" > "$2"' sh "$LAYOUT" "$DIR/READY"
du -sh "$DATA"
T_PHASE=$T_START
phase_done total
