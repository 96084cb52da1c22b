#!/usr/bin/env bash
# Upload time of pgbench_accounts (PostgreSQL 15, scale 100: 1.25 GiB in
# two segment files) to a real S3 server (SeaweedFS on 127.0.0.1), plain
# and compressed at zstd levels 1, 3 and 9, alternating, with `smgr
# upload`. Prints the median wall time and the stored bytes of each.
#
#   scripts/bench-upload.sh [ROUNDS]
#
# Needs the cluster scripts/pg-cluster.sh builds. Runs its own SeaweedFS in
# a scratch directory, removed at the end (so nothing lingers on disk).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
CLUSTER="${SMGR_PG15_CLUSTER:-/var/tmp/smgr-pg15-scale100}"
REL="$(awk -F'\t' '$1 == "pgbench_accounts" {print $2}' "$CLUSTER/MANIFEST")"
[[ -n "$REL" ]] || { echo "no pgbench_accounts in $CLUSTER/MANIFEST (scripts/pg-cluster.sh)" >&2; exit 2; }

cargo build --release -q -p smgr-cli
SMGR="$PWD/target/release/smgr"

# A data directory holding only the relation's two segments (hard links).
WORK="$(mktemp -d /var/tmp/smgr-bench-upload.XXXXXX)"
export SMGR_S3_DIR="$WORK/seaweedfs"
cleanup() { scripts/seaweedfs.sh stop >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/data/$(dirname "$REL")"
for f in "$REL" "$REL.1"; do ln "$CLUSTER/data/$f" "$WORK/data/$f" 2>/dev/null || cp "$CLUSTER/data/$f" "$WORK/data/$f"; done
scripts/seaweedfs.sh start >/dev/null
eval "$(scripts/seaweedfs.sh env)"
export AWS_ACCESS_KEY_ID="$SMGR_S3_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$SMGR_S3_SECRET_ACCESS_KEY" AWS_REGION="$SMGR_S3_REGION"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A TIMES STORED
MODES=(plain zstd:1 zstd:3 zstd:9)
for ((i = 0; i < ROUNDS; i++)); do
  for mode in "${MODES[@]}"; do
    args=()
    [[ $mode != plain ]] && args=(--compress "$mode")
    url="s3://$SMGR_S3_BUCKET/bench-upload/${mode/:/-}-$i"
    t0=$(date +%s.%N)
    "$SMGR" upload --json --endpoint "$SMGR_S3_ENDPOINT" "${args[@]}" "$WORK/data" "$url" > "$WORK/out.json"
    t1=$(date +%s.%N)
    TIMES[$mode]+="$(echo "$t1 - $t0" | bc)"$'\n'
    STORED[$mode]="$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r.get("stored_bytes", r.get("bytes")))' "$WORK/out.json")"
  done
done
LOGICAL="$(stat -c %s "$WORK/data/$REL" "$WORK/data/$REL.1" | paste -sd+ | bc)"
echo "pgbench_accounts: $LOGICAL bytes; smgr upload to SeaweedFS on 127.0.0.1, median of $ROUNDS, alternating"
echo
echo "| objects | wall time | stored bytes | MB/s of logical bytes | time vs plain |"
echo "|---|---|---|---|---|"
PLAIN="$(printf '%s' "${TIMES[plain]}" | median)"
for mode in "${MODES[@]}"; do
  t="$(printf '%s' "${TIMES[$mode]}" | median)"
  printf '| %s | %.2f s | %s | %.0f | %.2f |\n' "$mode" "$t" "${STORED[$mode]}" \
    "$(echo "$LOGICAL / 1000000 / $t" | bc -l)" "$(echo "$t / $PLAIN" | bc -l)"
done
