"""Data by name: one call gives a split of a dataset -- its records, its classes, its dataset.

Chapter 9 (training end to end) trains on ``split("bccd", "train")``.

A :class:`DataSource` says where boxes and images are: a registered name
(``"bccd"``, fetched through the registry), a VOC year folder, or a boxes CSV
with its image folder. :meth:`DataSource.split` reads one split (or several,
``"train,val"``) into a :class:`Split`: the checked records, the class names
and, on request, the :class:`~yolov2_lib.data.voc.DetectionDataset` that
serves them to a network. The ``yolov2`` command, the benchmarks and the
chapters all read their data through this module.

Example::

    from yolov2_lib.data.catalog import split
    test = split("bccd", "test")
    test.class_names                    # ['RBC', 'WBC', 'Platelets']
    dataset = test.dataset(input_size=416)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import YOLOv2Error
from .registry import fetch
from .voc import BCCD_CLASSES, VOC_CLASSES, DetectionDataset, ImageRecord, csv_class_names, read_boxes_csv, read_voc

__all__ = ["DataSource", "Split", "NAMED", "split", "split_names"]


@dataclass(frozen=True)
class _Named:
    """A registered dataset with boxes and images: where they lie inside its folder."""

    registry_name: str
    boxes_csv: str
    images: str
    class_names: tuple[str, ...]


#: The datasets a name is enough for: boxes and images both in the registry.
NAMED: dict[str, _Named] = {
    "bccd": _Named("bccd", "bccd_boxes.csv", "JPEGImages", tuple(BCCD_CLASSES)),
    "voc2007_demo": _Named("demo_images", "voc2007_demo/boxes.csv", "voc2007_demo", tuple(VOC_CLASSES)),
}


def split_names(text: str) -> list[str]:
    """The names of a split option: ``"train,val"`` is several splits read as one."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise YOLOv2Error(f"split {text!r}: an empty name in the comma-separated list.")
    return names


@dataclass
class Split:
    """One split of a dataset, read and checked.

    Attributes:
        name: the split as asked (``"train"``, ``"train,val"``; ``""`` for every image).
        records: one :class:`~yolov2_lib.data.voc.ImageRecord` per usable image.
        class_names: the classes, in the order of the label indices.
    """

    name: str
    records: list[ImageRecord]
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.records)

    def dataset(self, **kwargs: Any) -> DetectionDataset:
        """The :class:`~yolov2_lib.data.voc.DetectionDataset` of these records (``kwargs``:
        ``augment``, ``letterbox``, ``input_size``, ``seed`` ...)."""
        try:
            return DetectionDataset(self.records, self.class_names, **kwargs)
        except ValueError as exc:
            raise YOLOv2Error(f"split {self.name!r}: {exc}") from None


@dataclass(frozen=True)
class DataSource:
    """Where a dataset's boxes and images are.

    Attributes:
        kind: ``"csv"`` (a boxes CSV and an image folder) or ``"voc"`` (a VOC year folder).
        path: the CSV, or the VOC year folder.
        images: the image folder of a CSV.
        class_names: the classes when none are given (``None``: a CSV's sorted names, VOC's 20).
        image_ext: the images' extension.
    """

    kind: str
    path: Path
    images: Path | None = None
    class_names: tuple[str, ...] | None = None
    image_ext: str = ".jpg"
    label: str = field(default="", compare=False)

    @classmethod
    def named(cls, name: str) -> "DataSource":
        """A registered dataset (:data:`NAMED`), fetched through the registry if needed."""
        if name not in NAMED:
            raise YOLOv2Error(f"dataset {name!r}: only {', '.join(map(repr, NAMED))} have boxes and images in "
                              "the registry; give a VOC folder or a boxes CSV for your own data.")
        entry = NAMED[name]
        folder = fetch(entry.registry_name)
        return cls("csv", folder / entry.boxes_csv, folder / entry.images, entry.class_names, label=name)

    @classmethod
    def voc(cls, folder: str | Path, *, image_ext: str = ".jpg") -> "DataSource":
        """A VOC year folder (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/<split>.txt``)."""
        folder = Path(folder)
        if not (folder / "Annotations").is_dir():
            raise YOLOv2Error(f"{folder}: no Annotations folder there (expected a VOC year folder such as "
                              "VOCdevkit/VOC2007).")
        return cls("voc", folder, None, tuple(VOC_CLASSES), image_ext, label=str(folder))

    @classmethod
    def boxes_csv(cls, csv_path: str | Path, images: str | Path | None = None, *, image_ext: str = ".jpg",
                  images_required: bool = True) -> "DataSource":
        """A boxes CSV (``split,image_id,width,height,class,xmin,ymin,xmax,ymax[,difficult]``, 1-based
        pixels) and the folder of its images (default: the CSV's folder, when not required)."""
        csv_path = Path(csv_path)
        if not csv_path.is_file():
            raise YOLOv2Error(f"{csv_path} does not exist.")
        if images is None and images_required:
            raise YOLOv2Error(f"{csv_path}: a boxes CSV needs the folder of its images.")
        folder = Path(images) if images is not None else csv_path.parent
        if images_required and not folder.is_dir():
            raise YOLOv2Error(f"{folder} is not a folder (the images of {csv_path}).")
        return cls("csv", csv_path, folder, None, image_ext, label=str(csv_path))

    def split(self, name: str = "train", *, class_names: Sequence[str] | None = None,
              strict: bool = False) -> Split:
        """Read one split (``"train"``), several read as one (``"train,val"``), or, for a CSV,
        every image (``""``).

        Args:
            name: the split(s): a CSV's ``split`` column, a VOC image set.
            class_names: the classes (default: :attr:`class_names`, else a CSV's sorted names).
            strict: stop at the first problem instead of skipping it with a warning.

        Raises:
            YOLOv2Error: a problem with the files (naming file and line), or a named split without
                any image.
        """
        splits = split_names(name) if name else []
        try:
            names = list(class_names or self.class_names
                         or (csv_class_names(self.path) if self.kind == "csv" else VOC_CLASSES))
            if self.kind == "voc":
                records = [r for s in splits or ["trainval"]
                           for r in read_voc(self.path, s, class_names=names, image_ext=self.image_ext,
                                             strict=strict)]
            else:
                records = read_boxes_csv(self.path, self.images, splits=splits or None, class_names=names,
                                         image_ext=self.image_ext, strict=strict)
        except YOLOv2Error:
            raise
        except ValueError as exc:
            raise YOLOv2Error(str(exc)) from None
        found = {r.split for r in records}
        empty = [s for s in splits if s not in found]
        if len(splits) > 1 and empty:  # a typo in "train,vall" must not quietly train on one split
            raise YOLOv2Error(f"{self.path}: split(s) {', '.join(map(repr, empty))} of {name!r} have no images.")
        return Split(name, records, names)


def split(dataset: str, name: str = "train", *, class_names: Sequence[str] | None = None,
          strict: bool = False) -> Split:
    """One split of a registered dataset: ``split("bccd", "test")`` (see :meth:`DataSource.split`)."""
    return DataSource.named(dataset).split(name, class_names=class_names, strict=strict)
