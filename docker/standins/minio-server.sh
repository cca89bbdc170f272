#!/bin/sh
# Stand-in `minio server DIR [--console-address ADDR] [--address ADDR]`: rclone's S3 server.
set -eu
[ "${1:-}" = "server" ] || { echo "stand-in minio: only 'minio server DIR' is supported" >&2; exit 2; }
shift
data="" address=":9000"
while [ $# -gt 0 ]; do
  case "$1" in
    --console-address) shift 2 ;;  # no console in the stand-in
    --address) address="$2"; shift 2 ;;
    *) data="$1"; shift ;;
  esac
done
user="${MINIO_ROOT_USER:-minioadmin}" password="${MINIO_ROOT_PASSWORD:-minioadmin}"
# MinIO's own rules: it refuses such credentials at start (and, restarted, refuses again).
if [ ${#user} -lt 3 ]; then
  echo "ERROR Unable to validate credentials inherited from the shell environment: Invalid credentials: access key length should be at least 3, and secret key length at least 8 characters" >&2
  exit 1
fi
if [ ${#password} -lt 8 ]; then
  echo "ERROR Unable to validate credentials inherited from the shell environment: Invalid credentials: access key length should be at least 3, and secret key length at least 8 characters" >&2
  exit 1
fi
mkdir -p "$data"
echo "stand-in minio: S3 API on $address (rclone serve s3), data in $data"
exec rclone serve s3 --addr "$address" --auth-key "$user,$password" "$data"
