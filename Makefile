# corrkit: `make demo` runs the demo, `make test` the tests and the strict docs build.
# Both create the virtual environment in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export NO_MKDOCS_2_WARNING := 1
STAMP := $(VENV)/.corrkit-installed

.PHONY: help venv test test-all docs docs-serve weights mini-data demo clean

help:
	@echo "make demo      zero-shot matching demo, pictures in work_dirs/demo/"
	@echo "make test      create .venv if needed, run the tests and the strict docs build"
	@echo "make test-all  the tests including the slow ones"
	@echo "make docs      build the documentation into site/"
	@echo "make mini-data write the embedded mini dataset into data/mini-spair"

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e '.[dev,docs]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest
	$(PY) -m mkdocs build --strict --site-dir site

test-all: $(STAMP)
	$(PY) -m pytest -m ''

docs: $(STAMP)
	$(PY) -m mkdocs build --strict --site-dir site

docs-serve: $(STAMP)
	$(PY) -m mkdocs serve

weights: $(STAMP)
	$(PY) tools/fetch_weights.py

mini-data: $(STAMP)
	$(PY) tools/make_mini_dataset.py --out-dir data/mini-spair

demo: weights
	$(PY) tools/demo.py --config configs/zeroshot_mobilenetv2.py --out-dir work_dirs/demo

clean:
	rm -rf site work_dirs .pytest_cache
