# mtail (Debian's package, the same as without Docker): reads nginx's metrics log from the volume
# the web container writes it to, and serves request counts by route and status and the /predict
# latency histogram on :3903 for Prometheus. Its program is mounted from deploy/monitoring/mtail/.
# There is no official mtail image; this one is ours, built from Debian.
FROM debian:bookworm-slim
# policy-rc.d: the package's own service is not started at install (there is no init here).
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
    && apt-get update -qq && apt-get install -y -qq --no-install-recommends mtail curl \
    && rm -rf /var/lib/apt/lists/*
USER nobody
EXPOSE 3903
# mtail follows only the log files that exist when it starts: wait for nginx to open it.
ENTRYPOINT ["/bin/sh", "-c", "until [ -f \"$0\" ]; do sleep 1; done; exec mtail -progs /etc/mtail -logs \"$0\" -port 3903 -emit_prog_label=false -logtostderr"]
CMD ["/var/log/nginx-metrics/requests.log"]
