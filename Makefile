# make run: set up and open the app on the bundled samples; make test: set up and run every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: setup run test lint bench fuzz clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $@

run: setup
	$(PY) -m streamlit run app.py --server.port $(PORT)

lint: setup
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest

bench: setup
	$(PY) -m bench

# The long mode of the weight-file fuzzer (tests/fuzz): 400 damaged copies per reader.
fuzz: setup
	$(PY) -m tests.fuzz --long

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache artifacts
