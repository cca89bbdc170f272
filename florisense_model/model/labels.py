"""What the model answers with: its classes, their display names, and its input/output columns."""

from __future__ import annotations

# Internal class names, sorted: the network's output index i is CLASSES[i].
CLASSES: tuple[str, ...] = ("dandelion", "grass")
DISPLAY_NAMES: dict[str, dict[str, str]] = {
    "fr": {"dandelion": "Pissenlit", "grass": "Herbe"},
    "en": {"dandelion": "Dandelion", "grass": "Grass"},
}
DEFAULT_LANGUAGE = "fr"

IMAGE_COLUMN = "image"
OUTPUT_COLUMNS = ("label", "label_display", "confidence", "probabilities", "error", "run_id")
# The request param that asks for heat maps, and the column that answers them (class_maps.py).
EXPLAIN_PARAM = "explain"
HEATMAP_COLUMN = "heatmap"
