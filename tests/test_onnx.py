"""yolov2_lib.onnx_export: the network as an ONNX file, run by ONNX Runtime against PyTorch.

Each export costs about 13 s on two cores (torch.export and the ONNX translation), whatever the
network's size, so the module exports four times in all: the shipped BCCD detector (through the
command line), a full-width VOC network, a small network in float16 and a space-to-depth mutant.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from nettools import randomize_bn  # noqa: E402
from yolov2_lib import cli, onnx_export, pretrained  # noqa: E402
from yolov2_lib.model import YOLOv2  # noqa: E402
from yolov2_lib.onnx_export import compare_onnx, export_onnx, onnx_metadata, run_onnx  # noqa: E402
from yolov2_lib.passthrough import Reorg, darknet_reorg, space_to_depth  # noqa: E402

TOLERANCE = 1e-4  # absolute, on the raw head (issue 16)
SIZES = (320, 416, 608)


@pytest.fixture(scope="module")
def bccd():
    return pretrained.load("bccd")


@pytest.fixture(scope="module")
def bccd_onnx(tmp_path_factory):
    """The shipped detector exported by `yolov2 export bccd model.onnx`."""
    path = tmp_path_factory.mktemp("onnx") / "bccd.onnx"
    assert cli.main(["export", "bccd", str(path)]) == 0
    return path


def _initializers(path):
    return {i.name: i for i in onnx.load(str(path)).graph.initializer}


def test_bccd_head_matches_pytorch_at_every_size_and_batch(bccd, bccd_onnx):
    diffs = compare_onnx(bccd.model, bccd_onnx, [(s, b) for s in SIZES for b in (1, 3)])
    assert set(diffs) == {(s, b) for s in SIZES for b in (1, 3)}
    assert max(diffs.values()) <= TOLERANCE, diffs


def test_bccd_file_is_small_float16_and_describes_the_detector(bccd, bccd_onnx):
    inits = _initializers(bccd_onnx)
    convs = [i for name, i in inits.items() if name.endswith("conv.weight__fp16")]
    assert len(convs) == 23  # every convolution's weights (18 backbone, 2 neck, passthrough, merge, head)
    assert all(i.data_type == TensorProto.FLOAT16 for i in convs)
    assert bccd_onnx.stat().st_size < 7e6  # 3.17 M parameters at 2 bytes, plus the graph
    meta = onnx_metadata(bccd_onnx)
    assert meta["class_names"] == bccd.class_names == ["RBC", "WBC", "Platelets"]
    assert meta["anchors"] == bccd.model.anchors.tolist()
    assert meta["letterbox"] is bccd.letterbox is False
    assert (meta["stride"], meta["input_size"], meta["reorg"]) == (32, 416, "darknet")


def test_batch_and_input_sides_are_symbolic_in_the_graph(bccd, bccd_onnx):
    graph = onnx.load(str(bccd_onnx)).graph
    (images,), (raw,) = graph.input, graph.output
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    batch, channels, rows, cols = dims(images)
    assert channels == 3 and all(isinstance(d, str) for d in (batch, rows, cols)), dims(images)
    assert isinstance(dims(raw)[0], str) and dims(raw)[1] == 5 * (5 + 3)
    # a shape no export example had: unequal sides, batch 2
    x = torch.rand(2, 3, 320, 448, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = bccd.model(x).numpy()
    got = run_onnx(bccd_onnx, x)
    assert got.shape == (2, 40, 10, 14)
    assert np.abs(got - expected).max() <= TOLERANCE


def test_reorg_is_exported_in_darknet_order_not_as_space_to_depth(bccd_onnx):
    nodes = onnx.load(str(bccd_onnx)).graph.node
    ops = {n.op_type for n in nodes}
    assert not ops & {"SpaceToDepth", "DepthToSpace"}
    perms = [list(helper.get_attribute_value(a)) for n in nodes if n.op_type == "Transpose" for a in n.attribute]
    assert [0, 3, 5, 1, 2, 4] in perms  # darknet_reorg's (B, dy, dx, c', H, W) gather


def test_onnx_space_to_depth_is_neither_darknet_reorg_nor_pixel_unshuffle():
    """Why an exporter that maps the passthrough to SpaceToDepth breaks the detector."""
    ort = pytest.importorskip("onnxruntime")
    node = helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=2)
    graph = helper.make_graph([node], "s2d", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 4, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 2, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = torch.arange(8 * 4 * 6, dtype=torch.float32).reshape(1, 8, 4, 6)
    onnx_s2d = torch.from_numpy(session.run(None, {"x": x.numpy()})[0])
    assert not torch.equal(onnx_s2d, darknet_reorg(x))
    assert not torch.equal(onnx_s2d, space_to_depth(x))
    assert torch.equal(onnx_s2d.flatten().sort().values, x.flatten())  # all three: permutations of the input


def test_export_check_fails_when_the_reorg_becomes_a_plain_space_to_depth(bccd, tmp_path, monkeypatch):
    """The export's own comparison catches a passthrough exported in space-to-depth order."""
    exportable = onnx_export._exportable

    def space_to_depth_instead(model):
        net = exportable(model)
        for m in net.modules():
            if isinstance(m, Reorg):
                m.order = "space_to_depth"
        return net

    monkeypatch.setattr(onnx_export, "_exportable", space_to_depth_instead)
    with pytest.raises(RuntimeError, match="not faithful"):
        export_onnx(bccd.model, tmp_path / "wrong.onnx", class_names=bccd.class_names)
    wrong = compare_onnx(bccd.model, tmp_path / "wrong.onnx", [(416, 1)])[(416, 1)]
    assert wrong > 100 * TOLERANCE, wrong


