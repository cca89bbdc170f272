#!/bin/sh
# Stand-in `mc` (MinIO client) over rclone: alias set, mb [--ignore-existing], ready, ls.
# Aliases live in ~/.mc/aliases as "NAME URL KEY SECRET"; `local` is http://localhost:9000 with
# the server's own credentials, as in the official minio image.
set -eu
store="${HOME:-/root}/.mc/aliases"
lookup() {  # NAME -> "URL KEY SECRET"
  line=$(grep "^$1 " "$store" 2>/dev/null | tail -1 | cut -d' ' -f2-) || true
  if [ -z "$line" ] && [ "$1" = "local" ]; then
    line="http://localhost:9000 ${MINIO_ROOT_USER:-minioadmin} ${MINIO_ROOT_PASSWORD:-minioadmin}"
  fi
  [ -n "$line" ] || { echo "mc: <ERROR> alias '$1' not found" >&2; exit 1; }
  echo "$line"
}
remote() {  # NAME/BUCKET -> an rclone S3 connection string for that bucket
  set -- $(lookup "${1%%/*}") "${1#*/}"
  echo ":s3,provider=Other,endpoint='$1',access_key_id='$2',secret_access_key='$3':$4"
}
case "${1:-}" in
  alias)
    [ "${2:-}" = "set" ] || { echo "mc (stand-in): only 'alias set'" >&2; exit 2; }
    mkdir -p "$(dirname "$store")"
    echo "$3 $4 $5 $6" >>"$store"
    echo "Added \`$3\` successfully." ;;
  mb)
    shift; ignore=false
    [ "$1" = "--ignore-existing" ] && { ignore=true; shift; }
    if rclone -q lsf "$(remote "$1")" >/dev/null 2>&1; then
      $ignore && { echo "Bucket \`$1\` already exists."; exit 0; }
      echo "mc: <ERROR> Unable to make bucket \`$1\`. Your previous request to create the named bucket succeeded and you already own it." >&2
      exit 1
    fi
    rclone -q mkdir "$(remote "$1")"
    echo "Bucket created successfully \`$1\`." ;;
  ready)
    set -- $(lookup "$2")
    curl -s -o /dev/null --max-time 3 "$1/" && echo "The cluster is ready" ;;
  ls)
    rclone -q lsf -R "$(remote "$2")" ;;
  *)
    echo "mc (stand-in): unsupported command: $*" >&2; exit 2 ;;
esac
