# STAND-IN for python:3.11-slim-bookworm (official image: CPython 3.11 built into /usr/local).
# Differs: Debian's own python3.11 (3.11.2) with pip, linked as python/pip in /usr/local/bin; pip
# may install system-wide (Debian's "externally managed" marker removed, as the official image
# has none); this network's CA is trusted by pip and Python.
FROM florisense-standin/debian:bookworm
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends python3 python3-pip python3-venv passwd \
    && rm -rf /var/lib/apt/lists/* /usr/lib/python3.11/EXTERNALLY-MANAGED \
    && ln -s /usr/bin/python3 /usr/local/bin/python && ln -s /usr/bin/pip3 /usr/local/bin/pip
ENV LANG=C.UTF-8 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1
CMD ["python3"]
