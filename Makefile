# make run : set up, then train + evaluate on the default data, write the report, leave the default model.
# make test: set up, then lint and run the test suite.
.PHONY: setup run test lint

setup:
	bash scripts/setup.sh

run: setup
	.venv/bin/genrelens benchmark --quick

test: setup
	.venv/bin/ruff check genrelens tests benchmarks
	.venv/bin/python -m pytest -q
