"""Anchor boxes (priors) by k-means with the distance ``d = 1 - IoU``.

Chapter 3 (anchor boxes by k-means) explains this module.

YOLO v2 clusters the ``(width, height)`` of the training boxes, ignoring
their positions. With the Euclidean distance, large boxes make larger errors
than small ones, so the clusters drift towards the large boxes; the paper
uses ``d(box, centroid) = 1 - IoU(box, centroid)``, where the IoU compares
shapes only (both boxes share a centre, see :func:`yolov2_lib.boxes.wh_iou`).
Table 1 of the paper: mean IoU on VOC 2007 is 58.7 for Euclidean k-means
with k = 5, 61.0 for IoU k-means with k = 5 and 67.2 with k = 9.

:class:`AnchorKMeans` is a scikit-learn estimator. Compare it with
scikit-learn's own Euclidean ``KMeans`` on the same ``(w, h)`` array, either
directly or through :func:`euclidean_kmeans`::

    wh = ...                                       # (n, 2) widths, heights in [0, 1]
    iou_km = AnchorKMeans(n_clusters=5, random_state=0).fit(wh)
    sse_centres = euclidean_kmeans(wh, n_clusters=5, random_state=0)
    mean_iou(wh, iou_km.cluster_centers_), mean_iou(wh, sse_centres)

Centres found on boxes normalised by image size become grid-cell anchors by
multiplying by the grid size (13 for a 416 input): :func:`to_grid_units`.

Chapter 6 (the loss) compares how detectors label their anchors for training:
:func:`label_by_iou` (the RPN of Faster R-CNN, SSD) and :func:`hard_negatives`
(SSD), against YOLO v2's rule in ``yolov2_lib.loss``.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import Tensor

from .boxes import wh_iou
from .errors import YOLOv2Error

__all__ = [
    "VOC_ANCHORS",
    "COCO_ANCHORS",
    "AnchorKMeans",
    "iou_distance",
    "mean_iou",
    "euclidean_kmeans",
    "to_grid_units",
    "kmeans_anchors",
    "nearest_two",
    "label_by_iou",
    "hard_negatives",
]

#: Darknet's VOC priors (``yolov2-voc.cfg``), (w, h) in grid cells of the 13x13 grid.
VOC_ANCHORS: Tensor = torch.tensor(
    [[1.3221, 1.73145], [3.19275, 4.00944], [5.05587, 8.09892], [9.47112, 4.84053], [11.2364, 10.0071]]
)
#: Darknet's COCO priors (``yolov2.cfg``), (w, h) in grid cells.
COCO_ANCHORS: Tensor = torch.tensor(
    [[0.57273, 0.677385], [1.87446, 2.06253], [3.33843, 5.47434], [7.88282, 3.52778], [9.77052, 9.16828]]
)


# ---------------------------------------------------------------- distances (numpy)


def iou_distance(wh: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """``1 - IoU`` between shapes, in numpy (the fast path of the estimator).

    Args:
        wh: (n, 2) widths and heights.
        centers: (k, 2) widths and heights.

    Returns:
        (n, k) distances in [0, 1].
    """
    w, h = wh[:, 0:1], wh[:, 1:2]  # (n, 1)
    inter = np.minimum(w, centers[:, 0]) * np.minimum(h, centers[:, 1])  # (n, k)
    union = w * h + centers[:, 0] * centers[:, 1] - inter
    return 1.0 - inter / union


def nearest_two(w: np.ndarray, h: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Assignment step of k-means: nearest centre of every box, its distance and the second-nearest distance.

    Chapter 3's Going deeper page (inside the k-means) shows it.

    One pass per centre over contiguous (n,) columns: for small k this is several
    times faster than an (n, k) matrix followed by ``argmin`` along its short axis.

    Args:
        w, h: (n,) widths and heights (contiguous).
        centers: (k, 2).

    Returns:
        (n,) labels, (n,) nearest distance, (n,) second-nearest distance (1 when k = 1).
    """
    area = w * h
    best = np.full(w.shape, -1.0)  # best IoU so far
    second = np.zeros(w.shape)  # second-best IoU so far
    labels = np.zeros(w.shape, dtype=np.intp)
    for j, (cw, ch) in enumerate(centers):
        inter = np.minimum(w, cw)
        inter *= np.minimum(h, ch)
        iou = inter / (area + cw * ch - inter)
        labels[iou > best] = j
        np.maximum(second, np.minimum(iou, best), out=second)
        np.maximum(best, iou, out=best)
    return labels, 1.0 - best, 1.0 - second


