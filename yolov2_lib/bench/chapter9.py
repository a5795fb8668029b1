"""Chapter 9's run as a reader gets it: the chapter itself, executed, alone or beside a busy core.

``python -m yolov2_lib.bench chapter9 [--busy] [--notebook book/09_training.ipynb] [--record PATH]``

Executes the chapter's notebook from top to bottom in a fresh kernel (the
same cells a reader runs, but the one that prints this record), optionally beside one CPU-bound process at normal
priority for the whole run (``--busy``), then reads the values the chapter
hands to its prose (its run's updates, minutes, precision and test mAP) and
appends them, with the machine, the commit and the load, to the record
(default: the one shipped with the library, :func:`reference` reads it).

The chapter trains a fixed number of updates, so its detector depends on the
seed, the precision, the thread count and the CPU's arithmetic, never on how
busy the machine is: a busy run takes longer and should reach the same mAP.
This needs the book's sources (a checkout of the repository).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from datetime import date
from pathlib import Path

from ..errors import YOLOv2Error
from ..files import write_json
from ..runtime import cpu_info, cpu_name, git_commit  # the commit a run records, "+dirty" with changes
from . import load_average
from .busy import _spin

RECORD = Path(__file__).with_name("records") / "chapter9_bccd.json"
NOTEBOOK = Path(__file__).resolve().parents[2] / "book" / "09_training.ipynb"
GLUED = ("ch9_updates", "ch9_minutes", "ch9_precision", "ch9_hardware", "ch9_images_per_s", "ch9_test_map",
         "ch9_test_map_area", "ch9_ap_rbc", "ch9_ap_wbc", "ch9_ap_platelets", "ch9_best_update")


def reference() -> dict:
    """The shipped reference of chapter 9's run: the first run of the record alone on its machine,
    in float32 (what most readers' CPUs compute), with the record's other runs."""
    record = json.loads(RECORD.read_text())
    quiet = [r for r in record["runs"] if not r["busy"] and r["precision"] == "float32"]
    if not quiet:
        raise YOLOv2Error(f"{RECORD} holds no float32 run made alone on its machine.")
    return {**quiet[0], "runs": record["runs"]}


def cpu_model() -> str:
    """The CPU's name with its family and model numbers and whether it computes bf16 natively."""
    fields = cpu_info()
    flags = set(fields.get("flags", "").split())
    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    bf16 = "native bf16" if flags & {"avx512_bf16", "amx_bf16"} else "no native bf16"
    return f"{cpu_name()} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}; {simd}, {bf16})"


def glued_values(notebook: dict) -> dict:
    """The values an executed notebook handed to its prose (myst-nb glue), by name."""
    values = {}
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook", {})
            text = output.get("data", {}).get(scrapbook.get("mime_prefix", "") + "text/plain")
            if scrapbook.get("name") and text is not None:
                name = scrapbook["name"]
                try:
                    values[name] = json.loads(text)
                except json.JSONDecodeError:
                    values[name] = text.strip("'\"")
    return values


def main(argv: list[str] | None = None) -> int:
    import nbformat
    from nbclient import NotebookClient

    parser = argparse.ArgumentParser(prog="python -m yolov2_lib.bench chapter9", description=__doc__.split("\n\n")[0])
    parser.add_argument("--busy", action="store_true", help="run beside one CPU-bound process")
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK, help="the chapter's notebook")
    parser.add_argument("--record", type=Path, default=RECORD, help="the record to append the run to")
    parser.add_argument("--executed", type=Path, default=None, help="also keep the executed notebook here")
    args = parser.parse_args(argv)
    if not args.notebook.is_file():
        parser.error(f"{args.notebook} does not exist: this benchmark runs the book's own chapter (a checkout)")
    if os.environ.get("YOLOV2_QUICK", "0") not in ("", "0"):
        parser.error("YOLOV2_QUICK is set: the chapter would train for seconds; unset it")
    notebook = nbformat.read(args.notebook, as_version=4)
    notebook.cells = [c for c in notebook.cells if "reference()" not in c.source]  # it reads what we write
    spinner = multiprocessing.Process(target=_spin, daemon=True) if args.busy else None
    if spinner:
        spinner.start()
    began = time.perf_counter()
    try:
        NotebookClient(notebook, timeout=3600, kernel_name="python3",
                       resources={"metadata": {"path": str(args.notebook.parent)}}).execute()
    finally:
        if spinner:
            spinner.terminate()
            spinner.join()
    if args.executed:
        nbformat.write(notebook, args.executed)
    values = glued_values(notebook)
    missing = [name for name in GLUED if name not in values]
    if missing:
        raise SystemExit(f"the chapter handed no {', '.join(missing)} to its prose")
    run = {
        "date": date.today().isoformat(), "commit": git_commit(Path(__file__).parent), "cpu": cpu_model(), "cores": os.cpu_count(),
        "busy": args.busy, "load_average_after": load_average(),
        "notebook_minutes": round((time.perf_counter() - began) / 60, 2),
        "updates": values["ch9_updates"], "train_minutes": round(values["ch9_minutes"], 2),
        "images_per_s": round(values["ch9_images_per_s"], 2), "precision": values["ch9_precision"],
        "hardware": values["ch9_hardware"], "best_update": values["ch9_best_update"],
        "test_map": round(values["ch9_test_map"], 2), "test_map_area": round(values["ch9_test_map_area"], 2),
        "test_ap": {name: round(values[f"ch9_ap_{name.lower()}"], 2) for name in ("RBC", "WBC", "Platelets")},
    }
    record = json.loads(args.record.read_text()) if args.record.is_file() else {
        "benchmark": "chapter9",
        "what": "book/09_training.ipynb executed in a fresh kernel; test mAP@0.5 in %, VOC 2007 11-point "
                "(test_map) and all-point (test_map_area)",
        "runs": []}
    record["runs"].append(run)
    write_json(args.record, record)
    print(json.dumps(run, indent=2))
    print(f"appended to {args.record}")
    return 0
