# make run      : set up, then train + evaluate on the default data, write the report, leave the default model.
# make test     : set up (with Debian's chromium for the browser test), lint, run the whole test suite, then the
#                 precision and speed-path tests again with the CPU capped to AVX2 (scripts/test_cpu_cap.sh).
# make test-fast: lint and the suite without the tests marked slow (minutes; for a contributor between edits).
.PHONY: setup run test test-fast

setup:
	bash scripts/setup.sh

run: setup
	.venv/bin/genrelens benchmark --quick

test: setup
	bash scripts/setup.sh --browser
	.venv/bin/ruff check genrelens tests benchmarks scripts
	.venv/bin/lint-imports
	.venv/bin/python -m pytest -q --durations=15
	bash scripts/test_cpu_cap.sh

test-fast: setup
	.venv/bin/ruff check genrelens tests benchmarks scripts
	.venv/bin/lint-imports
	.venv/bin/python -m pytest -q -m "not slow"
