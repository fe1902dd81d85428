# make run : set up, then train + evaluate on the default data, write the report, leave the default model.
# make test: set up (with Debian's chromium for the browser test), then lint and run the test suite.
.PHONY: setup run test

setup:
	bash scripts/setup.sh

run: setup
	.venv/bin/genrelens benchmark --quick

test: setup
	bash scripts/setup.sh --browser
	.venv/bin/ruff check genrelens tests benchmarks scripts
	.venv/bin/lint-imports
	.venv/bin/python -m pytest -q
