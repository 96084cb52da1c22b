#!/usr/bin/env bash
# `smgr verify` of the whole PostgreSQL 15 cluster (scale 100: about 975
# files, 1.57 GiB) on a real S3 server (SeaweedFS on 127.0.0.1), through a
# loopback proxy that holds every request DELAY_MS before passing it on
# (cloud first-byte latency), against the same proxy without delay,
# alternating. Prints the median wall time and peak RSS of each, the
# requests of the last run of each, and the ratio of the times.
#
#   scripts/bench-verify-latency.sh [ROUNDS] [DELAY_MS] [-- extra verify args]
#
# Needs the cluster scripts/pg-cluster.sh builds. Runs its own SeaweedFS in
# a scratch directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
DELAY="${2:-20}"
shift $(( $# < 2 ? $# : 2 ))
[[ "${1:-}" == "--" ]] && shift
EXTRA=("$@")
CLUSTER="${SMGR_PG15_CLUSTER:-/var/tmp/smgr-pg15-scale100}"
[[ -e "$CLUSTER/READY" ]] || { echo "no cluster at $CLUSTER (scripts/pg-cluster.sh)" >&2; exit 2; }

cargo build --release -q -p smgr-cli -p integration --bin smgr --bin latency-proxy
SMGR="$PWD/target/release/smgr"
PROXY="$PWD/target/release/latency-proxy"

WORK="$(mktemp -d /var/tmp/smgr-bench-latency.XXXXXX)"
export SMGR_S3_DIR="$WORK/seaweedfs"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  scripts/seaweedfs.sh stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
scripts/seaweedfs.sh start >/dev/null
eval "$(scripts/seaweedfs.sh env)"
export AWS_ACCESS_KEY_ID="$SMGR_S3_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$SMGR_S3_SECRET_ACCESS_KEY" AWS_REGION="$SMGR_S3_REGION"
URL="s3://$SMGR_S3_BUCKET/bench-latency"
"$SMGR" upload --endpoint "$SMGR_S3_ENDPOINT" "$CLUSTER/data" "$URL" | tail -n 1

UPSTREAM="${SMGR_S3_ENDPOINT#http://}"
start_proxy() { # name delay_ms: the endpoint in $WORK/name.endpoint
  "$PROXY" "$UPSTREAM" "$2" > "$WORK/$1.endpoint" &
  PIDS+=("$!")
  for _ in $(seq 100); do [[ -s "$WORK/$1.endpoint" ]] && return; sleep 0.05; done
  echo "latency-proxy did not start" >&2; exit 1
}
start_proxy fast 0
start_proxy slow "$DELAY"
FAST="$(head -n 1 "$WORK/fast.endpoint")"
SLOW="$(head -n 1 "$WORK/slow.endpoint")"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A TIMES RSS
for ((i = 0; i < ROUNDS; i++)); do
  for name in fast slow; do
    endpoint="$FAST"; [[ $name == slow ]] && endpoint="$SLOW"
    t0=$(date +%s.%N)
    /usr/bin/time -f %M -o "$WORK/$name.rss" \
      "$SMGR" verify --json --endpoint "$endpoint" "${EXTRA[@]}" "$URL" > "$WORK/$name.json"
    t1=$(date +%s.%N)
    TIMES[$name]+="$(echo "$t1 - $t0" | bc)"$'\n'
    RSS[$name]+="$(tail -n 1 "$WORK/$name.rss")"$'\n'
  done
done
fast="$(printf '%s' "${TIMES[fast]}" | median)"
slow="$(printf '%s' "${TIMES[slow]}" | median)"
read -r blocks reads < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["blocks"], r["reads"])' "$WORK/slow.json")
requests() { # the GETs of one run's report
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["object_requests"]; m=1<<20
print("%d GETs (%.2f MiB on average), %d hedged, at most %.0f MiB in flight, %.0f MiB read ahead (%.0f MiB unread)" % (r["gets"], r["bytes"]/max(r["gets"],1)/m, r["hedged"], r["peak_bytes_in_flight"]/m, r["peak_window_bytes"]/m, r["window_bytes_unread"]/m))' "$1"
}
rss() { printf '%s' "${RSS[$1]}" | median | awk '{printf "%.0f MiB", $1/1024}'; }
echo "smgr verify of $CLUSTER on SeaweedFS through a loopback proxy; median of $ROUNDS, alternating; $blocks blocks in $reads reads"
printf '| proxy | wall time | peak RSS | requests |\n|---|---|---|---|\n'
printf '| no delay | %.2f s | %s | %s |\n' "$fast" "$(rss fast)" "$(requests "$WORK/fast.json")"
printf '| %s ms per request | %.2f s | %s | %s |\n' "$DELAY" "$slow" "$(rss slow)" "$(requests "$WORK/slow.json")"
printf 'speed with the delay / without: %.2f\n' "$(echo "$fast / $slow" | bc -l)"
