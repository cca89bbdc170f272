"""A dataset version: every photo's key, class, SHA-256 and size. Its digest names the version.

Standard library only: the retraining flow runs in an environment of its own (Prefect's), and
training, the command line and the flow must all compute the same digest.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

# How a training run names its dataset (mlflow.log_input) and tags its digest: the retraining
# flow compares the Production run's tag with the bucket's digest.
DATASET_NAME = "florisense-labelled"
DATASET_DIGEST_TAG = "dataset_digest"
# MLflow keeps a dataset's digest in 36 characters: 32 hex digits (128 bits of SHA-256) fit.
DIGEST_LENGTH = 32
# A photo in the bucket is content-addressed: <prefix><class>/<sha256>.<ext>.
_KEY = re.compile(r"^(?P<label>[a-z0-9][a-z0-9_-]*)/(?P<sha256>[0-9a-f]{64})\.(?P<ext>[a-z0-9]+)$")


@dataclass(frozen=True)
class Entry:
    key: str
    label: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """The photos of one dataset version, sorted by key, and where they live (`source`: an
    s3:// prefix or a local folder)."""

    source: str
    entries: tuple[Entry, ...]

    @property
    def digest(self) -> str:
        """SHA-256 over (key relative to the source, class, content hash), 32 hex digits."""
        lines = "".join(f"{self.relative(e)}\t{e.label}\t{e.sha256}\n" for e in self.entries)
        return hashlib.sha256(lines.encode()).hexdigest()[:DIGEST_LENGTH]

    def relative(self, entry: Entry) -> str:
        prefix = _prefix_of(self.source)
        return entry.key[len(prefix) :] if prefix and entry.key.startswith(prefix) else entry.key

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(e.label for e in self.entries).items()))

    @property
    def hashes(self) -> frozenset[str]:
        return frozenset(e.sha256 for e in self.entries)

    def to_json(self) -> str:
        document = {
            "source": self.source,
            "digest": self.digest,
            "counts": self.counts(),
            "entries": [asdict(e) for e in self.entries],
        }
        return json.dumps(document, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        document = json.loads(text)
        manifest = cls(document["source"], tuple(Entry(**e) for e in document["entries"]))
        if document.get("digest") not in (None, manifest.digest):
            raise ValueError("the manifest's digest does not match its entries (edited by hand?)")
        return manifest

    @classmethod
    def read(cls, path: str | Path) -> Manifest:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def parse_key(relative_key: str) -> tuple[str, str] | None:
    """(class, sha256) of a photo's key relative to the dataset prefix, or None if the key is not
    one of ours (uploaded by hand, say)."""
    match = _KEY.match(relative_key)
    return (match["label"], match["sha256"]) if match else None


def photo_key(prefix: str, label: str, sha256: str, suffix: str) -> str:
    return f"{prefix}{label}/{sha256}{suffix.lower()}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/prefix/ -> (bucket, "prefix/")."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri}")
    return bucket, (prefix.rstrip("/") + "/") if prefix.strip("/") else ""


def _prefix_of(source: str) -> str:
    return split_s3_uri(source)[1] if source.startswith("s3://") else ""
