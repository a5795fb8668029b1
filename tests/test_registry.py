"""The dataset registry: found locally, checksum mismatch, download from a local
HTTP server (the real download code runs), offline and missing. No network."""

from __future__ import annotations

import functools
import hashlib
import io
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from yolov2_lib.data import build
from yolov2_lib.data import registry as reg


def _dataset(files: dict[str, bytes], base_url: str | None, root: str = "toy", derived=()) -> reg.Dataset:
    return reg.Dataset(
        name="toy", root=root, description="a toy dataset", licence="CC0", source="the tests",
        files=tuple(
            reg.DataFile(path=p, sha256=hashlib.sha256(b).hexdigest(),
                         url=None if p in derived else (f"{base_url}/{p}" if base_url else None),
                         derived="made by hand" if p in derived else None)
            for p, b in files.items()
        ),
    )


FILES = {"a.txt": b"alpha\n", "sub/b.csv": b"x,y\n1,2\n"}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """Serve a folder on 127.0.0.1; yields (folder, base url, request log)."""
    served = tmp_path / "served"
    served.mkdir()
    log: list[str] = []

    class Handler(_Quiet):
        def do_GET(self):
            log.append(self.path)
            super().do_GET()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}", log
    httpd.shutdown()


def write_files(root: Path, files: dict[str, bytes]) -> None:
    for p, b in files.items():
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        (root / p).write_bytes(b)


def test_found_in_the_local_data_folder(tmp_path):
    write_files(tmp_path / "data" / "toy", FILES)
    r = reg.Registry({"toy": _dataset(FILES, None)}, data_dir=tmp_path / "data",
                     cache_dir=tmp_path / "cache", offline=True)
    assert r.fetch("toy") == tmp_path / "data" / "toy"


def test_one_file_dataset_returns_the_file(tmp_path):
    files = {"only.csv": b"a\n"}
    write_files(tmp_path / "data", files)
    r = reg.Registry({"toy": _dataset(files, None, root="")}, data_dir=tmp_path / "data",
                     cache_dir=tmp_path / "cache", offline=True)
    assert r.fetch("toy") == tmp_path / "data" / "only.csv"


def test_checksum_mismatch_is_a_clear_error_and_the_file_is_kept(tmp_path):
    write_files(tmp_path / "data" / "toy", {**FILES, "a.txt": b"tampered\n"})
    r = reg.Registry({"toy": _dataset(FILES, None)}, data_dir=tmp_path / "data",
                     cache_dir=tmp_path / "cache", offline=True)
    with pytest.raises(reg.ChecksumError, match=r"a\.txt: SHA-256 is [0-9a-f]{64}, the registry expects"):
        r.fetch("toy")
    assert (tmp_path / "data" / "toy" / "a.txt").read_bytes() == b"tampered\n"  # nothing of the user's lost


def test_download_from_a_local_http_server_into_the_cache(tmp_path, server):
    served, url, log = server
    write_files(served, FILES)
    r = reg.Registry({"toy": _dataset(FILES, url)}, data_dir=None, cache_dir=tmp_path / "cache", offline=False)
    root = r.fetch("toy")
    assert root == tmp_path / "cache" / "toy"
    assert (root / "sub" / "b.csv").read_bytes() == FILES["sub/b.csv"]
    assert sorted(log) == ["/a.txt", "/sub/b.csv"]
    # second fetch: served from the cache, no new request
    assert r.fetch("toy") == root and len(log) == 2
    assert not list(root.rglob("*.part")), "temporary files left behind"
    assert not list(root.rglob(".*.tmp")), "temporary files left behind"


def test_download_with_a_wrong_checksum_is_discarded(tmp_path, server):
    served, url, _ = server
    write_files(served, {**FILES, "a.txt": b"not what was registered\n"})
    r = reg.Registry({"toy": _dataset(FILES, url)}, cache_dir=tmp_path / "cache", offline=False)
    with pytest.raises(reg.ChecksumError, match="the file was discarded"):
        r.fetch("toy")
    assert not (tmp_path / "cache" / "toy" / "a.txt").exists()
    assert not list((tmp_path / "cache").rglob("*.part"))
    assert not list((tmp_path / "cache").rglob(".*.tmp")), "temporary files left behind"


