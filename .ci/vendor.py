"""Put the book's front-end files in book/_static/vendor/ so no page needs a CDN.

The widget manager (@jupyter-widgets/html-manager, which renders the widget
state embedded in each page), MathJax and ONNX Runtime Web (which runs the
detector of chapter 10 in the reader's browser: its WebAssembly build only)
are taken from the npm registry with `npm pack`, checked against pinned
SHA-256 sums, and unpacked here. Run by `make book`/`make test`; fetches only
the packages whose files are missing.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "book" / "_static" / "vendor"

# name@version, SHA-256 of the npm tarball, [(member prefix in the tarball, destination under VENDOR)],
# suffixes to skip, and a file under VENDOR whose presence means the package is in place
PACKAGES = [
    (
        "@jupyter-widgets/html-manager@1.0.15",
        "2b9d65cb7913e1c7d671757a10008b32c9c2448d4429513371e55c07d6107638",
        [("package/dist/", "html-manager/")],
        ("amd.js", ".map"),  # AMD builds and source maps are not needed
        "html-manager/embed.js",
    ),
    (
        "mathjax@3.2.2",
        "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09",
        [("package/es5/", "mathjax/"), ("package/LICENSE", "mathjax/LICENSE")],
        ("-svg.js", "-full.js", "-full-speech.js", "node-main.js"),  # only tex-mml-chtml is loaded
        "mathjax/tex-mml-chtml.js",
    ),
    (
        # The WebAssembly backend alone (CPU, one thread: no cross-origin isolation needed); the
        # WebGPU/WebGL builds and the rest of the package are left out. MIT licence (package.json).
        "onnxruntime-web@1.31.1",
        "bdccdb9fbb9ab537247c0c734e9b1d2b1b338b4f2a09faa58f0dc1cfa27c312c",
        [("package/dist/ort.wasm.min.js", "onnxruntime-web/ort.wasm.min.js"),
         ("package/dist/ort-wasm-simd-threaded.mjs", "onnxruntime-web/ort-wasm-simd-threaded.mjs"),
         ("package/dist/ort-wasm-simd-threaded.wasm", "onnxruntime-web/ort-wasm-simd-threaded.wasm"),
         ("package/package.json", "onnxruntime-web/package.json")],
        (),
        "onnxruntime-web/ort-wasm-simd-threaded.wasm",
    ),
]
SENTINELS = [VENDOR / sentinel for *_, sentinel in PACKAGES]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unpack(tgz: Path, rules: list[tuple[str, str]], skip: tuple[str, ...]) -> None:
    with tarfile.open(tgz) as tar:
        for member in tar.getmembers():
            if not member.isfile() or any(member.name.endswith(s) for s in skip):
                continue
            for prefix, dest in rules:
                if member.name == prefix or (prefix.endswith("/") and member.name.startswith(prefix)):
                    rel = dest + member.name[len(prefix):] if prefix.endswith("/") else dest
                    target = VENDOR / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(member) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)


def main() -> int:
    missing = [pkg for pkg in PACKAGES if not (VENDOR / pkg[-1]).is_file()]
    if not missing:
        return 0
    npm = shutil.which("npm")
    if npm is None:
        print("error: npm is needed once to fetch the book's widget, MathJax and ONNX Runtime Web files "
              "(apt-get install npm, or put them in book/_static/vendor by hand)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        for spec, expected, rules, skip, _ in missing:
            out = subprocess.run([npm, "pack", spec, "--silent", "--pack-destination", tmp],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"error: `npm pack {spec}` failed:\n{out.stderr}", file=sys.stderr)
                return 1
            tgz = Path(tmp) / out.stdout.strip().splitlines()[-1]
            actual = sha256(tgz)
            if actual != expected:
                print(f"error: {spec} tarball has SHA-256 {actual}, expected {expected}; not used",
                      file=sys.stderr)
                return 1
            unpack(tgz, rules, skip)
    print(f"vendored {', '.join(pkg[0] for pkg in missing)} into {VENDOR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
