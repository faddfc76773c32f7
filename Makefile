# One entry point for newcomers, CI and the delivery pipeline.
#   make synth [ENV=name]   set up, then synthesize the platform into cdk.out/ (no AWS account needed)
#   make test               set up, then run the test suite
#   make local-run [DATA=file.csv TARGET=column] [KEEP=dir]   run the pipeline's real step scripts locally (no AWS,
#                           no Docker); KEEP keeps the work directory (model, evaluation) for a serving round trip
#   make bench              set up, then run the benchmarks (synth time, preprocessing throughput,
#                           inference latency)
#   make definitions        record the shipped environments' pipeline definitions (commit them)
#   make lint [ENV=name]    synthesize, then run cfn-lint on every template
#   make review [ENV=name] [BASE=git-ref]   synthesize with every cdk-nag pack and write the reviewer's report
#                           cdk.out/review/<env>/index.html (+ index.md, pictures); BASE adds "Changes since BASE"
#   make diff|deploy ENV=name   compare with / deploy to the environment's account (credentials needed)
#   make destroy ENV=name [CLEAN_VPC=1]   delete the environment's stacks in order after asking for its name
#                           again; CLEAN_VPC=1 also removes the home EFS mount targets and SageMaker's NFS
#                           security groups from the VPC; lists the retained data at the end (credentials needed)
#   make approved-model ENV=name [GROUP=name-or-arn]   record the group's newest Approved model package
#                           in cdk.context.json for synth (credentials needed)
#   make synth-delivery     set up, then synthesize the delivery pipeline (config/delivery.yaml) into cdk.out/ offline
#   make deploy-delivery    deploy the delivery pipeline to the tooling account once; it updates itself after that
#   make record-approved    record every delivered environment's newest approved package (the pipeline's synth step)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV := .venv
CHECKOV_VENV := .venv-checkov
PY := $(VENV)/bin/python
ENV ?= sandbox
STAMPS := .make

# The local CDK CLI and, on Linux, the Node 22 runtime from node_modules come first;
# jsii then runs on a supported Node instead of printing an end-of-life banner.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export CDK_DISABLE_CLI_TELEMETRY := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup setup-dev graphviz synth lint review test local-run bench definitions diff deploy destroy approved-model lock clean
.PHONY: synth-delivery deploy-delivery record-approved

setup: $(STAMPS)/python $(STAMPS)/node
setup-dev: setup $(STAMPS)/python-dev

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10 or newer is required (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)

$(STAMPS)/python: requirements.txt | $(VENV)/bin/python
	scripts/pip-install $(PY) -r requirements.txt
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/python-dev: requirements-dev.txt pipeline_code/requirements.txt $(STAMPS)/python
	scripts/pip-install $(PY) -r requirements.txt -r requirements-dev.txt
	@mkdir -p $(STAMPS) && touch $@

# checkov pins a boto3 the platform's pin excludes: it gets a virtual env of its own (the tests run it from there).
$(STAMPS)/checkov: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	scripts/pip-install $(CHECKOV_VENV)/bin/python -r requirements-checkov.txt
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/node: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(STAMPS) && touch $@

synth: setup
	cdk synth --quiet -c env=$(ENV) 'MlPlatform-$(ENV)/*'
	@echo "Synthesized environment '$(ENV)' into cdk.out/ (cdk-nag: no unacknowledged findings)."

lint: setup-dev synth
	$(VENV)/bin/cfn-lint -- cdk.out/assembly-MlPlatform-$(ENV)/*.template.json
	@echo "cfn-lint: no findings in environment '$(ENV)'."

# The review's pictures need Graphviz's `dot` (Debian package `graphviz`, installed when missing and apt-get exists;
# elsewhere `brew install graphviz` or the distribution's package). The tests draw pictures too.
graphviz:
	@command -v dot >/dev/null || { command -v apt-get >/dev/null && { apt-get install -y -qq graphviz >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq graphviz; }; }; } || echo "warning: Graphviz (dot) is not installed: no pictures" >&2

review: setup-dev graphviz
	$(PY) -m review --env $(ENV) $(if $(BASE),--base $(BASE))

# One worker per core (each synthesis is shared between them; an idle worker takes queued tests from a busy one);
# the slowest tests are listed at the end.
test: setup-dev graphviz $(STAMPS)/checkov
	$(PY) -m pytest -n auto --dist worksteal --durations=15

local-run: setup-dev
	$(PY) -m pipeline_code.local_run $(if $(DATA),--data $(DATA)) $(if $(TARGET),--target-column $(TARGET)) $(if $(KEEP),--work-dir $(KEEP))

# Re-record the shipped environments' pipeline definitions after changing pipeline code or an environment
# (the tests fail while a recorded definition is stale); review and commit pipeline_code/definitions/recorded/.
definitions: setup-dev
	$(PY) scripts/record_definitions.py

bench: setup-dev
	$(PY) benchmarks/synth_time.py
	$(PY) benchmarks/preprocess_throughput.py
	$(PY) benchmarks/inference_latency.py

diff: setup
	cdk diff -c env=$(ENV) 'MlPlatform-$(ENV)/*'

deploy: setup
	cdk deploy -c env=$(ENV) 'MlPlatform-$(ENV)/*'

destroy: setup
	$(PY) -m ops.destroy --env $(ENV) $(if $(CLEAN_VPC),--remove-sagemaker-leftovers)

# Exit 1 when the group has no approved package: the recorded value is then left as it was.
approved-model: setup
	$(PY) -m ops.approved_model --env $(ENV) $(if $(GROUP),--group $(GROUP))

# The CLI runs the app with the virtual env's Python, whatever `python3` is first on PATH.
DELIVERY_APP := $(PY) delivery_app.py

synth-delivery: setup
	cdk synth --quiet --app "$(DELIVERY_APP)"
	@echo "Synthesized the delivery pipeline into cdk.out/ (cdk-nag: no unacknowledged findings)."

deploy-delivery: setup
	cdk deploy --app "$(DELIVERY_APP)" MlPlatformDelivery

record-approved: setup
	$(PY) -m ops.record_approved

# Re-pin Python dependencies after editing requirements*.in.
lock: setup-dev
	$(VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links pipeline_code/requirements.in -o pipeline_code/requirements.txt
	$(VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links requirements.in -o requirements.txt
	$(VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links requirements-dev.in -o requirements-dev.txt
	$(VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links requirements-checkov.in -o requirements-checkov.txt

clean:
	rm -rf cdk.out $(STAMPS) .pytest_cache
