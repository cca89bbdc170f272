"""Render nginx/nginx.conf.template the way the nginx image's envsubst does: only ${UPPER_CASE}
names are replaced, so nginx's own $variables pass through untouched."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent / "nginx" / "nginx.conf.template"
_NAME = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")

# Defaults shared by both stacks; each can be overridden from the environment (.env).
DEFAULTS = {
    "NJS_MODULE": "/usr/lib/nginx/modules/ngx_http_js_module.so",
    "MAX_BODY_SIZE": "32m",
    "RATE_LIMIT": "20r/s",
    "RATE_BURST": "40",
    "CONN_LIMIT": "16",
    "PREDICT_TIMEOUT": "60s",
    "BODY_TIMEOUT": "20s",
}


def render(values: dict[str, str], template: Path = TEMPLATE) -> str:
    """The template with every ${NAME} replaced; a missing value is an error, never empty."""
    text = template.read_text(encoding="utf-8")
    missing = sorted({name for name in _NAME.findall(text) if name not in values})
    if missing:
        raise KeyError(f"nginx template variables without a value: {', '.join(missing)}")
    return _NAME.sub(lambda match: values[match.group(1)], text)
