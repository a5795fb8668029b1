"""Tests for yolov2_lib.anchors: IoU k-means as a scikit-learn estimator."""

from __future__ import annotations

import csv
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from yolov2_lib.anchors import (
    COCO_ANCHORS,
    VOC_ANCHORS,
    AnchorKMeans,
    euclidean_kmeans,
    iou_distance,
    mean_iou,
    to_grid_units,
)
from yolov2_lib.boxes import wh_iou

SETTINGS = settings(max_examples=20, deadline=None)
DATA = Path(os.environ.get("YOLOV2_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def random_shapes(seed: int, n: int = 300) -> np.ndarray:
    """Box shapes spread like real ones: log-normal sizes, varied aspect ratios."""
    rng = np.random.RandomState(seed)
    area = np.exp(rng.normal(-3.0, 1.0, n))
    aspect = np.exp(rng.normal(0.0, 0.5, n))
    return np.clip(np.stack([np.sqrt(area * aspect), np.sqrt(area / aspect)], axis=1), 1e-3, 1.0)


def lloyd_reference(X: np.ndarray, init: np.ndarray, center: str, max_iter: int = 300):
    """Plain Lloyd with the 1 - IoU distance, no bounds, no tricks (tol = 0)."""
    centers = init.astype(float).copy()
    previous = None
    for _ in range(max_iter):
        labels = iou_distance(X, centers).argmin(axis=1)
        if previous is not None and np.array_equal(labels, previous):
            break
        reduce = np.mean if center == "mean" else np.median
        centers = np.array([reduce(X[labels == j], axis=0) for j in range(len(centers))])
        previous = labels
    labels = iou_distance(X, centers).argmin(axis=1)
    return centers, labels


# ---------------------------------------------------------------- published priors


def test_published_priors():
    assert VOC_ANCHORS.shape == COCO_ANCHORS.shape == (5, 2)
    torch.testing.assert_close(VOC_ANCHORS[0], torch.tensor([1.3221, 1.73145]))
    torch.testing.assert_close(VOC_ANCHORS[4], torch.tensor([11.2364, 10.0071]))
    torch.testing.assert_close(COCO_ANCHORS[0], torch.tensor([0.57273, 0.677385]))
    torch.testing.assert_close(COCO_ANCHORS[4], torch.tensor([9.77052, 9.16828]))
    areas = VOC_ANCHORS.prod(1)
    assert bool((areas[1:] > areas[:-1]).all())


# ---------------------------------------------------------------- clustering


@pytest.mark.parametrize("center", ["mean", "median"])
@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_hand_made_clusters_recovered_exactly(center, init):
    shapes = np.array([[0.9, 0.3], [0.1, 0.2], [0.5, 0.5]])
    X = np.repeat(shapes, [5, 10, 20], axis=0)
    X = X[np.random.RandomState(0).permutation(len(X))]
    km = AnchorKMeans(n_clusters=3, init=init, center=center, random_state=0).fit(X)
    by_area = [[0.1, 0.2], [0.5, 0.5], [0.9, 0.3]]
    np.testing.assert_allclose(km.cluster_centers_, by_area, rtol=1e-12)  # a mean may round in the last bit
    np.testing.assert_allclose(km.cluster_centers_[km.labels_], X, rtol=1e-12)
    assert km.inertia_ == pytest.approx(0.0, abs=1e-12)
    assert km.score(X) == pytest.approx(1.0)


@pytest.mark.parametrize("center", ["mean", "median"])
@pytest.mark.parametrize("seed,k", [(0, 2), (1, 3), (2, 5)])
def test_equals_plain_lloyd_reference(center, seed, k):
    X = random_shapes(seed)
    init = X[np.random.RandomState(seed).choice(len(X), k, replace=False)]
    km = AnchorKMeans(n_clusters=k, init=init, center=center, tol=0.0).fit(X)
    centers, labels = lloyd_reference(X, init, center)
    order = np.argsort(centers.prod(1), kind="stable")
    np.testing.assert_allclose(km.cluster_centers_, centers[order], rtol=1e-10)
    rank = np.empty_like(order)
    rank[order] = np.arange(k)
    np.testing.assert_array_equal(km.labels_, rank[labels])


def test_median_centres_are_cluster_medians_and_differ_from_mean():
    X = random_shapes(3)
    med = AnchorKMeans(n_clusters=3, center="median", random_state=0).fit(X)
    for j in range(3):
        np.testing.assert_allclose(med.cluster_centers_[j], np.median(X[med.labels_ == j], axis=0))
    mean = AnchorKMeans(n_clusters=3, center="mean", random_state=0).fit(X)
    for j in range(3):
        np.testing.assert_allclose(mean.cluster_centers_[j], X[mean.labels_ == j].mean(axis=0))
    assert not np.allclose(med.cluster_centers_, mean.cluster_centers_)


@SETTINGS
@given(st.integers(0, 10_000), st.integers(1, 6), st.sampled_from(["mean", "median"]))
def test_fit_invariants(seed, k, center):
    X = random_shapes(seed, n=120)
    km = AnchorKMeans(n_clusters=k, n_init=2, center=center, random_state=seed).fit(X)
    areas = km.cluster_centers_.prod(1)
    assert bool((areas[1:] >= areas[:-1]).all())
    np.testing.assert_array_equal(km.labels_, km.predict(X))
    distances = km.transform(X)
    assert distances.shape == (len(X), k)
    assert km.inertia_ == pytest.approx(distances.min(axis=1).sum())
    assert km.score(X) == pytest.approx(mean_iou(X, km.cluster_centers_))
    assert 1 <= km.n_iter_ <= km.max_iter and len(km.n_iter_per_init_) == 2


def test_transform_is_one_minus_wh_iou():
    X = random_shapes(4, n=50)
    km = AnchorKMeans(n_clusters=4, random_state=0).fit(X)
    expected = 1 - wh_iou(torch.from_numpy(X), torch.from_numpy(km.cluster_centers_)).numpy()
    np.testing.assert_allclose(km.transform(X), expected)
    np.testing.assert_array_equal(km.fit_predict(X), km.labels_)
    np.testing.assert_allclose(km.fit_transform(X), km.transform(X))


def test_reproducible_with_random_state():
    X = random_shapes(5)
    a = AnchorKMeans(n_clusters=5, n_init=3, random_state=42).fit(X)
    b = AnchorKMeans(n_clusters=5, n_init=3, random_state=42).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    c = AnchorKMeans(n_clusters=5, n_init=1, init="random", random_state=1).fit(X)
    d = AnchorKMeans(n_clusters=5, n_init=1, init="random", random_state=2).fit(X)
    assert not np.array_equal(c.n_iter_per_init_, d.n_iter_per_init_) or not np.allclose(
        c.cluster_centers_, d.cluster_centers_)


def test_more_inits_never_worse():
    X = random_shapes(6)
    one = AnchorKMeans(n_clusters=5, n_init=1, random_state=0).fit(X)
    ten = AnchorKMeans(n_clusters=5, n_init=10, random_state=0).fit(X)
    assert ten.inertia_ <= one.inertia_ + 1e-12


def test_iou_kmeans_beats_euclidean_on_mixed_sizes():
    # Many small boxes, a few large ones: squared error spends its centres on the large boxes.
    X = random_shapes(7, n=1000)
    iou_centres = AnchorKMeans(n_clusters=5, n_init=3, random_state=0).fit(X).cluster_centers_
    sse_centres = euclidean_kmeans(X, n_clusters=5, n_init=3, random_state=0)
    assert sse_centres.shape == (5, 2)
    assert bool((np.diff(sse_centres.prod(1)) >= 0).all())
    assert mean_iou(X, iou_centres) > mean_iou(X, sse_centres) + 0.01  # 0.677 against 0.658


def test_float32_input_and_readonly_input():
    X = random_shapes(8).astype(np.float32)
    X.setflags(write=False)
    km = AnchorKMeans(n_clusters=3, random_state=0).fit(X)
    assert km.predict(X).shape == (len(X),)
    assert km.transform(X).dtype == np.float32


# ---------------------------------------------------------------- estimator conventions on valid data


def test_estimator_conventions_on_boxes():
    X = random_shapes(9)
    est = AnchorKMeans(n_clusters=3, n_init=2, random_state=0)
    params = est.get_params()
    with pytest.raises(NotFittedError):
        est.predict(X)
    assert est.fit(X) is est
    assert est.get_params() == params  # fit does not change parameters
    assert est.n_features_in_ == 2
    state = dict(est.__dict__)
    est.predict(X), est.transform(X), est.score(X)
    assert est.__dict__.keys() == state.keys()  # predicting sets nothing
    again = clone(est).fit(X)
    np.testing.assert_array_equal(again.cluster_centers_, est.cluster_centers_)  # idempotent
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict(X), est.predict(X))
    perm = np.random.RandomState(0).permutation(len(X))
    np.testing.assert_array_equal(est.predict(X[perm]), est.predict(X)[perm])  # order invariant
    np.testing.assert_array_equal(est.predict(X[:10]), est.predict(X)[:10])  # subset invariant
    with pytest.raises(ValueError, match="3 features"):
        est.predict(np.ones((3, 3)))


# Checks that generate data a box clusterer must reject: sklearn shifts data with
# ``X - X.min()`` for positive-only estimators (leaving a zero width), or uses
# 3 to 10 features, or negative blobs. Each is covered on valid boxes above.
_ZERO = "the positive_only shift X - X.min() leaves a zero width, and a box needs positive width and height"
_FEATURES = "uses X with more than 2 columns, but X holds (width, height) pairs"
EXPECTED_FAILED = {
    "check_clustering": "clusters standardised blobs with negative values; boxes have positive sizes",
    "check_dict_unchanged": _FEATURES,
    "check_dont_overwrite_parameters": _ZERO,
    "check_dtype_object": _FEATURES,
    "check_estimators_dtypes": _ZERO,
    "check_estimators_fit_returns_self": _ZERO,
    "check_estimators_nan_inf": _FEATURES,
    "check_estimators_overwrite_params": _ZERO,
    "check_estimators_pickle": _FEATURES,
    "check_f_contiguous_array_estimator": _FEATURES,
    "check_fit2d_predict1d": _FEATURES,
    "check_fit_check_is_fitted": _ZERO,
    "check_fit_idempotent": _ZERO,
    "check_fit_score_takes_y": _ZERO,
    "check_methods_sample_order_invariance": _FEATURES,
    "check_methods_subset_invariance": _FEATURES,
    "check_n_features_in": _ZERO,
    "check_n_features_in_after_fitting": _ZERO,
    "check_pipeline_consistency": _FEATURES,
    "check_readonly_memmap_input": _ZERO,
    "check_transformer_data_not_an_array": _FEATURES,
    "check_transformer_general": _FEATURES,
    "check_transformer_n_iter": _FEATURES,
}


@parametrize_with_checks(
    [AnchorKMeans(n_clusters=2, n_init=2, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "X, kwargs, match",
    [
        (np.empty((0, 2)), {}, "0 sample"),
        (np.ones((4, 2)), {"n_clusters": 2}, r"distinct boxes \(1\)"),
        (np.array([[0.1, 0.2], [0.3, 0.4]]), {"n_clusters": 3}, "n_samples=2"),
        (np.array([[0.1, 0.2], [-0.3, 0.4], [0.2, 0.2], [0.5, -1.0]]), {"n_clusters": 1}, r"rows \[1, 3\]"),
        (np.array([[0.1, 0.2], [0.3, 0.0], [0.2, 0.2]]), {"n_clusters": 1}, r"rows \[1\] have a zero"),
        (np.ones((5, 3)), {"n_clusters": 2}, r"\(n_boxes, 2\)"),
        (np.array([[0.1, np.nan], [0.2, 0.2]]), {"n_clusters": 1}, "NaN"),
        (np.ones((5, 2)), {"center": "mode"}, "center must be"),
        (np.ones((5, 2)), {"init": "best"}, "init must be"),
        (np.ones((5, 2)), {"n_clusters": 2, "init": np.ones((3, 2))}, r"shape \(n_clusters, 2\)"),
        (np.ones((5, 2)), {"n_clusters": 0}, "n_clusters must be"),
    ],
)
def test_clear_errors(X, kwargs, match):
    with pytest.raises(ValueError, match=match):
        AnchorKMeans(**kwargs).fit(X)


def test_one_dimensional_input_is_rejected():
    with pytest.raises(ValueError, match="2D array"):
        AnchorKMeans(n_clusters=1).fit(np.ones(4))


# ---------------------------------------------------------------- helpers


def test_mean_iou_hand_computed_numpy_and_torch():
    wh = np.array([[1.0, 1.0], [2.0, 2.0], [1.0, 3.0]])
    anchors = np.array([[1.0, 1.0], [2.0, 1.0]])
    # best IoUs: 1, 2/4 = 0.5 (with 2x1), 1/3 (either)
    assert mean_iou(wh, anchors) == pytest.approx((1 + 0.5 + 1 / 3) / 3)
    assert mean_iou(torch.from_numpy(wh), torch.from_numpy(anchors)) == pytest.approx((1 + 0.5 + 1 / 3) / 3)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        mean_iou(np.ones((3, 3)), anchors)


def test_to_grid_units():
    centres = np.array([[0.1, 0.2], [0.5, 1.0]])
    torch.testing.assert_close(to_grid_units(centres), torch.tensor([[1.3, 2.6], [6.5, 13.0]]))
    torch.testing.assert_close(to_grid_units(torch.tensor(centres), (19, 10)),
                               torch.tensor([[1.9, 2.0], [9.5, 10.0]]))


# ---------------------------------------------------------------- real data


def test_voc_boxes_iou_kmeans_beats_euclidean():
    path = DATA / "voc_boxes.csv"
    if not path.exists():
        pytest.skip(f"{path} not found (set YOLOV2_DATA)")
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if r["split"] != "test" and r["year"] == "2007" and r["difficult"] == "0"]
    wh = np.array([[(int(r["xmax"]) - int(r["xmin"]) + 1) / int(r["width"]),
                    (int(r["ymax"]) - int(r["ymin"]) + 1) / int(r["height"])] for r in rows])
    assert len(wh) == 12608  # the official VOC 2007 trainval non-difficult count
    km = AnchorKMeans(n_clusters=5, n_init=3, random_state=0).fit(wh)
    sse = euclidean_kmeans(wh, n_clusters=5, n_init=3, random_state=0)
    assert 0.55 < km.score(wh) < 0.70
    assert km.score(wh) > mean_iou(wh, sse)


# ---------------------------------------------------------------- the public steps, and labelling anchors (chapter 6)

from yolov2_lib.anchors import hard_negatives, iou_distance, label_by_iou, nearest_two  # noqa: E402


def test_nearest_two_is_the_argmin_and_the_second_smallest_distance():
    rng = np.random.default_rng(0)
    wh = rng.uniform(0.05, 1, size=(300, 2))
    centers = rng.uniform(0.05, 1, size=(4, 2))
    labels, nearest, second = nearest_two(np.ascontiguousarray(wh[:, 0]), np.ascontiguousarray(wh[:, 1]), centers)
    d = np.sort(iou_distance(wh, centers), axis=1)
    np.testing.assert_array_equal(labels, iou_distance(wh, centers).argmin(1))
    np.testing.assert_allclose(nearest, d[:, 0])
    np.testing.assert_allclose(second, d[:, 1])


def test_update_centers_is_the_mean_or_the_median_of_each_cluster():
    X = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.9], [0.2, 0.2]])
    labels = np.array([0, 0, 1, 0])
    sums, counts = np.array([[0.6, 0.8], [0.5, 0.9], [0, 0]]), np.array([3, 1, 0])
    centers = np.full((3, 2), 0.7)
    mean = AnchorKMeans(3).update_centers(X, labels, sums, counts, centers)
    np.testing.assert_allclose(mean, [[0.2, 0.8 / 3], [0.5, 0.9], [0.7, 0.7]])
    median = AnchorKMeans(3, center="median").update_centers(X, labels, sums, counts, centers)
    np.testing.assert_allclose(median, [[0.2, 0.2], [0.5, 0.9], [0.7, 0.7]])


