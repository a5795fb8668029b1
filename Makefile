# YOLO v2, the interactive book: `make book` builds it, `make test` tests everything.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The local data mirror, when there is one beside the repository (else the registry downloads).
SHARED_DATA := $(abspath ../shared/data)
export YOLOV2_DATA ?= $(if $(wildcard $(SHARED_DATA)/README.md),$(SHARED_DATA),)
# The CPU torch wheel that lies on this kind of machine (pip is also told by PIP_FIND_LINKS).
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PYTEST_NB  := --nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg --nbval-cell-timeout 600

.PHONY: venv vendor book test test-fast outputs bench clean
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

# Everything: unit and property tests, the book built with -W (every chapter in full, chapter 9's
# six-minute training included), the browser check, and nbval over every chapter a second time in
# quick mode (YOLOV2_QUICK=1: chapter 9 trains for seconds; its checked outputs do not depend on it).
test: venv vendor
	YOLOV2_QUICK=1 $(BIN)/python -m pytest -p no:cacheprovider tests book $(PYTEST_NB) --durations=15

# Library tests only (no book build, no browser, no notebooks).
test-fast: venv
	$(BIN)/python -m pytest -p no:cacheprovider tests --ignore=tests/test_book.py -q

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