def test_full_width_voc_network_matches_pytorch(tmp_path):
    """darknet's yolov2-voc network (50.66 M parameters), random weights rounded to float16 as an export
    stores them, the head scaled to trained magnitudes. Batch 3 only at 320: at 608 it is 190 GFLOP per
    runtime, half a minute of two cores, and the batch dimension is the same symbol at every size."""
    torch.manual_seed(0)
    model = randomize_bn(YOLOv2(num_classes=20)).eval()
    with torch.no_grad():
        model.head.conv.weight.mul_(64)
        for p in model.parameters():
            p.copy_(p.half().float())
        assert model(torch.rand(1, 3, 320, 320)).abs().max() > 1  # differences are not hidden by tiny values
    done = export_onnx(model, tmp_path / "voc.onnx", check=[(320, 1), (416, 1), (608, 1), (320, 3)])
    assert max(done.max_abs_diff.values()) <= TOLERANCE, done.max_abs_diff
    assert done.fp16_tensors == 24 and done.num_bytes < 0.55 * 4 * 50.66e6  # float16: about half of float32
    assert onnx_metadata(done.path)["class_names"] == [f"class{i}" for i in range(20)]


def test_weight_modes_on_float32_weights(tmp_path):
    torch.manual_seed(0)
    model = randomize_bn(YOLOv2(num_classes=3, width=0.125)).eval()
    done = export_onnx(model, tmp_path / "half.onnx", weights="fp16", check=[(64, 1)])
    inits = _initializers(done.path)
    big = [i for i in inits.values() if int(np.prod(i.dims)) > 1]
    assert done.fp32_tensors == 0 and all(i.data_type == TensorProto.FLOAT16 for i in big)
    assert done.max_abs_diff[(64, 1)] > 0  # rounding float32 weights moves the head (no error in "fp16")
    values = numpy_helper.to_array(inits["head.conv.weight__fp16"])
    np.testing.assert_array_equal(values, model.head.conv.weight.detach().numpy().astype(np.float16))


def test_auto_weights_keep_float32_where_float16_would_round():
    exact = np.array([0.5, 1.25, -3.0], dtype=np.float32)
    assert onnx_export._exact_in_fp16(exact)
    assert not onnx_export._exact_in_fp16(exact + np.float32(1e-4))
    assert not onnx_export._exact_in_fp16(np.array([1e6], dtype=np.float32))  # beyond float16's range


def test_bad_arguments_are_explained(bccd, tmp_path):
    with pytest.raises(ValueError, match="weights must be"):
        export_onnx(bccd.model, tmp_path / "x.onnx", weights="int8")
    with pytest.raises(ValueError, match="class_names has 2 names"):
        export_onnx(bccd.model, tmp_path / "x.onnx", class_names=["a", "b"])
    with pytest.raises(ValueError, match="multiple of 32"):
        export_onnx(bccd.model, tmp_path / "x.onnx", input_size=400)
    with pytest.raises(ValueError, match="YOLOv2-like"):
        export_onnx(torch.nn.Linear(2, 2), tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="no 'yolov2_lib' metadata"):
        path = tmp_path / "plain.onnx"
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
        onnx.save(helper.make_model(graph), str(path))
        onnx_metadata(path)
    assert not (tmp_path / "x.onnx").exists()


def test_cli_export_onnx_refuses_to_overwrite_and_explains(bccd_onnx, tmp_path, capsys):
    assert cli.main(["export", "bccd", str(bccd_onnx)]) == 2
    assert "--force" in capsys.readouterr().err
    assert cli.main(["export", "bccd", str(tmp_path / "m.onnx"), "--result", "map=1"]) == 2
    assert cli.main(["export", "nosuchdetector", str(tmp_path / "m.onnx")]) == 2
    assert "shipped" in capsys.readouterr().err
    assert cli.main(["export", str(pretrained.path("bccd")), str(tmp_path / "m.bin")]) == 2
    assert ".onnx" in capsys.readouterr().err


def test_browser_bundle_ships_detector_images_and_settings_and_reuses_them(tmp_path, monkeypatch, shared_data):
    """What the page of chapter 10 loads (the export itself is tested above: replaced here by a stub)."""
    exported = []

    def stub(model, path, **kw):
        path.write_bytes(b"onnx")
        exported.append(path)
        meta = {"class_names": kw["class_names"], "num_classes": 3, "anchors": model.anchors.tolist(),
                "stride": 32, "letterbox": kw["letterbox"]}
        return onnx_export.OnnxExport(path, 4, 24, 44, {(416, 1): 1e-6}, meta)

    monkeypatch.setattr(onnx_export, "export_onnx", stub)
    manifest = onnx_export.browser_bundle(tmp_path / "live", num_images=2)
    assert manifest["format"] == onnx_export.BROWSER_FORMAT and manifest["model"] == "bccd.onnx"
    assert (manifest["input_size"], manifest["conf_threshold"], manifest["nms_threshold"]) == (416, 0.25, 0.45)
    assert manifest["class_names"] == ["RBC", "WBC", "Platelets"] and manifest["letterbox"] is False
    names = [im["file"] for im in manifest["images"]]
    assert names == sorted(names) and len(names) == 2
    for im in manifest["images"]:  # copied byte for byte: the page and the library decode the same file
        source = shared_data / "bccd" / "JPEGImages" / im["file"]
        assert (tmp_path / "live" / im["file"]).read_bytes() == source.read_bytes()
        assert (im["width"], im["height"]) == (640, 480) and sum(im["annotated"].values()) > 0
    assert onnx_export.browser_bundle(tmp_path / "live", num_images=2) == manifest
    assert len(exported) == 1  # unchanged stamp: nothing exported again
    onnx_export.browser_bundle(tmp_path / "live", num_images=3)
    assert len(exported) == 2