def test_label_by_iou_rpn_and_ssd_rules():
    iou = torch.tensor([[0.80, 0.00], [0.50, 0.10], [0.20, 0.40], [0.10, 0.05], [0.00, 0.00]])
    rpn = label_by_iou(iou, 0.7, 0.3)  # 0.8 positive; 0.4 is object 1's best anchor; 0.5 ignored
    assert rpn.tolist() == [1, -1, 1, 0, 0]
    assert label_by_iou(iou, 0.7, 0.3, best_match=False).tolist() == [1, -1, -1, 0, 0]
    ssd = label_by_iou(iou, 0.5)  # no ignored band
    assert ssd.tolist() == [1, 1, 1, 0, 0]
    assert label_by_iou(torch.zeros(3, 0), 0.5).tolist() == [0, 0, 0]  # an image without objects
    with pytest.raises(ValueError, match="negative"):
        label_by_iou(iou, 0.3, 0.7)
    with pytest.raises(ValueError, match="shape"):
        label_by_iou(torch.zeros(3), 0.5)


def test_hard_negatives_keep_three_per_positive_of_highest_loss():
    labels = torch.tensor([1, 0, 0, 0, 0, 0, -1, 0])
    loss = torch.tensor([0.0, 0.1, 0.9, 0.5, 0.7, 0.2, 5.0, 0.8])
    out = hard_negatives(labels, loss)
    assert out.tolist() == [1, -1, 0, -1, 0, -1, -1, 0]  # the 3 hardest: 0.9, 0.8, 0.7
    assert hard_negatives(labels, loss, ratio=10).tolist() == labels.tolist()
    assert (hard_negatives(torch.zeros(4, dtype=torch.long), torch.ones(4)) == -1).all()  # no positive
    with pytest.raises(ValueError):
        hard_negatives(labels, loss[:3])


