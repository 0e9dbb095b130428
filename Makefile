# The README's commands. Everything installs into .venv from this repo's own files.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The explorer's browser files and the tests' OpenID provider, pinned by web/package-lock.json.
WEB_STAMP := web/node_modules/.installed-stamp
# The federation gateway, its compose script and the example partner subgraph, pinned by
# gateway/package-lock.json.
GATEWAY_STAMP := gateway/node_modules/.installed-stamp

.PHONY: install demo gateway test bench schema lint

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	@touch $(STAMP)

$(WEB_STAMP): web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $(WEB_STAMP)

$(GATEWAY_STAMP): gateway/package-lock.json
	cd gateway && npm ci --no-audit --no-fund --loglevel=error
	@touch $(GATEWAY_STAMP)

install: $(STAMP) $(WEB_STAMP) $(GATEWAY_STAMP)

demo: $(STAMP) $(WEB_STAMP)
	$(BIN)/mash-hub demo

gateway: $(STAMP) $(WEB_STAMP) $(GATEWAY_STAMP)
	gateway/run.sh

test: $(STAMP) $(WEB_STAMP) $(GATEWAY_STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

schema: $(STAMP)
	$(BIN)/mash-hub export-schema
	$(BIN)/python -m hub.demo.compose

.PHONY: trusted-documents
# Partner systems' persisted query manifests, from gateway/trusted-documents/<client>/*.graphql.
trusted-documents: $(STAMP)
	$(BIN)/mash-hub trusted-documents
