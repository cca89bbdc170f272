# STAND-IN for prom/prometheus:v3.13.4 (the official image: Prometheus 3.13 LTS on busybox).
# Differs: Debian bookworm's Prometheus **2.42** (the one the no-Docker stack runs, so the
# configuration and rules are the same files); its web UI is the classic one. Same entrypoint
# (/bin/prometheus), same default paths (/etc/prometheus/prometheus.yml, storage in /prometheus),
# same user (nobody) and port; busybox's wget for the compose healthcheck is Debian's wget here.
FROM florisense-standin/debian:bookworm
# policy-rc.d: the package's own service is not started at install (there is no init here).
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
    && apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends prometheus wget \
    && rm -rf /var/lib/apt/lists/* \
    && test -x /bin/prometheus \
    && mkdir -p /prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
VOLUME ["/prometheus"]
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
