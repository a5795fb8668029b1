"""The dataset registry: found locally, checksum mismatch, download from a local
HTTP server (the real download code runs), offline and missing. No network."""

from __future__ import annotations

import functools
import hashlib
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

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


def test_download_with_a_wrong_checksum_is_discarded(tmp_path, server):
    served, url, _ = server
    write_files(served, {**FILES, "a.txt": b"not what was registered\n"})
    r = reg.Registry({"toy": _dataset(FILES, url)}, cache_dir=tmp_path / "cache", offline=False)
    with pytest.raises(reg.ChecksumError, match="the file was discarded"):
        r.fetch("toy")
    assert not (tmp_path / "cache" / "toy" / "a.txt").exists()
    assert not list((tmp_path / "cache").rglob("*.part"))


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
    assert set(r.names()) == {"voc_boxes", "coco_val2017_boxes", "darknet", "bccd", "demo_images"}
    for name in r.names():
        ds = r.dataset(name)
        assert ds.licence and ds.source and ds.description
        for f in ds.files:
            assert len(f.sha256) == 64
            assert (f.url or f.derived), f"{name}/{f.path}: neither a URL nor a recipe"
            if f.url:
                assert f.url.startswith("https://"), f.url


def test_a_file_changed_after_a_good_check_is_caught(tmp_path):
    """The in-process memo of sums must not hide a file rewritten since it was checked."""
    write_files(tmp_path / "data" / "toy", FILES)
    make = lambda: reg.Registry({"toy": _dataset(FILES, None)}, data_dir=tmp_path / "data",
                                cache_dir=tmp_path / "cache", offline=True)
    make().fetch("toy")
    (tmp_path / "data" / "toy" / "a.txt").write_bytes(b"ALPHA\n")  # same size, new content
    with pytest.raises(reg.ChecksumError, match=r"a\.txt"):
        make().fetch("toy")
