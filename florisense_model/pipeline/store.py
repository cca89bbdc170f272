"""The labelled photos in S3: a content-addressed prefix per class, listed as a Manifest,
added to with the model's own checks, and copied to a local folder for training."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from florisense_model.pipeline.manifest import (
    Entry,
    Manifest,
    parse_key,
    photo_key,
    split_s3_uri,
)

CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
}


@dataclass
class AddReport:
    """What `add` did with each file: one line per refused or skipped file."""

    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    digest: str = ""  # the dataset's afterwards


class DataStore:
    """The dataset prefix `uri` (s3://bucket/prefix/) through an S3 client (boto3)."""

    def __init__(self, client: Any, uri: str) -> None:
        self.client = client
        self.uri = uri
        self.bucket, self.prefix = split_s3_uri(uri)

    def manifest(self) -> Manifest:
        """The dataset version the bucket holds now (keys that are not ours are left out)."""
        from botocore.exceptions import ClientError, EndpointConnectionError

        entries = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    parsed = parse_key(item["Key"][len(self.prefix) :])
                    if parsed:
                        entries.append(Entry(item["Key"], parsed[0], parsed[1], int(item["Size"])))
        except EndpointConnectionError:
            raise ConnectionError(
                f"cannot reach the S3 server at {self.client.meta.endpoint_url} "
                "(is the stack up? `make up`)"
            ) from None
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchBucket":
                raise ValueError(f"no bucket {self.bucket}: start the stack (`make up`)") from None
            raise
        return Manifest(self.uri, tuple(sorted(entries, key=lambda e: e.key)))

    def add(
        self,
        paths: Iterable[Path],
        label: str,
        known_classes: Iterable[str],
        log: Callable[[str], None] = print,
    ) -> AddReport:
        """Upload each photo under <label>/ unless it fails the training checks (one line each),
        is already in the dataset (said so), or `label` is neither one of `known_classes` nor a
        class the dataset has. Each object is written whole by one PUT, so an interruption
        leaves no half photo."""
        from florisense_model.training.data import photo_problem  # the model's checks (Pillow)

        manifest = self.manifest()
        known = sorted(set(known_classes) | set(manifest.counts()))
        if label not in known:
            raise ValueError(
                f"unknown class {label!r}: the dataset's classes are {', '.join(known)} "
                "(a new class needs --new-class)"
            )
        current = {e.sha256: e for e in manifest.entries}
        report = AddReport()

        def say(bucket: list[str], line: str) -> None:
            bucket.append(line)
            log(line)

        for path in paths:
            path = Path(path)
            suffix = path.suffix.lower()
            if suffix not in CONTENT_TYPES:
                say(report.refused, f"{path}: refused: not a photo file ({suffix or 'no suffix'})")
                continue
            data = path.read_bytes()
            problem = photo_problem(data)
            if problem:
                say(report.refused, f"{path}: refused: {problem}")
                continue
            sha = hashlib.sha256(data).hexdigest()
            if sha in current:
                twin = current[sha]
                where = "" if twin.label == label else f" (labelled {twin.label})"
                say(report.skipped, f"{path}: skipped: already in the dataset as {twin.key}{where}")
                continue
            key = photo_key(self.prefix, label, sha, suffix)
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=CONTENT_TYPES[suffix],
                Metadata={"sha256": sha},
            )
            current[sha] = Entry(key, label, sha, len(data))
            say(report.uploaded, f"{path}: added as {key}")
        report.digest = Manifest(
            self.uri, tuple(sorted(current.values(), key=lambda e: e.key))
        ).digest
        return report

    def materialise(self, manifest: Manifest, folder: Path) -> Path:
        """The manifest's photos as <folder>/<digest>/<class>/<sha256>.<ext>, each checked
        against its SHA-256 (once: a complete copy is reused). Returns the dataset's folder."""
        target = folder / manifest.digest
        if (target / ".complete").is_file():
            return target
        for entry in manifest.entries:
            path = target / manifest.relative(entry)
            if path.is_file() and _sha256(path.read_bytes()) == entry.sha256:
                continue
            body = self.client.get_object(Bucket=self.bucket, Key=entry.key)["Body"].read()
            if _sha256(body) != entry.sha256:
                raise ValueError(f"{entry.key}: content does not match its SHA-256 (tampered?)")
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
                handle.write(body)
            os.replace(handle.name, path)
        (target / ".complete").write_text(manifest.to_json(), encoding="utf-8")
        return target


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def folder_manifest(root: Path) -> Manifest:
    """A local folder of class sub-folders as a Manifest (key: the path under `root`)."""
    from florisense_model.photos import class_folders

    entries = []
    for label, files in class_folders(root).items():
        for path in files:
            data = path.read_bytes()
            entries.append(
                Entry(path.relative_to(root).as_posix(), label, _sha256(data), len(data))
            )
    return Manifest(str(root), tuple(sorted(entries, key=lambda e: e.key)))


def open_store(uri: str | None = None) -> DataStore:
    """The stack's data bucket (or `uri`) with the stack's S3 settings (.env, run/secrets)."""
    from florisense_model.stack.s3 import s3_client
    from florisense_model.stack.settings import DATA_URI, StackConfig

    return DataStore(s3_client(StackConfig.from_env()), uri or DATA_URI)


def seed(
    store: DataStore, folder: Path, log: Callable[[str], None] = print, top_up: bool = False
) -> AddReport | None:
    """A first dataset from a folder of class sub-folders, only while the bucket holds none
    (so a newcomer's first model is trained from the bucket like every later one); `top_up`:
    also when it holds some (photos already there are skipped), so a seed that was cut off
    half-way is completed before the first version trains."""
    from florisense_model.photos import class_folders

    if store.manifest().entries and not top_up:
        return None
    classes = class_folders(folder)
    total = AddReport()
    for label, files in classes.items():
        report = store.add(files, label, classes, log=lambda line: None)
        for name in ("uploaded", "skipped", "refused"):
            getattr(total, name).extend(getattr(report, name))
        total.digest = report.digest
        for line in report.refused:
            log(line)
        log(f"{label}: {len(report.uploaded)} photos added")
    return total
