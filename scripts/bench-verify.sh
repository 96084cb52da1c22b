#!/usr/bin/env bash
# Side by side, alternating: `smgr verify` vs `pg_checksums --check` vs
# `cat` of the same files, page cache warm and cold (cold drops the page
# cache before every run: needs root). Prints medians and ratios.
#
#   scripts/bench-verify.sh [PGDATA] [ROUNDS]
#
# PGDATA defaults to the test cluster scripts/pg-cluster.sh builds.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-/var/tmp/smgr-pg15-scale100/data}"
ROUNDS="${2:-5}"
PG_CHECKSUMS=/usr/lib/postgresql/15/bin/pg_checksums
cargo build --release -q -p smgr-cli
SMGR="$PWD/target/release/smgr"
as_owner() { if [[ $(id -u) == 0 ]]; then runuser -u "$(stat -c %U "$DATA")" -- "$@"; else "$@"; fi; }
files() { find "$DATA/global" "$DATA/base" "$DATA/pg_tblspc/" -type f 2>/dev/null; }
# Seconds a command took; a command that fails stops the benchmark (a
# failing run would otherwise be timed as a fast one).
secs() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || { echo "bench-verify: failed: $*" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A T
for mode in warm cold; do
  if [[ $mode == cold && $(id -u) != 0 ]]; then echo "cold: needs root to drop caches; skipped"; continue; fi
  for tool in pg_checksums cat smgr; do : > "/tmp/bench-verify.$mode.$tool"; done
  [[ $mode == warm ]] && files | xargs cat > /dev/null
  for ((i = 0; i < ROUNDS; i++)); do
    for tool in pg_checksums cat smgr; do
      [[ $mode == cold ]] && drop
      case $tool in
        pg_checksums) secs as_owner "$PG_CHECKSUMS" --check -D "$DATA" ;;
        cat) secs sh -c "find '$DATA/global' '$DATA/base' -type f | xargs cat" ;;
        smgr) secs "$SMGR" verify "$DATA" ;;
      esac >> "/tmp/bench-verify.$mode.$tool"
    done
  done
  for tool in pg_checksums cat smgr; do T[$mode.$tool]=$(median < "/tmp/bench-verify.$mode.$tool"); done
  printf '%s (median of %d): pg_checksums %.3f s, cat %.3f s, smgr verify %.3f s; smgr/pg_checksums %.2f, smgr/cat %.2f\n' \
    "$mode" "$ROUNDS" "${T[$mode.pg_checksums]}" "${T[$mode.cat]}" "${T[$mode.smgr]}" \
    "$(echo "${T[$mode.smgr]} / ${T[$mode.pg_checksums]}" | bc -l)" "$(echo "${T[$mode.smgr]} / ${T[$mode.cat]}" | bc -l)"
done
