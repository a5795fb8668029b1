# YOLO v2, the interactive book: `make book` builds it, `make test` tests everything.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The local data mirror, when there is one beside the repository (else the registry downloads).
SHARED_DATA := $(abspath ../shared/data)
export YOLOV2_DATA ?= $(if $(wildcard $(SHARED_DATA)/README.md),$(SHARED_DATA),)
# The CPU torch wheel that lies on this kind of machine (pip is also told by PIP_FIND_LINKS).
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

.PHONY: venv vendor book serve test test-fast outputs bench clean
venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip==26.3
	$(BIN)/pip install -q $(FIND_LINKS) -r requirements.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

vendor: venv
	$(BIN)/python .ci/vendor.py

book: venv vendor
	$(BIN)/jupyter-book build . -W --keep-going
	@echo "Open $(abspath _build/html/index.html)"
	@echo "or serve it (the live detector of chapter 10 needs a server): make serve, then open http://127.0.0.1:$(PORT)/"

# Serve the built book on this computer only (opened from disk, a browser lets no page load the
# live detector's files). Python's own http.server, no venv needed; Ctrl-C stops it.
PORT ?= 8000
serve:
	@test -f _build/html/index.html || \
	  { echo "The book is not built yet: run 'make book' first (it writes _build/html)." >&2; exit 1; }
	@echo "Serving the book at http://127.0.0.1:$(PORT)/ (Ctrl-C stops it)"
	@$(PYTHON) -m http.server --bind 127.0.0.1 --directory _build/html $(PORT)

# Everything: unit and property tests, the book built with -W (every chapter in full, chapter 9's
# 640-update training included), the browser checks, and nbval over every chapter a second time, each
# copied alone into an empty folder and run in a fresh Colab-like Python (tests/test_colab.py), in quick
# mode (YOLOV2_QUICK=1: chapter 9 trains for seconds; its checked outputs do not depend on it).
test: venv vendor
	YOLOV2_QUICK=1 $(BIN)/python -m pytest -p no:cacheprovider tests --durations=15

# Library tests only (no book build, no browser, no notebooks, no multi-process runs: -m "not slow").
test-fast: venv
	$(BIN)/python -m pytest -p no:cacheprovider tests -m "not slow" -q

# Re-execute chapters and keep only the outputs of cells tagged nbval-check-output: make outputs NB=book/03_anchor_boxes.ipynb
outputs: venv
	$(BIN)/python tests/nbtools.py refresh $(NB)

bench: venv
	$(BIN)/python -m yolov2_lib.bench anchors
	$(BIN)/python -m yolov2_lib.bench model
	$(BIN)/python -m yolov2_lib.bench loss
	$(BIN)/python -m yolov2_lib.bench train
	$(BIN)/python -m yolov2_lib.bench data

clean:
	rm -rf _build book/_static/vendor
