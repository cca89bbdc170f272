#!/bin/sh
# Stand-in for the official nginx image's entrypoint: render the templates, then run the command.
set -eu
if [ "${1:-}" = "nginx" ] && [ -d /etc/nginx/templates ]; then
  output_dir="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
  suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
  # Only the names of variables set in the environment: nginx's own $variables stay as they are.
  defined=$(printf '${%s} ' $(env | cut -d= -f1 | grep -E "${NGINX_ENVSUBST_FILTER:-.}"))
  for template in /etc/nginx/templates/*"$suffix"; do
    [ -f "$template" ] || continue
    target="$output_dir/$(basename "$template" "$suffix")"
    echo "$0: rendering $template to $target"
    envsubst "$defined" <"$template" >"$target"
  done
fi
exec "$@"
