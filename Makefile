# Two commands for a fresh clone (only Python 3 needed):
#   make run    set up .venv and run the daemon on the demo config (alertd.yaml)
#   make test   set up .venv (and the Debian packages the tests use) and run the whole suite
VENV ?= .venv
PYTHON ?= python3

.PHONY: run test setup system-deps bench bench-scale clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/alertd run -c alertd.yaml

system-deps:
	sh scripts/system-deps.sh

test: $(VENV)/.installed system-deps
	$(VENV)/bin/python -m pytest

bench: $(VENV)/.installed
	$(VENV)/bin/python bench/tick.py
	$(VENV)/bin/python bench/sources.py
	$(VENV)/bin/python bench/detect.py

bench-scale: $(VENV)/.installed    # issues 8 and 20: about 40 minutes (bench/store.py alone 25), figures in docs/benchmarks.md
	$(VENV)/bin/python bench/scale.py
	$(VENV)/bin/python bench/latency.py
	$(VENV)/bin/python bench/store.py

clean:
	rm -rf $(VENV) alertd.db alertd.db-wal alertd.db-shm
