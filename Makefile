# The README's commands. Everything installs into .venv from this repo's own files.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The explorer's browser files and the tests' OpenID provider, pinned by web/package-lock.json.
WEB_STAMP := web/node_modules/.installed-stamp

.PHONY: install demo test bench schema lint

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	@touch $(STAMP)

$(WEB_STAMP): web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $(WEB_STAMP)

install: $(STAMP) $(WEB_STAMP)

demo: $(STAMP) $(WEB_STAMP)
	$(BIN)/mash-hub demo

test: $(STAMP) $(WEB_STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

schema: $(STAMP)
	$(BIN)/mash-hub export-schema
	$(BIN)/python -m hub.demo.compose
