# The same commands as the README; dev.py does the work so that a machine with only
# Python and pip needs nothing else.
PY ?= python3

.PHONY: start test lint ci
start:
	$(PY) dev.py start
test:
	$(PY) dev.py test
lint:
	$(PY) dev.py lint
ci:
	bash .ci/run
