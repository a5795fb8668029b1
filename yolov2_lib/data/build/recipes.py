"""Recipes: which builder makes a derived file from which sources, and :func:`run_recipe`, which runs one.

A :class:`BuildRecipe` (read from ``registry.json``) names a builder of
:data:`BUILDERS` and its sources. Running it gets the sources into a scratch
folder (downloads, streamed tar archives, a zip member) and calls the builder.
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from ...files import atomic_open, write_text
from ..voc.annotations import _read_ids
from ..voc.boxes_csv import write_boxes_csv
from .builders import VOC2007_DEMO_IDS, bccd_boxes_csv, coco_boxes_csv, voc_boxes_csv, voc_demo_boxes_csv
from .downloads import _CHUNK, download
from .sources import Source, SourceChecksumError, SourceError
from .tars import _voc_member, extract_tar_members

__all__ = ["BUILDERS", "BuildRecipe", "run_recipe"]

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class BuildRecipe:
    """How to make a derived file: which builder, from which sources.

    Attributes:
        builder: one of :data:`BUILDERS` (``"voc_boxes"``, ``"coco_boxes"``,
            ``"bccd_boxes"``, ``"voc2007_demo_boxes"``).
        sources: what to download.
        origin: in words, what of the sources is used.
        licence: the licence of the sources.
        requires: a registered dataset used instead of ``sources`` when it is
            already available locally (the demo boxes are rows of ``voc_boxes``).
    """

    builder: str
    sources: tuple[Source, ...]
    origin: str
    licence: str
    requires: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping) -> "BuildRecipe":
        sources = tuple(Source.from_dict(s) for s in d["sources"])
        return cls(d["builder"], sources, d["origin"], d["licence"], d.get("requires"))

    def describe(self) -> str:
        """One line: what it is built from, and where that is downloaded."""
        urls = [s.url for s in self.sources]
        base = os.path.commonprefix(urls).rpartition("/")[0] + "/" if len(urls) > 1 else ""
        where = f"{base} ({', '.join(u[len(base):] for u in urls)})" if base.count("/") > 3 else ", ".join(urls)
        checked = ", MD5-checked" if all(s.md5 for s in self.sources) else ""
        also = f" (or from the {self.requires!r} dataset when it is available locally)" if self.requires else ""
        return f"{self.origin}{also}; downloaded from {where}{checked}"


def _run_voc(recipe: BuildRecipe, work: Path, out: Path, timeout: float, local) -> int:
    devkit = work / "VOCdevkit"
    for source in recipe.sources:
        extract_tar_members(source, devkit, _voc_member, timeout=timeout)
    return voc_boxes_csv(devkit, out)


def _run_demo(recipe: BuildRecipe, work: Path, out: Path, timeout: float, local) -> int:
    voc = local(recipe.requires) if (recipe.requires and local is not None) else None
    if voc is None:
        wanted = {f"VOC2007/Annotations/{i}.xml" for i in VOC2007_DEMO_IDS} | {"VOC2007/ImageSets/Main/test.txt"}
        devkit = work / "VOCdevkit"
        for source in recipe.sources:
            extract_tar_members(source, devkit, lambda n: r if (r := _voc_member(n)) in wanted else None,
                                timeout=timeout)  # fmt: skip
        test_list = devkit / "VOC2007" / "ImageSets" / "Main" / "test.txt"
        write_text(test_list, "".join(f"{i}\n" for i in _read_ids(test_list) if i in VOC2007_DEMO_IDS))
        voc = work / "voc2007_demo_rows.csv"
        write_boxes_csv(devkit, voc, years=["2007"], image_sets=("test",), strict=True)
    return voc_demo_boxes_csv(voc, out)


def _run_coco(recipe: BuildRecipe, work: Path, out: Path, timeout: float, local) -> int:
    if len(recipe.sources) != 1:
        raise ValueError(f"the coco_boxes recipe takes one zip archive, got {len(recipe.sources)} sources.")
    source = recipe.sources[0]
    member = source.member or "annotations/instances_val2017.json"
    archive = work / source.name
    download(source, archive, timeout=timeout)
    instances = work / Path(member).name
    try:
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src, atomic_open(instances, "wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
    except (zipfile.BadZipFile, KeyError) as err:
        raise SourceChecksumError(f"{source.url}: no {member} in the archive ({err}).") from err
    archive.unlink()
    return coco_boxes_csv(instances, out)


def _run_bccd(recipe: BuildRecipe, work: Path, out: Path, timeout: float, local) -> int:
    per_image = [s for s in recipe.sources if "{image_id}" in s.url]
    lists = [s for s in recipe.sources if "{image_id}" not in s.url]
    if len(per_image) != 1 or not lists:
        raise ValueError("the bccd_boxes recipe takes image lists and one annotation URL with {image_id}.")
    sets_dir, annotations = work / "ImageSets" / "Main", work / "Annotations"
    for source in lists:
        download(source, sets_dir / source.name, timeout=timeout)
    ids = sorted({i for source in lists for i in _read_ids(sets_dir / source.name)})
    bad = [i for i in ids if not _SAFE_ID.match(i)]
    if bad:
        raise SourceChecksumError(f"the image lists name unexpected ids, for example {bad[0]!r}.")
    for image_id in ids:
        download(per_image[0].format(image_id=image_id), annotations / f"{image_id}.xml", timeout=timeout)
    splits = tuple(Path(s.name).stem for s in lists)
    return bccd_boxes_csv(annotations, sets_dir, out, splits=splits)


BUILDERS: dict[str, Callable[..., int]] = {
    "voc_boxes": _run_voc,
    "coco_boxes": _run_coco,
    "bccd_boxes": _run_bccd,
    "voc2007_demo_boxes": _run_demo,
}


def run_recipe(
    recipe: BuildRecipe,
    work_dir: str | Path,
    csv_path: str | Path,
    *,
    timeout: float = 60.0,
    local: Callable[[str], Path | None] | None = None,
) -> int:
    """Get a recipe's sources into ``work_dir`` and build ``csv_path`` from them.

    Args:
        recipe: what to build and from where.
        work_dir: an empty scratch folder (the caller removes it).
        csv_path: the CSV to write.
        timeout: seconds for each network operation.
        local: dataset name -> its local path, or ``None`` when it would need
            a download (for ``recipe.requires``).

    Returns:
        The number of rows written.

    Raises:
        SourceChecksumError: a source is not the published one.
        SourceUnavailableError: a source could not be downloaded.
        SourceError: the sources do not hold what the builder needs.
    """
    runner = BUILDERS.get(recipe.builder)
    if runner is None:
        raise ValueError(f"unknown builder {recipe.builder!r}; known: {', '.join(sorted(BUILDERS))}.")
    try:
        return runner(recipe, Path(work_dir), Path(csv_path), timeout, local)
    except SourceError:
        raise
    except (OSError, ValueError) as err:  # includes AnnotationError
        raise SourceError(f"the {recipe.builder} builder could not use the downloaded sources ({err}).") from err
