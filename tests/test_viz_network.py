"""``viz.draw_network``: the block diagram of YOLO v2, its labels read from the model."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from yolov2_lib import model, viz  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _draw(net, size=416, **kw):
    fig, ax = plt.subplots(figsize=(10, 9))
    stages = viz.draw_network(ax, net, size, **kw)
    texts = _texts(ax)
    n_boxes = len(ax.patches)
    plt.close(fig)
    return stages, texts, n_boxes


def test_full_network_labels_every_stage_with_its_shape():
    stages, texts, n_boxes = _draw(model.YOLOv2())
    assert n_boxes == len([s for s in stages if s.name != "max-pool"])  # pools are drawn on the arrows
    for shape in ("416 x 416 x 3", "26 x 26 x 512", "26 x 26 x 64", "13 x 13 x 256", "13 x 13 x 1280",
                  "13 x 13 x 125"):
        assert shape in texts
    assert "concat: 256 + 1024 channels" in texts
    assert "conv: 1x1 64" in texts and "layer 26" in texts and "layers 12-16" in texts
    assert sum(t.startswith("max-pool") for t in texts) == 5
    assert "passthrough" in texts


def test_labels_come_from_the_model():
    _, half, _ = _draw(model.YOLOv2(width=0.5, num_classes=3))
    assert "26 x 26 x 256" in half and "26 x 26 x 32" in half and "13 x 13 x 640" in half
    assert "13 x 13 x 40" in half and "conv 1x1, linear: 5 anchors x (5 + 3)" in half
    assert "26 x 26 x 512" not in half
    _, paper2016, _ = _draw(model.YOLOv2(passthrough_channels=None))
    assert "13 x 13 x 2048" in paper2016 and "13 x 13 x 3072" in paper2016
    assert not any(t.startswith("conv: 1x1 64") for t in paper2016)  # no squeeze in the 2016 variant
    _, small, _ = _draw(model.YOLOv2(width=0.25), 320)
    assert "320 x 320 x 3" in small and "10 x 10 x 125" in small


def test_highlight_greys_everything_but_the_passthrough():
    fig, ax = plt.subplots()
    viz.draw_network(ax, model.YOLOv2(width=0.25), highlight="passthrough")
    faces = [matplotlib.colors.to_hex(p.get_facecolor()) for p in ax.patches]
    assert faces.count("#eeeeee") == len(faces) - 4  # coloured: source, 1x1 conv, reorg, concat
    plt.close(fig)
    with pytest.raises(ValueError, match="highlight"):
        viz.draw_network(plt.gca(), model.YOLOv2(width=0.25), highlight="head")
    plt.close("all")


def test_network_stages_needs_a_yolov2():
    with pytest.raises(TypeError, match="YOLOv2"):
        model.network_stages(model.Darknet19(width=0.125))


def test_draw_prediction_grids_counts_boxes_per_map():
    from yolov2_lib import paper

    fig, ax = plt.subplots()
    total = viz.draw_prediction_grids(ax, paper.SSD300_MAPS, image_size=300, title="SSD300")
    texts = _texts(ax)
    assert total == 8732 and ax.get_title(loc="left") == "SSD300: 8,732 boxes per image"
    assert "38 x 38 cells of 8 px" in texts and "x 4 = 5,776 boxes" in texts and "conv11_2" in texts
    assert len(ax.patches) == 6
    segments = sum(len(c.get_segments()) for c in ax.collections)
    assert segments == sum(2 * (side - 1) for _, side, _ in paper.SSD300_MAPS)  # inner grid lines
    plt.close(fig)
    fig, ax = plt.subplots()
    assert viz.draw_prediction_grids(ax, [("head", 13, 5)], image_size=416) == 845
    assert "13 x 13 cells of 32 px" in _texts(ax)
    with pytest.raises(ValueError, match="at least one"):
        viz.draw_prediction_grids(ax, [], image_size=416)
    with pytest.raises(ValueError, match=">= 1"):
        viz.draw_prediction_grids(ax, [("bad", 0, 5)], image_size=416)
    plt.close(fig)


def test_plot_detector_comparison_one_curve_for_yolov2_and_a_point_per_other():
    from yolov2_lib import paper

    fig, ax = plt.subplots()
    viz.plot_detector_comparison(ax, paper.TABLE3_DETECTORS)
    curve = ax.lines[0]
    assert list(curve.get_xdata()) == [91, 81, 67, 59, 40] and list(curve.get_ydata())[-1] == 78.6
    others = [r for r in paper.TABLE3_DETECTORS if not r.detector.startswith("YOLOv2")]
    points = [line for line in ax.lines[1:] if line.get_marker() == "s"]
    assert [(p.get_xdata()[0], p.get_ydata()[0]) for p in points] == [(r.fps, r.map) for r in others]
    texts = _texts(ax)
    assert all(r.detector in texts for r in others) and "real time" in texts and "544" in texts
    assert ax.get_xscale() == "log"
    plt.close(fig)
    with pytest.raises(ValueError, match="fps"):
        viz.plot_detector_comparison(plt.gca(), paper.TABLE4_VOC2012)
    plt.close("all")
