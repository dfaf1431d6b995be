# cardsorter developer targets. Everything goes through scripts/bootstrap.sh (idempotent).
SHELL := /bin/bash
.PHONY: bootstrap test demo lint clean golden

bootstrap:
	bash scripts/bootstrap.sh

test: bootstrap
	bash scripts/run_tests.sh

demo: bootstrap
	bin/cardsorter demo

# The same checks as test/test_foundation_lint.py (it holds the list of modules not yet clean under mypy --strict).
lint: bootstrap
	source scripts/env.sh && python -m pytest -q -p no:cacheprovider test/test_foundation_lint.py

clean:
	rm -rf build install log build-colcon.log

# Rewrite the regression goldens from the committed bags (on purpose only; review the diff).
golden: bootstrap
	bash scripts/golden.sh
