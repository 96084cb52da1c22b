#!/usr/bin/env bash
# Backups side by side, one run, same cluster, same machine: pgBackRest
# (Debian's package; a full backup of the running cluster into a local
# repository, zstd, two processes) against `smgr upload --compress zstd`
# of the stopped cluster to a local file:// store and to the local S3
# server (SeaweedFS): wall time, CPU (user + system) and stored bytes;
# then the restore of each; then, after the same small change (100 rows
# updated, a checkpoint), pgBackRest's incremental backup against smgr's
# second upload into the same prefix.
#
#   scripts/bench-backup.sh
#
# Works on a copy of the scale-100 PostgreSQL 15 cluster
# (scripts/pg-cluster.sh) in a scratch directory under /var/tmp, removed
# at the end. Needs root or the postgres user (PostgreSQL runs as
# postgres); installs pgbackrest if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER="${SMGR_PG15_CLUSTER:-/var/tmp/smgr-pg15-scale100}"
PGBIN=/usr/lib/postgresql/15/bin
[[ -e "$CLUSTER/READY" ]] || { echo "no cluster at $CLUSTER (scripts/pg-cluster.sh)" >&2; exit 2; }
if ! command -v pgbackrest >/dev/null; then
  if [[ $EUID -eq 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbackrest >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbackrest >/dev/null
  fi
fi
cargo build --release -q -p smgr-cli --bin smgr
SMGR="$PWD/target/release/smgr"

if [[ $EUID -eq 0 ]]; then AS_PG=(runuser -u postgres --); else AS_PG=(); fi
as_pg() { "${AS_PG[@]}" "$@"; }
WORK="$(mktemp -d /var/tmp/smgr-bench-backup.XXXXXX)"
chmod 755 "$WORK"
export SMGR_S3_DIR="$WORK/seaweedfs"
cleanup() {
  as_pg "$PGBIN/pg_ctl" stop -D "$WORK/data" -m immediate -w >/dev/null 2>&1 || true
  scripts/seaweedfs.sh stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
scripts/seaweedfs.sh start >/dev/null
eval "$(scripts/seaweedfs.sh env)"
export AWS_ACCESS_KEY_ID="$SMGR_S3_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$SMGR_S3_SECRET_ACCESS_KEY" AWS_REGION="$SMGR_S3_REGION"
S3="s3://$SMGR_S3_BUCKET/bench-backup-$$"
S3ARGS=(--endpoint "$SMGR_S3_ENDPOINT")

cp -a "$CLUSTER/data" "$WORK/data"
mkdir -p "$WORK/sock" "$WORK/repo" "$WORK/log" "$WORK/lock" "$WORK/store"
cat >"$WORK/pgbackrest.conf" <<EOF
[global]
repo1-path=$WORK/repo
compress-type=zst
process-max=2
start-fast=y
archive-check=n
log-level-console=warn
log-level-file=off
lock-path=$WORK/lock
log-path=$WORK/log

[bench]
pg1-path=$WORK/data
pg1-socket-path=$WORK/sock
EOF
if [[ $EUID -eq 0 ]]; then chown -R postgres:postgres "$WORK"; fi
BR=(pgbackrest --config="$WORK/pgbackrest.conf" --stanza=bench)
start_pg() {
  as_pg "$PGBIN/pg_ctl" start -w -D "$WORK/data" -l "$WORK/log/server.log" \
    -o "-c listen_addresses='' -c unix_socket_directories='$WORK/sock'" >/dev/null
}
stop_pg() { as_pg "$PGBIN/pg_ctl" stop -w -m fast -D "$WORK/data" >/dev/null; }

# timed LABEL COMMAND...: wall and CPU seconds into $T_WALL, $T_CPU.
timed() {
  local label="$1"; shift
  /usr/bin/time -f "%e %U %S" -o "$WORK/time" "$@" >"$WORK/out.$label" 2>&1 || {
    cat "$WORK/out.$label" >&2; exit 1; }
  read -r T_WALL user sys <"$WORK/time"
  T_CPU=$(echo "$user + $sys" | bc)
}
bytes() { du -sb "$1" | cut -f1; }
mib() { echo "scale=1; $1 / 1048576" | bc; }
json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }
row() { printf '| %s | %.2f s | %.2f s | %s |\n' "$1" "$2" "$3" "$4"; }

echo "Backups of $CLUSTER ($(du -sh "$CLUSTER/data" | cut -f1)), $(date -u +%F), $(nproc) cores"
echo
echo "| what | wall | CPU (user + system) | stored |"
echo "|---|---|---|---|"

start_pg
as_pg "${BR[@]}" stanza-create >/dev/null
timed pgbr-full "${AS_PG[@]}" "${BR[@]}" backup --type=full
row "pgBackRest full backup (running cluster, zstd, 2 processes)" "$T_WALL" "$T_CPU" "$(mib "$(bytes "$WORK/repo/backup")") MiB"
REPO_FULL=$(bytes "$WORK/repo/backup")
stop_pg

timed smgr-file "$SMGR" upload --json --compress zstd "$WORK/data" "file://$WORK/store/full"
row "smgr upload --compress zstd, file:// store (stopped cluster)" "$T_WALL" "$T_CPU" "$(mib "$(bytes "$WORK/store/full")") MiB"
timed smgr-s3 "$SMGR" upload --json --compress zstd "$WORK/data" "$S3" "${S3ARGS[@]}"
row "smgr upload --compress zstd, S3 server" "$T_WALL" "$T_CPU" "$(mib "$(json "$WORK/out.smgr-s3" stored_bytes)") MiB"

mkdir -p "$WORK/pgbr-restore" && chmod 700 "$WORK/pgbr-restore"
if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$WORK/pgbr-restore"; fi
timed pgbr-restore "${AS_PG[@]}" "${BR[@]}" --pg1-path="$WORK/pgbr-restore" restore
row "pgBackRest restore" "$T_WALL" "$T_CPU" ""
timed smgr-restore-file "$SMGR" restore "file://$WORK/store/full" "$WORK/smgr-restore"
row "smgr restore, file:// store (every file and page checked)" "$T_WALL" "$T_CPU" ""
timed smgr-restore-s3 "$SMGR" restore "$S3" "$WORK/smgr-restore-s3" "${S3ARGS[@]}"
row "smgr restore, S3 server" "$T_WALL" "$T_CPU" ""
rm -rf "$WORK/pgbr-restore" "$WORK/smgr-restore" "$WORK/smgr-restore-s3"

# The same small change for both: 100 rows updated, a checkpoint.
start_pg
as_pg "$PGBIN/psql" -X -q -h "$WORK/sock" -U postgres -d bench \
  -c "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= 100" -c CHECKPOINT
timed pgbr-incr "${AS_PG[@]}" "${BR[@]}" backup --type=incr
row "pgBackRest incremental backup after the change" "$T_WALL" "$T_CPU" "+$(mib $(( $(bytes "$WORK/repo/backup") - REPO_FULL ))) MiB"
stop_pg
timed smgr-again-file "$SMGR" upload --json --compress zstd "$WORK/data" "file://$WORK/store/full"
row "smgr upload again after the change, file:// ($(json "$WORK/out.smgr-again-file" files) files sent, $(json "$WORK/out.smgr-again-file" unchanged) unchanged)" "$T_WALL" "$T_CPU" "$(mib "$(json "$WORK/out.smgr-again-file" stored_bytes)") MiB sent"
timed smgr-again-s3 "$SMGR" upload --json --compress zstd "$WORK/data" "$S3" "${S3ARGS[@]}"
row "smgr upload again after the change, S3 server" "$T_WALL" "$T_CPU" "$(mib "$(json "$WORK/out.smgr-again-s3" stored_bytes)") MiB sent"