def test_offline_and_missing_says_what_and_how(tmp_path):
    r = reg.Registry({"toy": _dataset(FILES, "http://127.0.0.1:9")}, data_dir=tmp_path / "nothing",
                     cache_dir=tmp_path / "cache", offline=True)
    with pytest.raises(reg.DatasetUnavailableError) as exc:
        r.fetch("toy")
    msg = str(exc.value)
    assert "'toy'" in msg and "YOLOV2_OFFLINE" in msg and "YOLOV2_DATA" in msg and "a.txt" in msg


def test_unreachable_source_is_a_clear_error(tmp_path):
    # port 9 (discard) on loopback refuses the connection: the real download code fails fast
    r = reg.Registry({"toy": _dataset(FILES, "http://127.0.0.1:9")}, cache_dir=tmp_path / "cache",
                     offline=False, timeout=5)
    with pytest.raises(reg.DatasetUnavailableError, match=r"could not download http://127\.0\.0\.1:9/a\.txt"):
        r.fetch("toy")


def test_derived_file_explains_how_to_rebuild_it(tmp_path):
    r = reg.Registry({"toy": _dataset(FILES, "http://127.0.0.1:9", derived=("sub/b.csv",))},
                     cache_dir=tmp_path / "cache", offline=False)
    with pytest.raises(reg.DatasetUnavailableError, match="sub/b.csv: made by hand"):
        r.fetch("toy")


def test_unknown_dataset_lists_the_registered_names():
    with pytest.raises(reg.DatasetError, match="registered datasets: .*voc_boxes"):
        reg.default_registry().fetch("imagenet")


def test_every_registered_dataset_matches_the_shared_mirror(shared_data, tmp_path):
    """The manifest's sums are those of the real files (every file of every dataset)."""
    r = reg.Registry.from_json(data_dir=shared_data, cache_dir=tmp_path / "cache", offline=True)
    for name in r.names():
        path = r.fetch(name)
        assert path.exists(), name


def test_manifest_entries_are_complete():
    r = reg.default_registry()
    assert set(r.names()) == {"voc_boxes", "voc_box_sizes", "coco_val2017_boxes", "coco_val2017_box_sizes",
                              "darknet", "bccd", "demo_images"}
    for name in r.names():
        ds = r.dataset(name)
        assert ds.licence and ds.source and ds.description
        assert ds.shipping, f"{name}: the registry does not say why it ships or not"
        for f in ds.files:
            if f.shipped:
                assert (r.shipped_dir / f.shipped).is_file(), f"{name}/{f.path}: no {f.shipped} in the package"
            assert len(f.sha256) == 64
            assert (f.url or f.build or f.derived), f"{name}/{f.path}: neither a URL nor a recipe"
            if f.url:
                assert f.url.startswith("https://"), f.url
            if f.build:
                assert f.build.builder in build.BUILDERS and f.build.sources and f.build.licence
                assert f.content_sha256 and len(f.content_sha256) == 64 and f.rows
                assert f.content_groups and len(f.content_groups) == build.NUM_GROUPS
                for source in f.build.sources:  # plain http only where the published MD5 guards the bytes
                    assert source.url.startswith("https://") or source.md5, source.url
    derived = [f.path for n in r.names() for f in r.dataset(n).files if f.build]
    assert sorted(derived) == ["bccd_boxes.csv", "coco_val2017_boxes.csv", "voc2007_demo/boxes.csv", "voc_boxes.csv"]
    shipped = {f"{n}/{f.path}": f.shipped for n in r.names() for f in r.dataset(n).files if f.shipped}
    assert shipped == {
        "voc_box_sizes/voc_box_sizes.csv": "voc_box_sizes.csv.gz",
        "coco_val2017_box_sizes/coco_val2017_box_sizes.csv": "coco_val2017_box_sizes.csv.gz",
        "bccd/bccd_boxes.csv": "bccd_boxes.csv.gz",
        "demo_images/voc2007_demo/boxes.csv": "voc2007_demo_boxes.csv.gz",
    }


