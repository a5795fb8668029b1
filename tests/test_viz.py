"""The matplotlib drawings of ``yolov2_lib.viz`` (their look is checked in the built book)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from yolov2_lib import viz  # noqa: E402


# ---------------------------------------------------------------- chapter 6 (the loss)


def test_draw_assignment_puts_each_anchor_at_the_centre_of_its_cell():
    image = np.zeros((100, 200, 3), dtype=np.uint8)  # h = 100, w = 200; 4 x 4 cells of 50 x 25 pixels
    truth = [[0.6, 0.3, 0.2, 0.4], [0.1, 0.9, 0.1, 0.1]]
    fig, ax = plt.subplots()
    prior = viz.draw_assignment(ax, image, truth, [[1, 2], [3, 0]], [[1.0, 2.0], [0.5, 0.5]], 4, ["a", "b"])
    # cell (row 1, col 2): centre (125, 37.5); anchor 1 x 2 cells = 50 x 50 pixels
    np.testing.assert_allclose(prior, [[100, 12.5, 150, 62.5], [12.5, 81.25, 37.5, 93.75]])
    assert len(ax.patches) == 3 * 2  # per truth: its box, its cell, its anchor
    assert [t.get_text().strip() for t in ax.texts] == ["a", "b"]
    plt.close(fig)


def test_draw_assignment_rejects_mismatched_inputs():
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="cells"):
        viz.draw_assignment(ax, image, [[0.5, 0.5, 0.1, 0.1]], [[0, 0], [1, 1]], [[1, 1]], 2)
    with pytest.raises(ValueError, match="labels"):
        viz.draw_assignment(ax, image, [[0.5, 0.5, 0.1, 0.1]], [[0, 0]], [[1, 1]], 2, ["a", "b"])
    plt.close(fig)


def test_draw_cell_maps_one_panel_per_map_each_on_its_own_scale():
    image = np.zeros((30, 40, 3), dtype=np.uint8)
    maps = {"small": torch.full((3, 4), 0.01), "large": np.arange(12.0).reshape(3, 4) + 5, "zero": np.zeros((3, 4))}
    fig = viz.draw_cell_maps(image, maps, boxes=[[0, 0, 10, 10]], ncols=2)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["small", "large", "zero"]
    assert len(fig.axes) == 4 + 3  # a 2 x 2 grid (one left empty) and a colour bar per map
    climits = [ax.images[-1].get_clim() for ax in panels]
    assert climits[1] == (5.0, 16.0)  # from the map's minimum to its maximum
    assert all(high > low for low, high in climits)  # uniform maps still get a valid scale
    plt.close(fig)


def test_draw_cell_maps_rejects_bad_maps():
    image = np.zeros((30, 40, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="at least one"):
        viz.draw_cell_maps(image, {})
    with pytest.raises(ValueError, match="'flat'.*\\(H, W\\)"):
        viz.draw_cell_maps(image, {"flat": np.zeros(5)})
    with pytest.raises(ValueError, match="'neg'.*non-negative"):
        viz.draw_cell_maps(image, {"neg": -np.ones((2, 2))})


# ---------------------------------------------------------------- chapter 4 (the output feature map)

from yolov2_lib import decode, layout  # noqa: E402
from yolov2_lib.anchors import VOC_ANCHORS  # noqa: E402


def _numbered_head(num_anchors: int = 5, num_classes: int = 20, H: int = 3, W: int = 4) -> torch.Tensor:
    """(A*(5+C), H, W) with raw[ch, r, c] = ch + 0.01 * (r * W + c), a different number everywhere."""
    C = layout.num_channels(num_anchors, num_classes)
    ch = torch.arange(C, dtype=torch.float32).view(C, 1, 1)
    cell = torch.arange(H * W, dtype=torch.float32).view(1, H, W)
    return ch + 0.01 * cell


def _square_number(ax, col: int, row: int) -> str:
    """The channel number written in square (row, col) of a draw_channel_grid drawing."""
    found = [t.get_text() for t in ax.texts if t.get_position() == (col + 0.5, row + 0.3)]
    assert len(found) == 1
    return found[0]


def test_channel_labels_follow_darknet_order():
    labels = viz.channel_labels(5, 20)
    assert len(labels) == 5 and all(len(row) == 25 for row in labels)
    assert labels[2][:5] == ["x", "y", "w", "h", "obj"] and labels[2][5] == "0" and labels[2][24] == "19"
    with pytest.raises(ValueError, match="num_anchors"):
        viz.channel_labels(0, 20)


def test_draw_channel_grid_numbers_each_square_with_its_channel():
    fig, ax = plt.subplots()
    viz.draw_channel_grid(ax, viz.channel_labels(5, 20), highlight=2, row_names=[str(a) for a in range(5)])
    assert len(ax.patches) == 125
    assert _square_number(ax, 4, 2) == str(layout.channel_index(2, "objectness", 20)) == "54"
    assert _square_number(ax, 24, 4) == str(layout.channel_index(4, "class:19", 20)) == "124"
    alphas = np.array([p.get_alpha() for p in ax.patches]).reshape(5, 25)
    assert (alphas[2] == 1.0).all() and (alphas[[0, 1, 3, 4]] < 1.0).all()
    plt.close(fig)


def test_draw_channel_grid_writes_values_and_rejects_bad_input():
    fig, ax = plt.subplots()
    viz.draw_channel_grid(ax, [["x", "y", "3"]], values=[[1.25, -2.0, 7.0]], start=10)
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["10", "1.2", "11", "-2.0", "12", "7.0"]
    with pytest.raises(ValueError, match="equal length"):
        viz.draw_channel_grid(ax, [["x", "y"], ["x"]])
    with pytest.raises(ValueError, match="highlight rows"):
        viz.draw_channel_grid(ax, [["x"]], highlight=3)
    with pytest.raises(ValueError, match="values"):
        viz.draw_channel_grid(ax, [["x", "y"]], values=[[1.0]])
    with pytest.raises(ValueError, match="row_names"):
        viz.draw_channel_grid(ax, [["x", "y"]], row_names=["a", "b"])
    plt.close(fig)


def test_draw_head_tensor_puts_cell_r_c_on_picture_row_r_times_w_plus_c():
    raw = _numbered_head(2, 3, H=3, W=4)  # 16 channels
    fig, ax = plt.subplots()
    im = viz.draw_head_tensor(ax, raw, cell=(2, 1), channels=range(8, 16), block=8)
    pic = np.asarray(im.get_array())
    assert pic.shape == (12, 16)
    for ch, r, c in [(0, 0, 0), (5, 2, 1), (15, 1, 3)]:
        assert pic[r * 4 + c, ch] == pytest.approx(raw[ch, r, c].item())
    assert len(ax.patches) == 3  # the cell's row, the channels, their intersection
    with pytest.raises(ValueError, match="one image"):
        viz.draw_head_tensor(ax, raw[None])
    with pytest.raises(ValueError, match="outside"):
        viz.draw_head_tensor(ax, raw, cell=(3, 0))
    with pytest.raises(ValueError, match="channels"):
        viz.draw_head_tensor(ax, raw, channels=[16])
    plt.close(fig)


def test_overlay_grid_values_covers_the_image():
    fig, ax = plt.subplots()
    im = viz.overlay_grid_values(ax, torch.rand(13, 13), 500, 375)
    assert tuple(im.get_extent()) == (0, 500, 375, 0)
    with pytest.raises(ValueError, match="per-cell"):
        viz.overlay_grid_values(ax, np.zeros(5), 10, 10)
    plt.close(fig)


def test_describe_anchor_lists_channels_and_decoded_values():
    names = [f"class{k}" for k in range(3)]
    anchors = torch.tensor([[1.0, 2.0], [3.0, 1.5]])
    view = torch.zeros(1, 2, 3, 2, 8)  # (B, H, W, A, 5+C)
    view[0, 1, 2, 1] = torch.tensor([0.0, 2.0, 0.5, -1.0, 3.0, 1.0, 2.0, 3.0])
    rows = viz.describe_anchor(layout.raw_from_view(view)[0], anchors, 1, 2, 1, names)
    assert [r[0] for r in rows] == list(range(8, 16))
    assert [r[1] for r in rows] == ["x", "y", "w", "h", "objectness"] + names
    assert [r[2] for r in rows] == pytest.approx([0.0, 2.0, 0.5, -1.0, 3.0, 1.0, 2.0, 3.0])
    decoded = [r[3] for r in rows]
    assert decoded[0] == pytest.approx(0.5) and decoded[1] == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert decoded[2] == pytest.approx(3.0 * np.exp(0.5)) and decoded[3] == pytest.approx(1.5 * np.exp(-1.0))
    assert sum(decoded[5:]) == pytest.approx(1.0) and decoded[7] > decoded[6] > decoded[5]
    with pytest.raises(ValueError, match="class names"):
        viz.describe_anchor(layout.raw_from_view(view)[0], anchors, 1, 2, 1, names[:2])
    with pytest.raises(ValueError, match="outside"):
        viz.describe_anchor(layout.raw_from_view(view)[0], anchors, 2, 0, 0, names)


def test_draw_head_cell_shows_the_numbers_of_the_chosen_anchor():
    raw = _numbered_head(5, 20, H=13, W=13) * 0.01
    image = np.zeros((375, 500, 3), dtype=np.uint8)
    fig = viz.draw_head_cell(raw, VOC_ANCHORS, [str(k) for k in range(20)], image, 7, 8, 2)
    ax_img, ax_tensor, ax_bar = fig.axes
    heights = [bar.get_height() for bar in ax_bar.patches]
    np.testing.assert_allclose(heights, raw[50:75, 7, 8].numpy(), rtol=1e-6)
    plt.close(fig)


def test_draw_anchor_block_paints_the_anchors_objectness():
    raw = torch.zeros(125, 13, 13)
    raw[layout.channel_index(3, "objectness", 20), 4, 9] = 5.0
    image = np.zeros((375, 500, 3), dtype=np.uint8)
    fig = viz.draw_anchor_block(raw, VOC_ANCHORS, image, 3)
    overlay = np.asarray(fig.axes[2].images[-1].get_array())
    assert overlay.shape == (13, 13)
    assert overlay[4, 9] == pytest.approx(torch.sigmoid(torch.tensor(5.0)).item())
    assert overlay[0, 0] == pytest.approx(0.5)
    plt.close(fig)
    with pytest.raises(ValueError, match="anchor 5"):
        viz.draw_anchor_block(raw, VOC_ANCHORS, image, 5)


# ---------------------------------------------------------------- chapter 5 (direct location prediction)


def test_draw_location_keeps_yolo_centre_in_its_cell_but_not_the_rpn_one():
    image = np.zeros((130, 260, 3), dtype=np.uint8)  # 13 x 13 cells of 20 x 10 pixels
    fig, ax = plt.subplots()
    rest = viz.draw_location(ax, image, (0.0, 0.0, 0.0, 0.0), (7, 8), (2.0, 3.0))
    np.testing.assert_allclose(rest["yolo"], rest["prior"])
    np.testing.assert_allclose(rest["prior"], [8.5 * 20 - 20, 7.5 * 10 - 15, 8.5 * 20 + 20, 7.5 * 10 + 15])
    assert "rpn" not in rest
    far = viz.draw_location(ax, image, (6.0, -6.0, np.log(2.0), 0.0), (7, 8), (2.0, 3.0), unconstrained=True)
    cx, cy = (far["yolo"][0] + far["yolo"][2]) / 2, (far["yolo"][1] + far["yolo"][3]) / 2
    assert 8 * 20 < cx < 9 * 20 and 7 * 10 < cy < 8 * 10
    assert far["yolo"][2] - far["yolo"][0] == pytest.approx(2 * 2.0 * 20)
    # RPN-style: x = x_a + t_x * w_a = 8.5 + 6 * 2 cells, y = 7.5 - 6 * 3 cells
    np.testing.assert_allclose((far["rpn"][0] + far["rpn"][2]) / 2, (8.5 + 12) * 20)
    np.testing.assert_allclose((far["rpn"][1] + far["rpn"][3]) / 2, (7.5 - 18) * 10)
    with pytest.raises(ValueError, match="t_x"):
        viz.draw_location(ax, image, (0.0, 0.0), (0, 0), (1.0, 1.0))
    with pytest.raises(ValueError, match="outside"):
        viz.draw_location(ax, image, (0.0,) * 4, (13, 0), (1.0, 1.0))
    plt.close(fig)


def test_draw_location_matches_decode_boxes():
    image = np.zeros((375, 500, 3), dtype=np.uint8)
    t = torch.zeros(13, 13, 5, 4, dtype=torch.float64)
    t[3, 11, 4] = torch.tensor([0.3, -1.2, 0.4, -0.2], dtype=torch.float64)
    cx, cy, w, h = decode.decode_boxes(t, VOC_ANCHORS.double())[3, 11, 4].tolist()
    fig, ax = plt.subplots()
    out = viz.draw_location(ax, image, t[3, 11, 4].tolist(), (3, 11), VOC_ANCHORS[4].tolist())
    np.testing.assert_allclose(out["yolo"], [(cx - w / 2) * 500, (cy - h / 2) * 375,
                                             (cx + w / 2) * 500, (cy + h / 2) * 375], rtol=1e-6)
    plt.close(fig)


# ---------------------------------------------------------------- chapters 2 and 7 (Darknet-19, the passthrough)

from matplotlib import patches as _patches  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from yolov2_lib.model import Darknet19, LayerRow, layer_table  # noqa: E402
from yolov2_lib.passthrough import reorg_source  # noqa: E402


def test_layer_table_html_has_a_row_per_layer_and_the_totals():
    rows = layer_table(Darknet19(width=0.125, num_classes=10), 64)
    text = viz.layer_table_html(rows, caption="tiny <net>")
    assert text.count("<tr>") == 1 + len(rows) + 1  # header, layers, total
    assert "<caption>tiny &lt;net&gt;</caption>" in text
    total_p = sum(r.params for r in rows)
    assert f"{total_p:,}</th>" in text and f"total ({len(rows)} layers)" in text
    first = rows[0]
    assert f">{first.input_shape[0]}&times;64&times;64</td>" in text


def test_layer_table_html_joins_a_routes_shapes_and_rejects_no_rows():
    route = LayerRow(3, "route", None, None, None, ((256, 13, 13), (1024, 13, 13)), (1280, 13, 13), 0, 0)
    text = viz.layer_table_html([route])
    assert "256&times;13&times;13 + 1024&times;13&times;13" in text
    with pytest.raises(ValueError, match="at least one row"):
        viz.layer_table_html([])


def _labels(ax) -> list[str]:
    return [t.get_text() for t in ax.texts if t.get_text().count(",") == 2]


def test_draw_reorg_planes_labels_every_value_with_its_source():
    src = reorg_source(4, 4, 4, 2, "darknet")  # (3, 16, 2, 2)
    fig, ax = plt.subplots()
    viz.draw_reorg_planes(ax, src, ncols=4)
    assert len(ax.images) == 16  # one picture per output channel
    # each cell is coloured by the input channel its value comes from
    first = ax.images[1].get_array()  # output channel 1 holds input channel 1 only
    assert np.allclose(first[..., :3], np.array(to_rgb(viz.CLASS_COLORS[1]))[None, None])
    expected = [f"{c},{y},{x}" for c, y, x in src.permute(1, 2, 3, 0).reshape(-1, 3).tolist()]
    assert _labels(ax) == expected
    # darknet's channel 0 takes input rows 0 and 1 at columns 0 and 2: not one 2 x 2 block
    assert expected[:4] == ["0,0,0", "0,0,2", "0,1,0", "0,1,2"]
    plt.close(fig)


def test_draw_reorg_planes_highlights_and_rejects_bad_input():
    src = reorg_source(1, 2, 2, 1, "space_to_depth")  # the input itself
    fig, ax = plt.subplots()
    mask = torch.tensor([[[True, False], [False, False]]])
    viz.draw_reorg_planes(ax, src, highlight=mask, notes={(0, 0, 0): "-> 0,0"})
    assert [p.get_xy() for p in ax.patches] == [(0.0, 0.5)]  # one outline, on cell (0, 0)
    assert "-> 0,0" in [t.get_text() for t in ax.texts] and len(_labels(ax)) == 4
    alpha = ax.images[0].get_array()[..., 3]
    assert alpha[0, 0] > alpha[0, 1] == alpha[1, 1]
    ax.clear()
    viz.draw_reorg_planes(ax, src, highlight=mask, faded_labels=False)
    assert _labels(ax) == ["0,0,0"]
    with pytest.raises(ValueError, match="highlight of shape"):
        viz.draw_reorg_planes(ax, src, highlight=torch.ones(2, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(3, C, H, W\)"):
        viz.draw_reorg_planes(ax, src[0])
    plt.close(fig)


def test_draw_reorg_orders_shows_input_and_both_orders():
    fig = viz.draw_reorg_orders(4, 4, 4)
    assert len(fig.axes) == 3
    for ax, order in zip(fig.axes[1:], ("darknet", "space_to_depth")):
        src = reorg_source(4, 4, 4, 2, order)
        assert _labels(ax) == [f"{c},{y},{x}" for c, y, x in src.permute(1, 2, 3, 0).reshape(-1, 3).tolist()]
    assert _labels(fig.axes[0])[:5] == ["0,0,0", "0,0,1", "0,0,2", "0,0,3", "0,1,0"]
    plt.close(fig)


def test_draw_reorg_channel_marks_the_sources_of_one_output_channel():
    fig = viz.draw_reorg_channel(4, 4, 4, 9)
    inputs = fig.axes[0], fig.axes[2]  # darknet, space_to_depth
    for ax, order in zip(inputs, ("darknet", "space_to_depth")):
        assert len(ax.patches) == 4  # the outlined sources of a 2 x 2 output channel
        src = reorg_source(4, 4, 4, 2, order)[:, 9]
        notes = [t.get_text() for t in ax.texts if t.get_text().startswith("->")]
        assert sorted(notes) == ["-> 0,0", "-> 0,1", "-> 1,0", "-> 1,1"]
        assert set(src[0].flatten().tolist()) == ({1} if order == "darknet" else {2})
    plt.close(fig)
    with pytest.raises(ValueError, match="out_channel"):
        viz.draw_reorg_channel(4, 4, 4, 16)


def test_draw_reorg_cell_counts_input_positions():
    fig = viz.draw_reorg_cell(64, 26, 26, (0, 0))
    titles = [ax.get_title() for ax in fig.axes]
    assert "8 input positions" in titles[0] and "4 input positions" in titles[1]
    image = fig.axes[0].images[0].get_array()
    assert image.sum() == 256 and image[25, 0] > 0  # darknet's cell (0, 0) reads the last input row
    assert isinstance(fig.axes[1].patches[0], _patches.Rectangle)
    plt.close(fig)
    with pytest.raises(ValueError, match="outside"):
        viz.draw_reorg_cell(4, 4, 4, (2, 0))


# ---------------------------------------------------------------- chapter 3 (anchor boxes by k-means)


def test_draw_anchor_shapes_centres_every_rectangle_in_the_unit_square():
    fig, ax = plt.subplots()
    viz.draw_anchor_shapes(ax, torch.tensor([[0.2, 0.4], [0.8, 0.6]]), colors=["r", "b"], label="voc")
    rects = ax.patches
    assert len(rects) == 2
    for rect, (w, h) in zip(rects, [(0.2, 0.4), (0.8, 0.6)]):
        assert (rect.get_width(), rect.get_height()) == pytest.approx((w, h))
        assert (rect.get_x() + w / 2, rect.get_y() + h / 2) == pytest.approx((0.5, 0.5))
    assert [r.get_label() for r in rects][0] == "voc"
    with pytest.raises(ValueError, match="2 colours"):
        viz.draw_anchor_shapes(ax, [[0.1, 0.1], [0.2, 0.2]], colors=["r"])
    with pytest.raises(ValueError, match=r"\(k, 2\)"):
        viz.draw_anchor_shapes(ax, [[0.1, 0.0]])
    plt.close(fig)


def test_draw_clusters_titles_the_mean_iou_of_all_boxes_and_colours_by_anchor():
    wh = np.array([[0.1, 0.1], [0.1, 0.2], [0.5, 0.5], [0.6, 0.4]])
    centers = np.array([[0.1, 0.1], [0.5, 0.5]])
    # best IoUs by hand: 1, 0.5, 1, 0.2 / (0.24 + 0.25 - 0.2)
    fig = viz.draw_clusters(wh, centers, max_points=3)
    assert fig._suptitle.get_text() == f"k = 2: mean IoU {100 * (2.5 + 0.2 / 0.29) / 4:.1f} %" == "k = 2: mean IoU 79.7 %"
    left, right = fig.axes
    boxes = left.collections[0]
    assert len(boxes.get_offsets()) == 3  # a sample of max_points boxes
    assert len(right.patches) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="centers"):
        viz.draw_clusters(wh, np.zeros((0, 2)))


# ---------------------------------------------------------------- chapter 9: history and detections


def _history(n: int = 30) -> dict:
    it = list(range(1, n + 1))
    loss = [10.0 / i for i in it]
    train = {"iteration": it, "size": [320 + 32 * (i // 10 % 3) for i in it], "lr": [1e-3] * n,
             **{k: loss for k in ("loss", "coord", "obj", "noobj", "cls")}}
    return {"train": train, "val": {"iteration": [10, 20, 30], "map": [0.2, None, 0.6]}}


def test_plot_history_draws_each_term_and_the_map():
    fig = viz.plot_history(_history(), smooth=5)
    ax, _, ax_map = fig.axes[:3]
    assert [line.get_label() for line in ax.get_lines()] == ["loss", "coord", "obj", "noobj", "cls"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata()[:2], [10.0, 7.5])  # trailing mean
    assert ax_map.get_lines()[0].get_xydata().tolist() == [[10, 0.2], [30, 0.6]]  # None skipped
    plt.close(fig)
    with pytest.raises(ValueError, match="no training updates"):
        viz.plot_history({"train": {"iteration": []}, "val": {}})


def test_draw_detections_colours_right_wrong_and_missed():
    image = np.zeros((100, 100, 3))
    gt = np.array([[10, 10, 30, 30, 0, 0], [60, 60, 90, 90, 1, 0]], dtype=float)
    det = np.array([[10, 10, 30, 30, 0.9, 0], [0, 50, 20, 70, 0.8, 1]], dtype=float)
    fig, ax = plt.subplots()
    viz.draw_detections(ax, image, det, gt, ["a", "b"], title="x")
    assert ax.get_title() == "x: 1 right, 1 wrong, 1 missed"
    rects = [p for p in ax.patches]
    styles = [(tuple(p.get_xy()), p.get_linestyle()) for p in rects]
    assert ((60.0, 60.0), "--") in styles  # the missed object, dashed
    assert matplotlib.colors.to_hex(rects[-1].get_edgecolor()) == "#d00000"  # the false positive, red
    plt.close(fig)
    fig, ax = plt.subplots()
    viz.draw_detections(ax, image, det, None, ["a", "b"])
    assert [t.get_text().strip() for t in ax.texts] == ["a 0.90", "b 0.80"]
    plt.close(fig)


# ---------------------------------------------------------------- chapter 8 (multi-scale training)


def test_plot_speed_accuracy_puts_one_labelled_point_per_size():
    fig, ax = plt.subplots()
    line = viz.plot_speed_accuracy(ax, [288, 416, 544], [91.0, 67.0, 40.0], [69.0, 76.8, 78.6], label="paper")
    np.testing.assert_array_equal(line.get_xdata(), [91.0, 67.0, 40.0])
    np.testing.assert_array_equal(line.get_ydata(), [69.0, 76.8, 78.6])
    assert [t.get_text() for t in ax.texts] == ["288", "416", "544"]
    assert [t.xy for t in ax.texts] == [(91.0, 69.0), (67.0, 76.8), (40.0, 78.6)]
    assert line.get_label() == "paper" and ax.get_xlabel() == "images per second"
    plt.close(fig)


def _scale_record():
    return {"arms": {"single": [416], "multi": [320, 352, 384]}, "test_sizes": [288, 416, 608],
            "runs": [{"arm": "single", "seed": 0, "map": {"288": 0.5, "416": 0.8, "608": 0.4}},
                     {"arm": "single", "seed": 1, "map": {"288": 0.7, "416": 0.9, "608": 0.6}},
                     {"arm": "multi", "seed": 0, "map": {"288": 0.75, "416": 0.8, "608": 0.7}}]}


def test_plot_scale_experiment_draws_each_arms_mean_seeds_and_training_band():
    fig, ax = plt.subplots()
    lines = viz.plot_scale_experiment(ax, _scale_record(), colors=["C1", "C2"])
    np.testing.assert_allclose(lines["single"].get_ydata(), [0.6, 0.85, 0.5])
    np.testing.assert_allclose(lines["multi"].get_ydata(), [0.75, 0.8, 0.7])
    np.testing.assert_array_equal(lines["single"].get_xdata(), [288, 416, 608])
    assert lines["single"].get_label() == "single: trained at 416 (mean of 2)"
    assert lines["multi"].get_label() == "multi: trained at 320-384 (mean of 1)"
    dots = [ln for ln in ax.lines if ln.get_linestyle() == "None"]
    assert len(dots) == 3  # one row of dots per run
    bands = [(p.get_x(), p.get_x() + p.get_width()) for p in ax.patches]  # axvspan's rectangles
    assert bands == [(408, 424), (312, 392)]
    assert list(ax.get_xticks()) == [288, 416, 608]
    plt.close(fig)


def test_plot_scale_experiment_names_what_the_record_lacks():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="with 'runs'"):
        viz.plot_scale_experiment(ax, {"arms": {}, "test_sizes": []})
    record = _scale_record()
    del record["runs"][2]["map"]["608"]
    with pytest.raises(ValueError, match="A run of 'multi' has no mAP at test size 608"):
        viz.plot_scale_experiment(ax, record)
    record["runs"] = record["runs"][:2]
    with pytest.raises(ValueError, match="no run of the arm 'multi'"):
        viz.plot_scale_experiment(ax, record)
    plt.close(fig)


def test_plot_speed_accuracy_rejects_mismatched_lengths():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="2 sizes, 1 speeds and 2 accuracies"):
        viz.plot_speed_accuracy(ax, [288, 416], [91.0], [69.0, 76.8])
    with pytest.raises(ValueError, match="at least one"):
        viz.plot_speed_accuracy(ax, [], [], [])
    plt.close(fig)
