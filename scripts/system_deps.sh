#!/usr/bin/env bash
# Debian packages FloriSense needs beyond Python: make and venv support, nginx with its njs module
# (the /predict error filter), Chromium for the browser tests (Playwright drives it; it never
# downloads a browser of its own), npm (installs the pinned Swagger UI for /docs), Prometheus and
# mtail (monitoring), Java 17 (Spark). Installs only what is missing; needs root to install.
set -euo pipefail

missing=()
command -v make >/dev/null || missing+=(make)
python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_http_js_module.so ] || missing+=(libnginx-mod-http-js)
command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(npm)  # Swagger UI for /docs, from its pinned npm package
# Monitoring without Docker: Prometheus (with promtool) and mtail (nginx's request metrics).
command -v prometheus >/dev/null || missing+=(prometheus)
command -v mtail >/dev/null || missing+=(mtail)
# Alertmanager routes the drift alerts to the retraining flow (florisense_model/pipeline/).
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
# Batch scoring on Spark (pyspark from PyPI) needs a Java runtime: 17, as Spark 4 supports.
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
# kubectl renders the Kubernetes manifests (kubectl kustomize); it ships with these machines (the
# Google Cloud SDK's package). Debian's kubernetes-client is 1.20, whose Kustomize is too old for
# deploy/kubernetes (components): say so rather than install it.
command -v kubectl >/dev/null || echo "kubectl is missing: tests/code/test_kubernetes*.py need kubectl 1.27 or newer (https://kubernetes.io/docs/tasks/tools/)" >&2

[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "FloriSense needs these Debian packages: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
apt-get update -qq
# The prometheus, mtail and alertmanager packages start their system services when installed; the stack runs
# its own (make up), so Debian's policy hook keeps them from starting during this install.
policy=/usr/sbin/policy-rc.d
[ -e "$policy" ] || { printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; trap 'rm -f "$policy"' EXIT; }
# No recommends: prometheus would pull in node-exporter, which the stack does not use.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
