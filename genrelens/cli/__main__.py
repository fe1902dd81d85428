"""``python -m genrelens.cli``."""

from genrelens.cli import main

main()
