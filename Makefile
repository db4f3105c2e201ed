.PHONY: setup test check bench

# Installs everything and trains the dialog model; safe to run again (skips what is done).
setup:
	bash scripts/setup.sh

# The whole test suite; fails when pytest collects nothing (exit 5).
test:
	.venv/bin/python -m pytest -q --durations=25

check:
	.venv/bin/ivr dialogs check

bench:
	.venv/bin/ivr bench latency