def test_a_file_changed_after_a_good_check_is_caught(tmp_path):
    """The in-process memo of sums must not hide a file rewritten since it was checked."""
    write_files(tmp_path / "data" / "toy", FILES)
    make = lambda: reg.Registry({"toy": _dataset(FILES, None)}, data_dir=tmp_path / "data",
                                cache_dir=tmp_path / "cache", offline=True)
    make().fetch("toy")
    (tmp_path / "data" / "toy" / "a.txt").write_bytes(b"ALPHA\n")  # same size, new content
    with pytest.raises(reg.ChecksumError, match=r"a\.txt"):
        make().fetch("toy")


# ---------------------------------------------------------------- derived files built from their sources
#
# The whole path of fetch: sources read through file:// URLs (the real download code, no
# network), the builder, the checks, the cache. The builders themselves: tests/test_build.py.

FIXTURES = Path(__file__).parent / "fixtures" / "bccd"


def _tar(path: Path, members: dict[str, bytes]) -> str:
    """Write a tar archive; returns its MD5."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return hashlib.md5(buf.getvalue()).hexdigest()


VOC_XML = (b"<annotation><size><width>500</width><height>375</height></size><object><name>cat</name>"
           b"<difficult>0</difficult><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax>"
           b"</bndbox></object></annotation>")  # fmt: skip
VOC_CSV = (b"split,year,image_id,width,height,class,xmin,ymin,xmax,ymax,difficult\r\n"
           b"test,2007,000001,500,375,cat,1,2,30,40,0\r\n")  # fmt: skip


def _derived(tmp_path: Path, *, sha256: bytes | str = VOC_CSV, content: bytes | str = VOC_CSV,
             md5: str | None = None, url: str | None = None) -> reg.Dataset:  # fmt: skip
    """A one-file dataset whose CSV is built from a VOC-like archive served from tmp_path."""
    archive = tmp_path / "served" / "VOCtest.tar"
    archive.parent.mkdir(exist_ok=True)
    real_md5 = _tar(archive, {"VOCdevkit/VOC2007/Annotations/000001.xml": VOC_XML,
                              "VOCdevkit/VOC2007/JPEGImages/000001.jpg": b"jpeg",
                              "VOCdevkit/VOC2007/ImageSets/Main/test.txt": b"000001\n"})  # fmt: skip
    expected = tmp_path / "expected.csv"
    expected.write_bytes(content if isinstance(content, bytes) else content.encode())
    digest = build.content_digest(expected)
    recipe = build.BuildRecipe("voc_boxes", (build.Source(url or archive.as_uri(), md5 or real_md5),),
                               "the toy VOC annotations", "research use")  # fmt: skip
    sha = hashlib.sha256(sha256).hexdigest() if isinstance(sha256, bytes) else sha256
    f = reg.DataFile("boxes.csv", sha, build=recipe, content_sha256=digest.sha256, rows=digest.rows,
                     content_groups=digest.groups)  # fmt: skip
    return reg.Dataset("toy", "toy", "toy boxes", "research use", "the tests", (f,))


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_derived_file_is_built_into_the_cache_and_accepted_by_its_sha256(tmp_path):
    r = reg.Registry({"toy": _derived(tmp_path)}, cache_dir=tmp_path / "cache", offline=False)
    path = r.fetch("toy")
    assert path == tmp_path / "cache" / "toy" / "boxes.csv" and path.read_bytes() == VOC_CSV
    assert _files(tmp_path / "cache") == ["toy/boxes.csv"], "scratch files left behind"
    (tmp_path / "served" / "VOCtest.tar").unlink()  # second fetch: from the cache, no source needed
    assert r.fetch("toy") == path


def test_same_rows_in_other_bytes_are_accepted_by_content(tmp_path, monkeypatch):
    registered_bytes = VOC_CSV.replace(b"\r\n", b"\n").replace(b",1,2,30,40,", b",1.0,2,30,40,")
    ds = _derived(tmp_path, sha256=registered_bytes, content=registered_bytes)
    r = reg.Registry({"toy": ds}, cache_dir=tmp_path / "cache", offline=False)
    path = r.fetch("toy")
    assert path.read_bytes() == VOC_CSV  # what the builder wrote, not the registered bytes
    monkeypatch.setattr(reg, "_VERIFIED", {})  # a new process: the cached file is checked again, by content
    assert reg.Registry({"toy": ds}, cache_dir=tmp_path / "cache", offline=True).fetch("toy") == path
    # a local copy (YOLOV2_DATA) with the same rows is accepted too; one with other rows is not
    (tmp_path / "data" / "toy").mkdir(parents=True)
    (tmp_path / "data" / "toy" / "boxes.csv").write_bytes(registered_bytes.replace(b"\n", b"\r\n"))
    local = reg.Registry({"toy": ds}, data_dir=tmp_path / "data", cache_dir=tmp_path / "none", offline=True)
    assert local.fetch("toy") == tmp_path / "data" / "toy" / "boxes.csv"
    (tmp_path / "data" / "toy" / "boxes.csv").write_bytes(VOC_CSV.replace(b",30,40,", b",31,40,"))
    with pytest.raises(reg.ChecksumError, match="its rows are not the registered ones"):
        local.fetch("toy")


def test_archive_with_a_wrong_md5_builds_nothing_and_leaves_nothing(tmp_path):
    r = reg.Registry({"toy": _derived(tmp_path, md5="0" * 32)}, cache_dir=tmp_path / "cache", offline=False)
    with pytest.raises(reg.ChecksumError) as exc:
        r.fetch("toy")
    msg = str(exc.value)
    assert "building toy/boxes.csv" in msg and "VOCtest.tar: MD5 is" in msg and "published sum is 0000" in msg
    assert "Nothing was built" in msg
    assert _files(tmp_path / "cache") == []


def test_built_file_with_other_rows_is_kept_aside_and_refused(tmp_path):
    other = VOC_CSV + b"test,2007,000002,500,375,dog,5,5,50,50,1\r\n"
    r = reg.Registry({"toy": _derived(tmp_path, sha256=other, content=other)}, cache_dir=tmp_path / "cache",
                     offline=False)  # fmt: skip
    with pytest.raises(reg.ContentMismatchError) as exc:
        r.fetch("toy")
    msg = str(exc.value)
    assert "toy/boxes.csv was built from the toy VOC annotations" in msg
    assert "1 data rows built, 2 registered" in msg and "groups of images differ" in msg
    assert "boxes.csv.unverified" in msg
    assert _files(tmp_path / "cache") == ["toy/boxes.csv.unverified"]
    assert (tmp_path / "cache" / "toy" / "boxes.csv.unverified").read_bytes() == VOC_CSV
    assert isinstance(exc.value, reg.ChecksumError)


def test_offline_says_what_would_be_built_from_where(tmp_path):
    r = reg.Registry({"toy": _derived(tmp_path)}, data_dir=tmp_path / "nothing", cache_dir=tmp_path / "cache",
                     offline=True)  # fmt: skip
    with pytest.raises(reg.DatasetUnavailableError) as exc:
        r.fetch("toy")
    msg = str(exc.value)
    assert "YOLOV2_OFFLINE" in msg and "YOLOV2_DATA" in msg
    assert "build boxes.csv from the toy VOC annotations" in msg and "VOCtest.tar" in msg
    assert _files(tmp_path / "cache") == []


def test_unreachable_source_of_a_derived_file_is_a_clear_error(tmp_path):
    gone = (tmp_path / "served" / "missing.tar").as_uri()
    r = reg.Registry({"toy": _derived(tmp_path, url=gone)}, cache_dir=tmp_path / "cache", offline=False)
    with pytest.raises(reg.DatasetUnavailableError, match=r"could not build toy/boxes.csv .*missing\.tar"):
        r.fetch("toy")
    assert _files(tmp_path / "cache") == []


def test_bccd_like_dataset_downloads_files_and_builds_its_csv(tmp_path):
    """Downloaded files first, then the CSV built from the real BCCD fixture annotations."""
    base = FIXTURES.as_uri()
    recipe = build.BuildRecipe(
        "bccd_boxes",
        (*(build.Source(f"{base}/ImageSets/Main/{s}.txt") for s in ("train", "val", "test")),
         build.Source(base + "/Annotations/{image_id}.xml")),
        "the BCCD fixtures", "MIT",
    )  # fmt: skip
    expected = tmp_path / "expected.csv"
    build.bccd_boxes_csv(FIXTURES / "Annotations", FIXTURES / "ImageSets" / "Main", expected)
    licence = (FIXTURES / "LICENSE").read_bytes()
    ds = reg.Dataset("bccd", "bccd", "toy", "MIT", "the tests", (
        reg.DataFile("LICENSE", hashlib.sha256(licence).hexdigest(), url=(FIXTURES / "LICENSE").as_uri()),
        reg.DataFile("bccd_boxes.csv", reg.sha256_file(expected), build=recipe),
    ))  # fmt: skip
    r = reg.Registry({"bccd": ds}, data_dir=tmp_path / "no-mirror", cache_dir=tmp_path / "cache", offline=False)
    assert r.status("bccd").location is None and "build bccd_boxes.csv from the BCCD fixtures" in r.status("bccd").plan
    root = r.fetch("bccd")
    assert _files(root) == ["LICENSE", "bccd_boxes.csv"]
    assert r.status("bccd").location == f"cache {root}"


def test_status_of_the_real_registry_with_the_mirror_and_without(shared_data, tmp_path):
    with_mirror = reg.Registry.from_json(data_dir=shared_data, cache_dir=tmp_path / "cache", offline=True)
    for name in with_mirror.names():
        if name.endswith("_box_sizes"):  # only in the package: copied into the cache, even offline
            status = with_mirror.status(name)
            assert status.location is None and status.plan.startswith("fetch would:\n  - copy "), status.plan
            assert "from the package (no download)" in status.plan
            continue
        assert with_mirror.status(name).location == f"YOLOV2_DATA {shared_data / with_mirror.dataset(name).root}"
    bare = reg.Registry.from_json(data_dir=tmp_path / "nothing", cache_dir=tmp_path / "cache", offline=True)
    plan = bare.status("voc_boxes").describe()
    assert plan.startswith("not local; downloads are off (YOLOV2_OFFLINE)")
    assert "build voc_boxes.csv from the Annotations/*.xml" in plan and "VOCtrainval_11-May-2012.tar" in plan
    demo = bare.status("demo_images").plan
    assert "download 13 file(s)" in demo and "copy voc2007_demo/boxes.csv from the package" in demo
    assert "VOCtest" not in demo  # the demo boxes ship: nothing is built


def test_partial_local_mirror_names_the_files_actually_missing(tmp_path):
    """One file deleted from a mirror of many: the error names that file, not the cache's whole list."""
    files = {f"img/{i:03d}.jpg": bytes([i]) * 10 for i in range(12)}
    write_files(tmp_path / "data" / "toy", files)
    (tmp_path / "data" / "toy" / "img" / "007.jpg").unlink()
    r = reg.Registry({"toy": _dataset(files, "http://127.0.0.1:9")}, data_dir=tmp_path / "data",
                     cache_dir=tmp_path / "cache", offline=True)
    with pytest.raises(reg.DatasetUnavailableError) as exc:
        r.fetch("toy")
    msg = str(exc.value)
    assert f"YOLOV2_DATA {tmp_path / 'data' / 'toy'} holds 11 of its 12 files; missing: img/007.jpg." in msg
    said = msg.split("fetch would")[0]  # what it says is missing (the plan after it fills the cache)
    assert "img/000.jpg" not in said and "is missing 12 file(s)" not in said
    assert "holds 11 of its 12 files; missing: img/007.jpg." in r.status("toy").describe()
    (tmp_path / "data" / "toy" / "img" / "008.jpg").unlink()
    with pytest.raises(reg.DatasetUnavailableError, match="missing: img/007.jpg, img/008.jpg."):
        r.fetch("toy")


