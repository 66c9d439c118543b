# Two commands for a newcomer: `make demo` and `make test`. Both do all set-up themselves and are safe to re-run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
export CDK_DISABLE_CLI_TELEMETRY := true
export CDK_DISABLE_VERSION_CHECK := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export MOTO_CALL_RESET_API := false

.PHONY: demo test bench synth install clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP) $(NODE_STAMP)

demo: $(STAMP)
	$(PY) -m demo

test: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest -q -n 2 tests

bench: $(STAMP)
	$(PY) -m bench

synth: $(STAMP) $(NODE_STAMP)
	npx cdk synth --no-notices --quiet $(if $(EXTERNAL_ID),-c externalId=$(EXTERNAL_ID))

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache
