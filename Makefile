# Two entry points for a new user (see README.md):
#   make demo   - the worked example on the bundled data (embedded SQLite repo)
#   make test   - the whole test suite (two workers, one test file each at a time, so that
#                 a file's module fixtures are built once; files in collection order, which
#                 tests/conftest.py makes end-to-end modules first, rather than xdist's
#                 most-tests-first, which left the long end-to-end files for last)
# Both create .venv with a Python >= 3.12 and install the pinned stack first;
# re-running them skips the install unless pyproject.toml, constraints.txt or this file
# changed.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO ?= demo
PYTEST_ARGS ?=

.PHONY: demo test setup bytecode docs benchmarks clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	@test -x $(PY) || { py=$$(bin/find_python.sh) && echo "Creating $(VENV) with $$py" && "$$py" -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,scale,docs]'
	@touch $(STAMP)

# The package's modules compiled to bytecode once: where PYTHONDONTWRITEBYTECODE is set (as on
# CI machines) every process would otherwise compile them again when it imports them, and a run
# starts hundreds of butler and pipetask processes.  Only stale files are compiled again.
bytecode: $(STAMP)
	@$(PY) -m compileall -q python

demo: $(STAMP) bytecode
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bin/run_demo.sh $(DEMO)

test: $(STAMP) bytecode
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# The documentation site, warnings as errors (tests/test_docs.py builds it the same way).
docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "docs/_build/html/index.html"

benchmarks: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bin/run_benchmarks.sh

clean:
	rm -rf $(VENV) $(DEMO) benchmarks/output docs/_build docs/generated docs/api