# ---------------------------------------------------------------- files that ship with the package


def _shipped_dataset(tmp_path, content: bytes, *, url: str | None = None) -> tuple[reg.Dataset, Path]:
    """A one-file dataset whose file ships gzipped in ``tmp_path / "shipped"``."""
    import gzip

    shipped = tmp_path / "shipped"
    shipped.mkdir(exist_ok=True)
    (shipped / "t.csv.gz").write_bytes(gzip.compress(content))
    registered = hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    ds = reg.Dataset("toy", "toy", "a toy table", "CC0", "the tests",
                     (reg.DataFile("t.csv", registered, url=url, shipped="t.csv.gz"),), "ships: tiny")
    return ds, shipped


def test_a_shipped_file_is_copied_from_the_package_even_offline(tmp_path):
    ds, shipped = _shipped_dataset(tmp_path, b"a,b\n1,2\n", url="http://127.0.0.1:9/t.csv")
    r = reg.Registry({"toy": ds}, data_dir=tmp_path / "nothing", cache_dir=tmp_path / "cache", offline=True,
                     shipped_dir=shipped)
    assert "copy t.csv from the package (no download)" in r.status("toy").plan
    assert "downloads are off" not in r.status("toy").plan
    path = r.fetch("toy")
    assert path == tmp_path / "cache" / "toy" / "t.csv" and path.read_bytes() == b"a,b\n1,2\n"
    assert not list((tmp_path / "cache").rglob("*.part"))
    assert not list((tmp_path / "cache").rglob(".*.tmp")), "temporary files left behind"


