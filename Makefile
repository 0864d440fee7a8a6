# analogtrain developer targets. `make install test` is what CI does (see .ci/run).
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install test test-fast bench bench-quick golden clean

install:            ## editable install with the test and plot extras
	$(PIP) install -e ".[test,plot]"

test:               ## the whole test suite: unit tests (tests/) and CLI tests (cli_tests/)
	$(PYTHON) -m pytest

test-fast:          ## stop at the first failure
	$(PYTHON) -m pytest -x -q

bench:              ## single-thread benchmarks (several minutes; MNIST epochs need the data)
	$(PYTHON) -m benchmarks.run_all

bench-quick:        ## shorter benchmark runs
	$(PYTHON) -m benchmarks.run_all --quick

golden:             ## re-run the shipped golden files and compare (exit 3 on mismatch)
	for f in data/golden/*/summary.json; do analogtrain verify $$f || exit $$?; done

clean:              ## remove build and test artefacts
	rm -rf build dist *.egg-info .pytest_cache .hypothesis .ci-venv
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
