"""`florisense data`: the labelled photos in the data bucket, a dataset version per manifest."""

from __future__ import annotations

import argparse
from pathlib import Path

from florisense_model.stack.settings import DATA_URI


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser(
        "data",
        help="the labelled photos: add, list",
        description=f"The labelled photos in {DATA_URI}<class>/<sha256>.<ext>: each dataset "
        "version is a manifest of keys, classes and SHA-256, named by its digest.",
    )
    commands = data.add_subparsers(title="commands", metavar="COMMAND", required=True)

    add = commands.add_parser(
        "add",
        help="check and upload photos under a class",
        description="Check each photo with the model's own checks and upload it under "
        "--label. Corrupt files and non-images are refused with one line each, photos "
        "already in the dataset are skipped; the rest are uploaded. Exit 1 if any was refused.",
    )
    add.add_argument("paths", nargs="+", metavar="PATH", help="photo files or folders")
    add.add_argument("--label", required=True, help="the class of every photo given")
    add.add_argument(
        "--new-class", action="store_true", help="allow a class the dataset does not have yet"
    )
    add.add_argument("--uri", default=DATA_URI, help=f"dataset prefix (default {DATA_URI})")
    add.set_defaults(func=_add)

    seed = commands.add_parser(
        "seed",
        help="a first dataset from a folder, if the bucket has none",
        description="Upload a folder of class sub-folders (default: $FLORISENSE_DATA_DIR, else "
        "the original product's photos) when the dataset is empty; otherwise do nothing.",
    )
    seed.add_argument("folder", nargs="?", default="", help="default: $FLORISENSE_DATA_DIR")
    seed.add_argument("--uri", default=DATA_URI, help=f"dataset prefix (default {DATA_URI})")
    seed.set_defaults(func=_seed)

    listing = commands.add_parser(
        "list", help="classes, counts and the current digest", description="The dataset now."
    )
    listing.add_argument("--uri", default=DATA_URI, help=f"dataset prefix (default {DATA_URI})")
    listing.add_argument("--json", action="store_true", help="the whole manifest as JSON")
    listing.set_defaults(func=_list)


def _add(args: argparse.Namespace) -> int:
    from florisense_model.model.labels import CLASSES
    from florisense_model.photos import files_under
    from florisense_model.pipeline.store import open_store

    store = open_store(args.uri)
    known = set(CLASSES) | ({args.label} if args.new_class else set())
    # Every file of a folder, not only those named like photos: each refused one gets its line.
    files = [f for p in map(Path, args.paths) for f in (files_under(p) if p.is_dir() else [p])]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"no such file or folder: {', '.join(missing)}")
    report = store.add(files, args.label, known)
    print(
        f"{len(report.uploaded)} added, {len(report.skipped)} already there, "
        f"{len(report.refused)} refused; dataset now {report.digest}"
    )
    return 1 if report.refused else 0


def _seed(args: argparse.Namespace) -> int:
    from florisense_model.pipeline.store import open_store, seed
    from florisense_model.training.sources import resolve_data_dir

    store = open_store(args.uri)
    manifest = store.manifest()
    if manifest.entries:  # checked before resolving the folder, which may download photos
        print(f"{store.uri} already holds a dataset ({manifest.digest}): nothing to seed")
        return 0
    report = seed(store, resolve_data_dir(args.folder))
    print(f"seeded {store.uri}: {len(report.uploaded)} photos, dataset {report.digest}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from florisense_model.pipeline.store import open_store

    manifest = open_store(args.uri).manifest()
    if args.json:
        print(manifest.to_json(), end="")
        return 0
    print(f"dataset {manifest.digest} at {manifest.source}")
    for label, count in manifest.counts().items():
        print(f"  {label:<12} {count:>6}")
    print(f"  {'total':<12} {len(manifest.entries):>6}")
    return 0
