# STAND-IN for quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z (MinIO's community server; no MinIO
# binary is in Debian, PyPI or npm). Differs: S3 is served by `rclone serve s3` (buckets are
# folders under the data directory) with MinIO's command line, environment and credential rules
# (root user of 3+ characters, password of 8+, else exit 1 as MinIO does); no web console on 9001.
# Ships `mc` as the official image does (alias `local` = this server).
FROM florisense-standin/debian:bookworm
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*
COPY rclone minio-server.sh mc.sh /tmp/
RUN install -m 755 /tmp/rclone /usr/bin/rclone && install -m 755 /tmp/minio-server.sh /usr/bin/minio \
    && install -m 755 /tmp/mc.sh /usr/bin/mc && rm /tmp/rclone /tmp/*.sh \
    && printf '#!/bin/sh\n[ "${1:-}" = minio ] || set -- minio "$@"\nexec "$@"\n' >/usr/bin/docker-entrypoint.sh \
    && chmod 755 /usr/bin/docker-entrypoint.sh
EXPOSE 9000
ENTRYPOINT ["/usr/bin/docker-entrypoint.sh"]
CMD ["minio"]
