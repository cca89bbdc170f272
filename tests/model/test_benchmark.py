"""The benchmark keeps working (figures only: no timing is asserted)."""

from __future__ import annotations

from florisense_model.perf.benchmark import benchmark_in_process
from tests.support.images import CLASS_COLOURS, encode, photo


def test_benchmark_reports_every_figure(tiny_pyfunc_dir, tmp_path):
    files = []
    for index in range(3):
        path = tmp_path / f"{index}.jpg"
        path.write_bytes(encode(photo(CLASS_COLOURS["grass"], seed=index)))
        files.append(path)
    result = benchmark_in_process(str(tiny_pyfunc_dir), files, repeats=3, batch=4)
    assert result["runtime"] == "onnx"
    keys = ("floor_one_image", "pyfunc_one_image", "floor_batch_4", "pyfunc_batch_4")
    for key in (*keys, "tensorflow_floor_one_image", "tensorflow_floor_batch_4"):
        assert result[key]["calls"] >= 3 and result[key]["p50_ms"] > 0, key
        assert result[key]["images_per_s"] > 0