def test_a_damaged_shipped_copy_is_refused(tmp_path):
    ds, shipped = _shipped_dataset(tmp_path, b"a,b\n1,3\n")
    r = reg.Registry({"toy": ds}, cache_dir=tmp_path / "cache", offline=True, shipped_dir=shipped)
    with pytest.raises(reg.ChecksumError, match="the package's copy .*t.csv.gz of toy/t.csv has SHA-256"):
        r.fetch("toy")
    (shipped / "t.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(reg.DatasetError, match="cannot be read"):
        r.fetch("toy")
    assert _files(tmp_path / "cache") == []


def test_the_real_shipped_tables_resolve_offline_without_any_data(tmp_path):
    r = reg.Registry.from_json(data_dir=tmp_path / "nothing", cache_dir=tmp_path / "cache", offline=True)
    for name in ("voc_box_sizes", "coco_val2017_box_sizes"):
        path = r.fetch(name)
        assert path == tmp_path / "cache" / name / f"{name}.csv"
        assert reg.sha256_file(path) == r.dataset(name).files[0].sha256


# ---------------------------------------------------------------- YOLOV2_MIRROR


def test_mirror_serves_the_downloads_and_the_derived_files(tmp_path, server, monkeypatch):
    """With a mirror, files come from <mirror>/<root>/<path>, derived ones too (no build), through the cache."""
    served, url, log = server
    write_files(served / "toy", FILES)
    r = reg.Registry({"toy": _dataset(FILES, "http://127.0.0.1:9", derived=("sub/b.csv",))},
                     data_dir=tmp_path / "nothing", cache_dir=tmp_path / "cache", offline=False, mirror=url + "/")
    assert f"from the mirror {url} (first: {url}/toy/a.txt)" in r.status("toy").plan
    root = r.fetch("toy")
    assert root == tmp_path / "cache" / "toy" and sorted(log) == ["/toy/a.txt", "/toy/sub/b.csv"]
    # a folder works too, read through its file:// URL; the variable is what readers set
    write_files(tmp_path / "mirror" / "toy", FILES)
    monkeypatch.setenv("YOLOV2_MIRROR", str(tmp_path / "mirror"))
    r = reg.Registry({"toy": _dataset(FILES, None)}, cache_dir=tmp_path / "cache2", offline=False)
    assert r.mirror == (tmp_path / "mirror").as_uri()
    assert (r.fetch("toy") / "a.txt").read_bytes() == FILES["a.txt"]


def test_a_mirror_with_other_bytes_is_refused(tmp_path):
    write_files(tmp_path / "mirror" / "toy", {**FILES, "a.txt": b"other\n"})
    r = reg.Registry({"toy": _dataset(FILES, None)}, cache_dir=tmp_path / "cache", offline=False,
                     mirror=tmp_path / "mirror")
    with pytest.raises(reg.ChecksumError, match="the file was discarded"):
        r.fetch("toy")
