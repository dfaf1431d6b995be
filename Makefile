# cardsorter developer targets. Everything goes through scripts/bootstrap.sh (idempotent).
SHELL := /bin/bash
.PHONY: bootstrap test demo lint clean golden

bootstrap:
	bash scripts/bootstrap.sh

test: bootstrap
	bash scripts/run_tests.sh

demo: bootstrap
	bin/cardsorter demo

lint: bootstrap
	source scripts/env.sh && ruff check cardsorter test && mypy cardsorter/core cardsorter/backends

clean:
	rm -rf build install log build-colcon.log

# Rewrite the regression goldens from the committed bags (on purpose only; review the diff).
golden: bootstrap
	bash scripts/golden.sh