# ---------------------------------------------------------------- k-means from given centres (chapter 3's editor)


def test_init_array_is_one_run_from_those_centres():
    X = random_shapes(4)
    fitted = AnchorKMeans(n_clusters=4, n_init=3, random_state=0).fit(X).cluster_centers_
    again = AnchorKMeans(n_clusters=4, init=fitted[::-1], n_init=7, random_state=1).fit(X)
    assert len(again.n_iter_per_init_) == 1  # n_init is ignored: one run, no seeding
    np.testing.assert_allclose(again.cluster_centers_, fitted, rtol=1e-12)  # a fixed point stays put
    start = np.array([[0.05, 0.1], [0.1, 0.05], [0.2, 0.3], [0.4, 0.4]])
    a = AnchorKMeans(n_clusters=4, init=start, random_state=0).fit(X)
    b = AnchorKMeans(n_clusters=4, init=start, random_state=99).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    with pytest.raises(ValueError, match=r"init array must have shape \(n_clusters, 2\) = \(4, 2\), got \(3, 2\)"):
        AnchorKMeans(n_clusters=4, init=start[:3]).fit(X)
    with pytest.raises(ValueError, match="init array must hold positive finite widths and heights"):
        AnchorKMeans(n_clusters=4, init=-start).fit(X)


