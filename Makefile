# Two entry points that work on a fresh machine (Python 3.11, no SUMO, no SUMO_HOME):
#   make demo   -- set up .venv, install, compare the existing timing, a green wave and max-pressure
#                  on the bundled corridor (3 seeds),
#                  write the HTML report and print its path
#   make test   -- set up .venv, install, lint (ruff), type-check (mypy), run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
OUT    ?= results/demo

.PHONY: demo test lint setup networks benchmark clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: setup
	$(VENV)/bin/mobility compare corridor --controllers static,green-wave,max-pressure --seeds 3 --out $(OUT)
	$(VENV)/bin/mobility report $(OUT) --out $(OUT)/report.html

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -ra

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

networks: setup
	$(PY) networks/build.py

benchmark: setup
	$(PY) benchmarks/overhead.py

clean:
	rm -rf $(VENV) results .pytest_cache .mypy_cache .ruff_cache build
