# corrkit: `make demo` runs the demo, `make test` the tests and the strict docs build.
# Both create the virtual environment in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export NO_MKDOCS_2_WARNING := 1
STAMP := $(VENV)/.corrkit-installed

.PHONY: help venv browser compiler test test-all docs docs-serve weights mini-data demo clean

help:
	@echo "make demo      train on the embedded mini dataset, evaluate, draw (work_dirs/demo/)"
	@echo "make test      create .venv if needed, run the tests and the strict docs build"
	@echo "make test-all  the tests including the slow ones"
	@echo "make docs      build the documentation into site/"
	@echo "make mini-data write the embedded mini dataset into data/mini-spair"

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e '.[dev,docs]'
	touch $(STAMP)

venv: $(STAMP)

# The viewer's tests open its pages in Debian's Chromium, driven by Playwright (dev extra).
browser:
	@command -v chromium >/dev/null || { apt-get update -q && \
		apt-get install -y -q chromium; }

# The refiner's fused CPU kernel is built with the system's C compiler at first use.
compiler:
	@command -v cc >/dev/null || { apt-get update -q && apt-get install -y -q gcc; }

# Three tests load the real MobileNetV2 weights: `weights` puts them in the torch hub cache.
test: $(STAMP) browser compiler weights
	$(PY) -m pytest
	$(PY) -m mkdocs build --strict --site-dir site

test-all: $(STAMP) browser compiler weights
	$(PY) -m pytest -m ''

docs: $(STAMP)
	$(PY) -m mkdocs build --strict --site-dir site

docs-serve: $(STAMP)
	$(PY) -m mkdocs serve

weights: $(STAMP)
	$(PY) tools/fetch_weights.py

mini-data: $(STAMP)
	$(PY) tools/make_mini_dataset.py --out-dir data/mini-spair

DEMO := work_dirs/demo
DEMO_CONFIG := configs/transformatcher_mobilenetv2_mini.py
DEMO_PAIR := data/mini-spair/JPEGImages/grace_hopper/grace_hopper_00.jpg \
             data/mini-spair/JPEGImages/grace_hopper/grace_hopper_03.jpg

# The main job on the embedded default: train TransforMatcher (MobileNetV2 hypercolumns)
# on the mini dataset, evaluate it and the zero-shot baseline, draw a test pair.
demo: weights mini-data
	$(PY) tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO)/train --resume  # a rerun continues
	$(PY) tools/test.py $(DEMO_CONFIG) --checkpoint $$(ls -t $(DEMO)/train/best_*.pth | head -n1) \
		--work-dir $(DEMO)/trained
	$(PY) tools/test.py configs/zeroshot_mobilenetv2.py --work-dir $(DEMO)/zeroshot
	$(PY) tools/demo.py $(DEMO_PAIR) --config $(DEMO_CONFIG) \
		--checkpoint $$(ls -t $(DEMO)/train/best_*.pth | head -n1) \
		--out-dir $(DEMO) --html
	$(PY) tools/compare_pck.py zero-shot=$(DEMO)/zeroshot/pck_bbox.json \
		trained=$(DEMO)/trained/pck_bbox.json
	@echo "pictures: $(DEMO)/matches.png $(DEMO)/warp.png; viewer: $(DEMO)/matches.html"

clean:
	rm -rf site work_dirs .pytest_cache
