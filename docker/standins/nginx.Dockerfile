# STAND-IN for nginx:1.27.5-bookworm (official image: nginx.org's build with the njs module).
# Differs: Debian sid's nginx 1.30 with its njs module (both at the official paths); the same
# entrypoint behaviour (renders /etc/nginx/templates/*.template with envsubst, only variables set
# in the environment, into $NGINX_ENVSUBST_OUTPUT_DIR); user nginx; logs linked to stdout/stderr.
FROM florisense-standin/debian:sid
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends nginx libnginx-mod-http-js curl gettext-base \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* \
    && useradd --system --no-create-home --uid 101 --user-group nginx \
    && mkdir -p /var/cache/nginx /etc/nginx/templates /usr/share/nginx/html /var/log/nginx \
    && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
COPY nginx-entrypoint.sh /docker-entrypoint.sh
ENTRYPOINT ["/docker-entrypoint.sh"]
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