def _describe_rows(rows: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"rows [{shown}]{more}"


# ---------------------------------------------------------------- the estimator


class AnchorKMeans(ClusterMixin, TransformerMixin, BaseEstimator):
    """K-means on box shapes with the distance ``1 - IoU`` (YOLO v2's anchors).

    Lloyd's algorithm: assign every box to the centre of highest shape IoU, then
    move each centre to the mean (or the median) width and height of its boxes.
    Neither update minimises ``sum(1 - IoU)`` exactly (the median usually gets
    closer); the mean is the classic k-means update. The best of
    ``n_init`` seeded runs (lowest inertia) is kept.

    Args:
        n_clusters: k, the number of anchors.
        n_init: number of seeded runs; the one of lowest inertia is kept.
        max_iter: most Lloyd iterations per run.
        tol: stop a run when the squared centre shift is at most
            ``tol * mean(variance of X's columns)`` (or when no label changes).
        init: ``"k-means++"`` (seeding adapted to the IoU distance: a new centre is
            drawn with probability proportional to a box's current ``1 - IoU``,
            greedily among ``2 + log(k)`` trials as in scikit-learn), ``"random"``
            (k distinct boxes) or an array of shape (k, 2) of initial centres (then
            a single run, whatever ``n_init`` says).
        center: ``"mean"`` or ``"median"`` centre update.
        random_state: int seed, ``numpy.random.RandomState`` or None, as in scikit-learn.

    Attributes:
        cluster_centers_: (k, 2) centres (w, h), sorted by increasing area.
        labels_: (n,) index of each training box's centre (in the sorted order).
        inertia_: sum over training boxes of ``1 - IoU`` to their centre.
        n_iter_: Lloyd iterations of the kept run.
        n_iter_per_init_: (n_init,) Lloyd iterations of every run.
        n_features_in_: always 2.

    ``score(X)`` is the mean best IoU of the boxes of ``X`` with the centres
    (higher is better, 1 at most), the number Table 1 of the paper reports.
    ``transform(X)`` gives the (n, k) distances ``1 - IoU`` to every centre.
    """

    def __init__(
        self,
        n_clusters: int = 5,
        *,
        n_init: int = 10,
        max_iter: int = 300,
        tol: float = 1e-6,
        init: str | np.ndarray = "k-means++",
        center: str = "mean",
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.center = center
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        return tags

    # ------------------------------------------------------------ validation

    def _check_params(self) -> None:
        for name, minimum in (("n_clusters", 1), ("n_init", 1), ("max_iter", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
                raise YOLOv2Error(f"{name} must be an integer >= {minimum}, got {value!r}.")
        if not isinstance(self.tol, numbers.Real) or self.tol < 0:
            raise YOLOv2Error(f"tol must be a number >= 0, got {self.tol!r}.")
        if self.center not in ("mean", "median"):
            raise YOLOv2Error(f"center must be 'mean' or 'median', got {self.center!r}.")
        if isinstance(self.init, str):
            if self.init not in ("k-means++", "random"):
                raise YOLOv2Error(f"init must be 'k-means++', 'random' or an array, got {self.init!r}.")
        else:
            init = np.asarray(self.init)
            if init.shape != (self.n_clusters, 2):
                raise YOLOv2Error(
                    f"init array must have shape (n_clusters, 2) = ({self.n_clusters}, 2), got {init.shape}."
                )
            if not np.all(np.isfinite(init)) or np.any(init <= 0):
                raise YOLOv2Error(f"init array must hold positive finite widths and heights, got {init.tolist()}.")

    def _validate_X(self, X, *, reset: bool) -> np.ndarray:
        X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32], ensure_2d=True,
                          ensure_min_samples=1, ensure_min_features=1)
        negative = np.flatnonzero((X < 0).any(axis=1))
        if negative.size:
            raise YOLOv2Error(
                f"Negative values in data: widths and heights must be positive; "
                f"{_describe_rows(negative)} are not."
            )
        if reset and len(X) < self.n_clusters:
            raise YOLOv2Error(f"n_clusters={self.n_clusters} needs at least as many boxes; got n_samples={len(X)}.")
        if X.shape[1] != 2:
            raise YOLOv2Error(
                f"Expected X of shape (n_boxes, 2) holding (width, height), got shape {X.shape}: "
                f"n_samples={X.shape[0]}, n_features={X.shape[1]}."
            )
        zero = np.flatnonzero((X == 0).any(axis=1))
        if zero.size:
            raise YOLOv2Error(
                f"Zero values in data: widths and heights must be positive; "
                f"{_describe_rows(zero)} have a zero width or height."
            )
        return X

    # ------------------------------------------------------------ fitting

    def _init_centers(self, X: np.ndarray, distinct: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        k = self.n_clusters
        if not isinstance(self.init, str):
            return np.array(self.init, dtype=X.dtype)
        if self.init == "random":
            return distinct[rng.choice(len(distinct), size=k, replace=False)].copy()
        # k-means++ with 1 - IoU: draw a box with probability proportional to its
        # current cost (distance to the nearest centre chosen so far); keep the best
        # of a few draws, greedily, as scikit-learn does.
        n = len(X)
        w, h = np.ascontiguousarray(X[:, 0]), np.ascontiguousarray(X[:, 1])
        n_trials = 2 + int(np.log(k))
        centers = np.empty((k, 2), dtype=X.dtype)
        centers[0] = X[rng.randint(n)]
        closest = nearest_two(w, h, centers[:1])[1]  # (n,)
        for c in range(1, k):
            cumulative = np.cumsum(closest)
            draws = rng.uniform(size=n_trials) * cumulative[-1]
            candidates = np.minimum(np.searchsorted(cumulative, draws, side="right"), n - 1)
            trials = [np.minimum(closest, nearest_two(w, h, X[i : i + 1])[1]) for i in candidates]
            best = int(np.argmin([t.sum() for t in trials]))
            centers[c] = X[candidates[best]]
            closest = trials[best]
        return centers

    def update_centers(self, X: np.ndarray, labels: np.ndarray, sums: np.ndarray, counts: np.ndarray,
                      centers: np.ndarray) -> np.ndarray:
        """Update step of k-means: the mean (from running sums) or median of each non-empty cluster.

        Chapter 3's Going deeper page (inside the k-means) shows it.

        Args:
            X: (n, 2) the boxes.
            labels: (n,) the cluster of each box.
            sums: (k, 2) sums of the boxes of each cluster (used by the mean).
            counts: (k,) boxes per cluster.
            centers: (k, 2) the current centres (kept for empty clusters).

        Returns:
            (k, 2) the new centres.
        """
        new = centers.copy()
        filled = np.flatnonzero(counts)
        if self.center == "mean":
            new[filled] = sums[filled] / counts[filled, None]
        else:
            for j in filled:
                new[j] = np.median(X[labels == j], axis=0)
        return new

    def _single_run(self, X: np.ndarray, distinct: np.ndarray, rng: np.random.RandomState,
                    tol: float) -> tuple[np.ndarray, np.ndarray, float, int]:
        """One seeded run of Lloyd's algorithm; returns centres, labels, inertia, iterations.

        ``1 - IoU`` between two centred rectangles is the Jaccard distance of two
        sets, a metric, so the triangle inequality bounds how much a box's
        distances can change when the centres move: its margin (second-nearest
        minus nearest distance) shrinks by at most twice the largest centre move.
        A box is looked at again only once the accumulated moves could have used up
        its margin. The result is that of plain Lloyd; late iterations, where the
        centres barely move, touch only the few boxes near a boundary.
        """
        k, n = self.n_clusters, len(X)
        w, h = np.ascontiguousarray(X[:, 0]), np.ascontiguousarray(X[:, 1])
        centers = self._init_centers(X, distinct, rng)
        labels, nearest, second = nearest_two(w, h, centers)
        drift = 0.0  # twice the largest centre move, summed over iterations
        deadline = second - nearest - 1e-12  # (n,) look at a box again once drift reaches this
        counts = np.bincount(labels, minlength=k)
        sums = np.stack([np.bincount(labels, weights=c, minlength=k) for c in (w, h)], axis=1)  # (k, 2)
        n_iter = 0
        for n_iter in range(1, self.max_iter + 1):
            new = self.update_centers(X, labels, sums, counts, centers)
            empty = np.flatnonzero(counts == 0)
            if empty.size:
                # An empty cluster restarts at the boxes farthest from their centres.
                own = iou_distance(X, centers)[np.arange(n), labels]
                new[empty] = X[np.argsort(own)[::-1][: empty.size]]
            moved = iou_distance(new, centers).diagonal()  # (k,) how far each centre moved
            shift = float(((new - centers) ** 2).sum())
            centers = new
            drift += 2.0 * float(moved.max())
            check = np.flatnonzero(deadline <= drift)  # boxes whose label may have changed
            changed = 0
            if check.size:
                new_labels, nearest, second = nearest_two(w[check], h[check], centers)
                moving = new_labels != labels[check]
                changed = int(np.count_nonzero(moving))
                if changed:
                    who, old, to = check[moving], labels[check][moving], new_labels[moving]
                    counts += np.bincount(to, minlength=k) - np.bincount(old, minlength=k)
                    for d, c in enumerate((w, h)):
                        sums[:, d] += np.bincount(to, weights=c[who], minlength=k)
                        sums[:, d] -= np.bincount(old, weights=c[who], minlength=k)
                    labels[check] = new_labels
                deadline[check] = drift + second - nearest - 1e-12
            if changed == 0 and empty.size == 0:
                break  # strict convergence: no box changed cluster, the centres are final
            if shift <= tol:
                break
        labels, nearest, _ = nearest_two(w, h, centers)
        return centers, labels, float(nearest.sum()), n_iter

    def fit(self, X, y=None) -> "AnchorKMeans":
        """Cluster the box shapes of ``X``.

        Args:
            X: (n, 2) positive widths and heights (any consistent unit).
            y: ignored.

        Returns:
            self, fitted.
        """
        self._check_params()
        X = self._validate_X(X, reset=True)
        order = np.lexsort((X[:, 1], X[:, 0]))
        sorted_X = X[order]
        new_row = np.concatenate(([True], np.any(sorted_X[1:] != sorted_X[:-1], axis=1)))
        distinct = sorted_X[new_row]
        if self.n_clusters > len(distinct):
            raise YOLOv2Error(
                f"n_clusters={self.n_clusters} must be <= the number of distinct boxes "
                f"({len(distinct)}); got n_samples={len(X)}."
            )
        rng = check_random_state(self.random_state)
        tol = self.tol * float(np.mean(np.var(X, axis=0)))
        n_init = self.n_init if isinstance(self.init, str) else 1
        best = None
        iters = []
        for _ in range(n_init):
            run = self._single_run(X, distinct, rng, tol)
            iters.append(run[3])
            if best is None or run[2] < best[2]:
                best = run
        centers, labels, inertia, n_iter = best
        by_area = np.argsort(centers[:, 0] * centers[:, 1], kind="stable")
        rank = np.empty_like(by_area)
        rank[by_area] = np.arange(len(by_area))
        self.cluster_centers_ = centers[by_area]
        self.labels_ = rank[labels]
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        self.n_iter_per_init_ = np.array(iters)
        return self

    # ------------------------------------------------------------ using a fit

    def transform(self, X) -> np.ndarray:
        """Distances ``1 - IoU`` from every box to every centre.

        Args:
            X: (n, 2) positive widths and heights.

        Returns:
            (n, k) distances in [0, 1].
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return iou_distance(X, self.cluster_centers_.astype(X.dtype))

    def predict(self, X) -> np.ndarray:
        """Index of the centre of highest shape IoU for every box.

        Args:
            X: (n, 2) positive widths and heights.

        Returns:
            (n,) int labels into ``cluster_centers_``.
        """
        return self.transform(X).argmin(axis=1)

    def score(self, X, y=None) -> float:
        """Mean over boxes of the best IoU with any centre (higher is better).

        Args:
            X: (n, 2) positive widths and heights.
            y: ignored.

        Returns:
            Mean best IoU in [0, 1]: the "Avg IoU" of the paper's Table 1.
        """
        return float(1.0 - self.transform(X).min(axis=1).mean())


# ---------------------------------------------------------------- helpers


def mean_iou(wh: Tensor | np.ndarray, anchors: Tensor | np.ndarray) -> float:
    """Mean over boxes of the best shape IoU with any anchor.

    Args:
        wh: (n, 2) widths and heights of the boxes.
        anchors: (k, 2) widths and heights, in the same unit as ``wh``.

    Returns:
        The mean best IoU, a float in [0, 1].
    """
    wh_t = wh if isinstance(wh, Tensor) else torch.as_tensor(np.asarray(wh, dtype=np.float64))
    anchors_t = anchors if isinstance(anchors, Tensor) else torch.as_tensor(np.asarray(anchors, dtype=np.float64))
    if wh_t.dim() != 2 or wh_t.shape[1] != 2 or wh_t.shape[0] == 0:
        raise YOLOv2Error(f"Expected wh of shape (n, 2) with n >= 1, got {tuple(wh_t.shape)}.")
    if anchors_t.dim() != 2 or anchors_t.shape[1] != 2 or anchors_t.shape[0] == 0:
        raise YOLOv2Error(f"Expected anchors of shape (k, 2) with k >= 1, got {tuple(anchors_t.shape)}.")
    dtype = torch.promote_types(wh_t.dtype, anchors_t.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float64
    iou = wh_iou(wh_t.to(dtype), anchors_t.to(dtype))  # (n, k)
    return float(iou.max(dim=1).values.mean())


def euclidean_kmeans(wh: np.ndarray | Tensor, n_clusters: int = 5, *, n_init: int = 10,
                     random_state: int | None = None) -> np.ndarray:
    """Plain Euclidean (sum of squared errors) k-means on ``(w, h)``, by scikit-learn.

    The baseline of the paper's Table 1 ("Cluster SSE"): its centres favour large
    boxes, whose errors are larger in absolute terms.

    Args:
        wh: (n, 2) widths and heights.
        n_clusters: k.
        n_init: seeded runs of scikit-learn's ``KMeans``.
        random_state: seed.

    Returns:
        (k, 2) centres sorted by increasing area.
    """
    from sklearn.cluster import KMeans

    X = wh.detach().cpu().numpy() if isinstance(wh, Tensor) else np.asarray(wh, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise YOLOv2Error(f"Expected wh of shape (n, 2), got {X.shape}.")
    centers = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=random_state).fit(X).cluster_centers_
    return centers[np.argsort(centers[:, 0] * centers[:, 1], kind="stable")]


def to_grid_units(centers: np.ndarray | Tensor, grid_size: int | tuple[int, int] = 13) -> Tensor:
    """Convert shapes normalised by image size to anchors in grid-cell units.

    Args:
        centers: (k, 2) widths and heights as fractions of the image.
        grid_size: cells per side, or (W, H) cells (13 for a 416 input).

    Returns:
        (k, 2) float32 tensor: ``(w * W, h * H)``.
    """
    gw, gh = (grid_size, grid_size) if isinstance(grid_size, int) else grid_size
    c = centers.detach().clone() if isinstance(centers, Tensor) else torch.as_tensor(np.asarray(centers))
    return (c * c.new_tensor([gw, gh])).float()


# ---------------------------------------------------------------- labelling anchors for training (chapter 6)


class KMeansAnchors(NamedTuple):
    """What :func:`kmeans_anchors` found: the anchors in grid cells, their fit, and the boxes used."""

    anchors: Tensor
    mean_iou: float
    num_boxes: int


def kmeans_anchors(wh: np.ndarray | Tensor, k: int = 5, grid: int = 13, seed: int = 0) -> KMeansAnchors:
    """Anchors for a detector by IoU k-means on a dataset's box shapes (the paper's recipe).

    Args:
        wh: (n, 2) box widths and heights as fractions of their image (e.g.
            :func:`~yolov2_lib.data.boxstats.record_sizes`); its dtype is kept.
            Boxes without area are left out.
        k: the number of anchors.
        grid: cells per side of the output grid (13 for a 416 input).
        seed: k-means' seed.

    Returns:
        :class:`KMeansAnchors`: ``anchors`` (k, 2) in grid cells, the boxes' ``mean_iou``
        with their closest centre, and ``num_boxes``.

    Raises:
        YOLOv2Error: fewer than ``k`` boxes with an area.
    """
    X = wh.detach().cpu().numpy() if isinstance(wh, Tensor) else np.asarray(wh)
    X = X[(X > 0).all(axis=1)]
    if len(X) < k:
        raise YOLOv2Error(f"k-means needs at least {k} boxes, the split has {len(X)}.")
    fit = AnchorKMeans(n_clusters=k, random_state=seed).fit(X)
    return KMeansAnchors(to_grid_units(fit.cluster_centers_, grid), mean_iou(X, fit.cluster_centers_), len(X))


def label_by_iou(iou: Tensor, positive: float, negative: float | None = None, *, best_match: bool = True) -> Tensor:
    """Label anchors positive, negative or ignored from their IoU with the objects.

    The rule of Faster R-CNN's region proposal network (``positive=0.7``,
    ``negative=0.3``) and of SSD (``positive=0.5``, no ignored band). An anchor is
    positive when its best IoU with an object is at least ``positive``, or, with
    ``best_match``, when it is the anchor of highest IoU for some object (so every
    object gets one); negative when it is not positive and its best IoU is below
    ``negative``; ignored otherwise. Chapter 6 (the loss) compares it with YOLO v2's rule.

    Args:
        iou: (N, M) IoU of N anchor boxes with M objects.
        positive: IoU from which an anchor is positive.
        negative: IoU below which it is negative (default ``positive``: nothing is ignored).
        best_match: also make each object's best anchor positive (when that IoU is above 0).

    Returns:
        (N,) int64: 1 positive, 0 negative, -1 ignored.
    """
    if not isinstance(iou, Tensor) or iou.dim() != 2:
        shape = tuple(iou.shape) if isinstance(iou, Tensor) else type(iou).__name__
        raise YOLOv2Error(f"Expected iou of shape (N anchors, M objects), got {shape}.")
    negative = positive if negative is None else negative
    if not 0 <= negative <= positive <= 1:
        raise YOLOv2Error(f"Expected 0 <= negative <= positive <= 1, got negative={negative}, positive={positive}.")
    n, m = iou.shape
    best = iou.amax(dim=1) if m else iou.new_zeros(n)  # (N,)
    labels = torch.full((n,), -1, dtype=torch.int64, device=iou.device)
    labels[best < negative] = 0
    pos = best >= positive
    if best_match and m:
        top = iou.argmax(dim=0)  # (M,) each object's best anchor
        pos[top[iou[top, torch.arange(m, device=iou.device)] > 0]] = True
    labels[pos] = 1
    return labels


def hard_negatives(labels: Tensor, loss: Tensor, ratio: float = 3.0) -> Tensor:
    """SSD's hard negative mining: keep the negatives of highest loss, at most ``ratio`` per positive.

    The other negatives are ignored (they add nothing to the loss). Chapter 6 (the loss)
    compares it with YOLO v2, which keeps every negative with weight 1.

    Args:
        labels: (N,) 1 positive, 0 negative, -1 ignored (from :func:`label_by_iou`).
        loss: (N,) the confidence loss of each anchor as a negative (``-log P(background)``).
        ratio: negatives kept per positive (3).

    Returns:
        (N,) int64 labels where only the hardest negatives are still 0; ties go to the lower index.
    """
    if not isinstance(labels, Tensor) or not isinstance(loss, Tensor) or labels.shape != loss.shape or labels.dim() != 1:
        raise YOLOv2Error("Expected labels and loss of the same shape (N,).")
    if ratio < 0:
        raise YOLOv2Error(f"Expected ratio >= 0, got {ratio}.")
    out = labels.clone()
    negatives = (labels == 0).nonzero().flatten()
    keep = min(int(ratio * int((labels == 1).sum())), negatives.numel())
    order = torch.argsort(loss[negatives], descending=True, stable=True)
    out[negatives[order[keep:]]] = -1
    return out
