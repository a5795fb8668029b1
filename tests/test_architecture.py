"""ARCHITECTURE.md stays true: every module is on the map, imports point down, files stay short."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "yolov2_lib"
MAX_LINES = 700


def _layers() -> dict[str, int]:
    """``{unit: layer}`` from the table of ARCHITECTURE.md."""
    rows = re.findall(r"^\| (\d) [^|]*\| `([\w.]+)` \|", (ROOT / "ARCHITECTURE.md").read_text(), re.M)
    assert rows, "ARCHITECTURE.md has no table of layers"
    layers: dict[str, int] = {}
    for layer, unit in rows:
        assert unit not in layers, f"{unit} is on the map twice"
        layers[unit] = int(layer)
    return layers


def _unit(path: Path) -> str:
    """The unit a file belongs to: a top-level module or package, or a part of ``data``."""
    parts = list(path.relative_to(LIB).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if parts[:1] == ["data"] and len(parts) > 1:
        return f"data.{parts[1]}"
    return parts[0]


def _sources() -> list[Path]:
    return sorted(p for p in LIB.rglob("*.py") if p != LIB / "__init__.py")


def _imports(path: Path, text: str | None = None) -> set[str]:
    """The units a file (or ``text`` as if it were that file) imports from, inside the library."""
    package = list(path.relative_to(LIB).parent.parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text() if text is None else text)):
        if not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        base = package[: len(package) - (node.level - 1)]
        targets = [base + node.module.split(".")] if node.module else [base + [a.name] for a in node.names]
        for parts in targets:
            where = LIB.joinpath(*parts)
            for candidate in (where.with_suffix(".py"), where / "__init__.py"):
                if candidate.exists() and parts:
                    found.add(_unit(candidate))
    return found


def test_every_module_is_on_the_map_and_nothing_else():
    layers = _layers()
    units = {_unit(p) for p in _sources()}
    assert units - set(layers) == set(), "modules missing from ARCHITECTURE.md"
    assert set(layers) - units == set(), "ARCHITECTURE.md names modules that do not exist"


def _upward(path: Path, layers: dict[str, int], text: str | None = None) -> list[str]:
    unit = _unit(path)
    return [f"{path.relative_to(ROOT)} ({unit}, layer {layers[unit]}) imports {target} (layer {layers[target]})"
            for target in sorted(_imports(path, text) - {unit}) if layers[target] > layers[unit]]


def test_imports_point_to_the_same_layer_or_below():
    layers = _layers()
    upward = [line for path in _sources() for line in _upward(path, layers)]
    assert not upward, "\n".join(upward)


def test_no_file_is_longer_than_the_limit():
    long = {str(p.relative_to(ROOT)): n for p in _sources() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_the_check_sees_an_upward_import():
    """It can fail: the loss importing the trainer, or a figure module the command line, is refused."""
    layers = _layers()
    assert _upward(LIB / "loss.py", layers, "from .train import Trainer")
    assert _upward(LIB / "viz" / "loss.py", layers, "from ..cli import main")
    assert not _upward(LIB / "train" / "trainer.py", layers, "from ..loss import YOLOv2Loss")
