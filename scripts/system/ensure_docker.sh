#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`; start one on Debian/Ubuntu if not.
#
# Idempotent: a running engine is left alone. On a root Debian/Ubuntu machine it
# installs docker.io when dockerd is missing, clears a stale pid file left by a
# killed dockerd (a new dockerd refuses to start while it exists) and starts
# dockerd in the background. Anywhere else it says what to do and exits 1.
set -euo pipefail

LOG=/var/log/dts-dockerd.log
PIDFILE=/var/run/docker.pid
WAIT_SECONDS=60

say() { echo "ensure_docker: $*"; }

engine_up() { docker info >/dev/null 2>&1; }

# /proc instead of pgrep: procps is not guaranteed on minimal images.
dockerd_running() {
    local comm
    for comm in /proc/[0-9]*/comm; do
        [[ "$(cat "$comm" 2>/dev/null)" == "dockerd" ]] && return 0
    done
    return 1
}

is_debian_like() {
    [[ -r /etc/os-release ]] || return 1
    local id id_like
    # shellcheck disable=SC1091
    id="$(. /etc/os-release && echo "${ID:-}")"
    # shellcheck disable=SC1091
    id_like="$(. /etc/os-release && echo "${ID_LIKE:-}")"
    [[ "$id" == debian || "$id" == ubuntu || " $id_like " == *" debian "* \
        || " $id_like " == *" ubuntu "* ]]
}

manual_instructions() {
    echo "Docker engine not running: install Docker Engine" \
        "(https://docs.docker.com/engine/install/) or Docker Desktop and start it," \
        "then re-run" >&2
    if command -v docker >/dev/null 2>&1; then
        echo "(docker info said: $(docker info 2>&1 | tail -n 1))" >&2
    fi
    exit 1
}

if engine_up; then
    say "Docker engine is running"
    exit 0
fi

if [[ "$(id -u)" != 0 ]] || ! is_debian_like; then
    manual_instructions
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    say "installing docker.io with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y docker.io
fi

if dockerd_running; then
    say "dockerd is already running; waiting for it to answer"
else
    if [[ -e "$PIDFILE" ]]; then
        # A killed dockerd leaves this behind and a new one then refuses to start.
        say "removing stale $PIDFILE (no dockerd process runs)"
        rm -f "$PIDFILE"
    fi
    say "starting dockerd (log: $LOG)"
    nohup setsid dockerd >>"$LOG" 2>&1 </dev/null &
fi

for ((i = 0; i < WAIT_SECONDS; i++)); do
    if engine_up; then
        say "Docker engine is running"
        exit 0
    fi
    sleep 1
done

echo "ensure_docker: dockerd did not answer within ${WAIT_SECONDS} s; last lines of $LOG:" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
