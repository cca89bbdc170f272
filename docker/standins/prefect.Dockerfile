# STAND-IN for prefecthq/prefect:<version>-python3.11 (the official image: Prefect on
# python:3.11-slim, entrypoint /opt/prefect/entrypoint.sh under tini). Differs: built on our
# python stand-in (Debian's CPython 3.11.2) with `pip install prefect==<version>` (build.sh takes
# the version from the tag, so the stand-in is the Prefect the tag names); no tini, no
# EXTRA_PIP_PACKAGES hook, `prefect` is run directly. Same user (root) and port as the official.
FROM python:3.11-slim-bookworm
ARG PREFECT_VERSION
RUN test -n "$PREFECT_VERSION" \
    && pip install --no-cache-dir "prefect==${PREFECT_VERSION}" \
    && prefect --version
EXPOSE 4200
CMD ["prefect", "server", "start", "--host", "0.0.0.0"]
