# make run      : set up, then train + evaluate on the default data, write the report, leave the default model.
# make test     : set up (with Debian's chromium for the browser test), lint, run the whole test suite (2 pytest-xdist
#                 workers, a test file per worker at a time, the cores shared: tests/conftest.py), then the
#                 precision and speed-path tests again with the CPU capped to AVX2 (scripts/test_cpu_cap.sh).
# make test-fast: lint and the suite without the tests marked slow (minutes; for a contributor between edits).
.PHONY: setup run test test-fast

setup:
	bash scripts/setup.sh

run: setup
	.venv/bin/genrelens benchmark --quick

test:
	bash scripts/setup.sh --test
	bash scripts/setup.sh --browser
	.venv/bin/ruff check genrelens tests benchmarks scripts
	.venv/bin/lint-imports
	.venv/bin/python -m pytest -q -n 2 --dist loadfile --durations=15
	bash scripts/test_cpu_cap.sh

test-fast:
	bash scripts/setup.sh --test
	.venv/bin/ruff check genrelens tests benchmarks scripts
	.venv/bin/lint-imports
	.venv/bin/python -m pytest -q -n 2 --dist loadfile -m "not slow"
