# The web front for Kubernetes (deploy/kubernetes/base/web.yaml): the official nginx image with
# the template, the page and the njs code inside, since a cluster has no bind mounts. compose's
# `web` service mounts the same three folders into the same image instead.
#   docker build -f docker/web.Dockerfile -t florisense/web:local .
# Run `make docs-ui` first: it puts Swagger UI's files in nginx/html/docs/swagger-ui/, which /docs
# serves (without them /docs answers a JSON 404 saying so).
#
# The image's entrypoint renders /etc/nginx/templates/nginx.conf.template with envsubst into
# $NGINX_ENVSUBST_OUTPUT_DIR when the command starts with `nginx`; every variable of the template
# comes from the environment (web.yaml sets them all). It runs as the image's nginx user (101):
# the rendered file, the pid and temporary files go to writable volumes the pod mounts.
FROM nginx:1.27.5-bookworm
COPY nginx/nginx.conf.template /etc/nginx/templates/nginx.conf.template
COPY nginx/html /usr/share/nginx/html
COPY nginx/njs /etc/nginx/njs
USER 101
EXPOSE 8080