def test_an_empty_cluster_restarts_at_the_box_farthest_from_its_centre():
    X = np.repeat([[0.1, 0.1], [0.2, 0.2], [0.5, 0.5]], [3, 3, 1], axis=0)
    needle = np.array([[0.15, 0.15], [0.01, 0.9]])  # the needle is no box's best match
    assert (iou_distance(X, needle).argmin(axis=1) == 0).all()
    one = AnchorKMeans(n_clusters=2, init=needle, max_iter=1).fit(X)
    # centre 0: the mean of all 7 boxes; the needle: the 0.5 x 0.5 box, the farthest from centre 0
    np.testing.assert_allclose(one.cluster_centers_, [[0.2, 0.2], [0.5, 0.5]])
    done = AnchorKMeans(n_clusters=2, init=needle).fit(X)
    np.testing.assert_allclose(done.cluster_centers_, [[0.15, 0.15], [0.5, 0.5]])
    assert done.labels_.tolist() == [0] * 6 + [1]


def test_kmeans_anchors_from_a_split_of_records():
    from types import SimpleNamespace

    from yolov2_lib.anchors import kmeans_anchors
    from yolov2_lib.data.boxstats import record_sizes

    records = [SimpleNamespace(width=100, height=50, boxes=torch.tensor([[0.0, 0.0, 10.0, 5.0], [0.0, 0.0, 50.0, 40.0]])),
               SimpleNamespace(width=200, height=100, boxes=torch.tensor([[10.0, 10.0, 30.0, 20.0], [5.0, 5.0, 5.0, 9.0]]))]
    wh = record_sizes(records)
    assert wh.dtype == torch.float32
    torch.testing.assert_close(wh, torch.tensor([[0.1, 0.1], [0.5, 0.8], [0.1, 0.1], [0.0, 0.04]]))
    found = kmeans_anchors(wh.double(), k=2, grid=10, seed=0)
    assert found.num_boxes == 3  # the box without width is left out
    assert sum(sorted(found.anchors.tolist()), []) == pytest.approx([1.0, 1.0, 5.0, 8.0], abs=1e-5)
    assert found.mean_iou == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 4 boxes, the split has 3"):
        kmeans_anchors(wh, k=4)
