"""Benchmarks: ``python -m yolov2_lib.bench NAME [options]``.

Each benchmark is a module here with ``main(argv) -> int``; it prints medians
and ratios measured in one run and can write a JSON record (``--json PATH``).
Speed is checked here, never by timed unit tests.
"""

import json
from pathlib import Path


def write_record(path: Path, record: dict) -> None:
    """Write a benchmark's JSON record (creating its folder) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")


BENCHMARKS = {
    "anchors": "k-means on all VOC boxes against a per-box Python loop",
    "model": "YOLOv2-416 forward: plain, fused batch norm, channels-last; GFLOP/s",
    "loss": "loss forward+backward against a training step; VOC07-sized mAP evaluation",
}
