# STAND-IN for quay.io/minio/mc:RELEASE.2025-04-16T18-13-26Z (MinIO's client). Differs: the
# subcommands our files use (`alias set`, `mb [--ignore-existing]`, `ready`, `ls`) done by rclone.
FROM florisense-standin/debian:bookworm
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*
COPY rclone mc.sh /tmp/
RUN install -m 755 /tmp/rclone /usr/bin/rclone && install -m 755 /tmp/mc.sh /usr/bin/mc \
    && rm /tmp/rclone /tmp/mc.sh
ENTRYPOINT ["mc"]
