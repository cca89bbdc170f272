"""The pointing game that judges heat maps: boxes matched by content, the strongest cell mapped
back to photo pixels, hits and the centre baseline counted."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from PIL import Image

from florisense_model.training import explanations
from florisense_model.training.explanations import BoxedPhoto, inside, pointing_game


def write_boxes(path, rows):
    lines = ["sha256,file,left,top,right,bottom"] + [",".join(map(str, row)) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def test_boxes_attach_by_content_not_by_name(tmp_path):
    folder = tmp_path / "photos" / "dandelion"
    folder.mkdir(parents=True)
    Image.new("RGB", (40, 30), (200, 200, 0)).save(folder / "a.jpg")
    Image.new("RGB", (40, 30), (0, 200, 0)).save(folder / "b.jpg")
    real = hashlib.sha256((folder / "a.jpg").read_bytes()).hexdigest()
    boxes = tmp_path / "boxes.csv"
    write_boxes(
        boxes,
        [
            (real, "dandelion/a.jpg", 1, 2, 10, 12),
            (real, "dandelion/a.jpg", 20, 5, 30, 25),
            ("0" * 64, "dandelion/b.jpg", 0, 0, 5, 5),  # b.jpg has other content: ignored
            (real, "dandelion/missing.jpg", 0, 0, 5, 5),
        ],
    )
    found = explanations.load_boxes(tmp_path / "photos", boxes)
    assert [photo.path.name for photo in found] == ["a.jpg"]
    assert found[0].boxes == [(1, 2, 10, 12), (20, 5, 30, 25)]


def test_the_builtin_boxes_load_for_the_dandelion_grass_photos():
    assert explanations.load_boxes(Path("/nonexistent")) == []
    text = (
        resources.files("florisense_model.training")
        .joinpath("flower_boxes/dandelion-grass.csv")
        .read_text()
    )
    rows = text.strip().splitlines()
    assert rows[0] == "sha256,file,left,top,right,bottom"
    assert len({row.split(",")[1] for row in rows[1:]}) >= 35  # photos with boxes


def test_the_strongest_cell_is_mapped_back_to_photo_pixels():
    heatmap = [[0.0, 0.1, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]  # 2 rows, 4 columns
    assert explanations.strongest_point(heatmap, 400, 100) == (350.0, 75.0)


def test_pointing_game_counts_hits_and_the_centre_baseline(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (100, 100)).save(path)
    top_left = BoxedPhoto(path, [(0, 0, 30, 30)])
    centre = BoxedPhoto(path, [(40, 40, 60, 60)])
    hot_top_left = [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    score = pointing_game([top_left, centre], [hot_top_left, hot_top_left])
    assert (score.hits, score.centre_hits, score.photos) == (1, 1, 2)
    assert score.metrics()["pointing_game"] == 0.5
    assert inside((50, 50), centre.boxes) and not inside((61, 50), centre.boxes)
