# STAND-IN for postgres:16.6-bookworm (official image: PostgreSQL 16 with its docker-entrypoint).
# Differs: Debian bookworm's PostgreSQL 15 (no 16 in bookworm); the entrypoint does what ours
# needs of the official one: a new data directory in $PGDATA is initialised with POSTGRES_USER,
# POSTGRES_PASSWORD (password login over TCP) and POSTGRES_DB, then postgres runs as PID 1.
FROM florisense-standin/debian:bookworm
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
