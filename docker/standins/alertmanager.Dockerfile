# STAND-IN for prom/alertmanager:v0.34.0 (the official image: Alertmanager on busybox).
# Differs: Debian bookworm's Alertmanager **0.25** (the one the no-Docker stack runs, so the
# configuration is the same document); same entrypoint (/bin/alertmanager), default paths
# (/etc/alertmanager/alertmanager.yml, storage in /alertmanager), user (nobody) and port; busybox's
# wget for the healthcheck is Debian's wget here.
FROM florisense-standin/debian:bookworm
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
    && apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends prometheus-alertmanager wget \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/prometheus-alertmanager /bin/alertmanager \
    && mkdir -p /alertmanager && chown nobody:nogroup /alertmanager
USER nobody
WORKDIR /alertmanager
EXPOSE 9093
VOLUME ["/alertmanager"]
ENTRYPOINT ["/bin/alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
