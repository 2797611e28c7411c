# Quick start:  make demo   (install, demo data, whole DAG offline on CPU)
#               make test   (the test suite; .ci/run calls this)
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONUNBUFFERED := 1
export PYTHONPATH := $(CURDIR)

.PHONY: install lock demo params test test-all bench web mlflow clean

install: $(VENV)/.installed web/node_modules/.installed

# TF.js for the edge stages: exact versions from web/package-lock.json, offline-safe
# (no native tfjs-node binary).
web/node_modules/.installed: web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund
	touch $@

# uv installs the wheels in parallel (under 2 min against pip's 4 here), under the exact
# versions of requirements.lock; bytecode compiled now, as pip would.
UV := uv==0.13.9
$(VENV)/.installed: requirements.txt requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(UV)
	$(BIN)/uv pip install -q --python $(BIN)/python --compile-bytecode \
	  -r requirements.txt -c requirements.lock
	$(BIN)/uv pip check --python $(BIN)/python
	touch $@

# Re-pin requirements.lock after editing requirements.txt (resolved afresh, then tested).
lock: install
	$(BIN)/uv pip install -q --python $(BIN)/python --compile-bytecode -r requirements.txt
	(sed -n '1,3p' requirements.lock; $(BIN)/uv pip freeze --python $(BIN)/python \
	  --exclude uv --exclude pip) > requirements.lock.new && mv requirements.lock.new requirements.lock

# Demo data only where data/ is empty (your licensed databases are never touched),
# record data/ in data.dvc, compose params.yaml with the demo profile, run the DAG with
# FER_JOBS stages at a time (an execution setting: environment or local.yaml, default 2;
# `make demo JOBS=1` for one at a time). DVC itself runs one stage at a time; fer.train.parallel_repro is this
# project's scheduler: it reads the DAG and the changed stages from `dvc dag --dot` and
# `dvc status`, and runs each stage, once its upstream stages are done, as its own
# `dvc --wait-for-lock repro --single-item <stage>` process, up to that many at once
# (docs/scale-out.md).
demo: install
	$(BIN)/python -m fer.data.demo data --if-empty
	$(BIN)/dvc add data -q
	$(BIN)/python -m fer.core.params profile=demo
	$(BIN)/python -m fer.train.parallel_repro $(if $(JOBS),-j $(JOBS)) --save demo_stage_times.json
	@echo; cat reports/datasets.md

# Compose params.yaml from conf/ (paper profile); add Hydra overrides with ARGS="...".
params: install
	$(BIN)/python -m fer.core.params $(ARGS)

# The suite on 2 workers (test files kept whole: module fixtures build once; the longest
# files first, as tests/conftest.py orders them), without the tests marked heavy (each
# covered by a faster one; docs/tests.md); test-all runs them too.
test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder -m "not heavy" \
	  --durations=25

test-all: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

# The in-browser demo on http://127.0.0.1:8000/ with an exported model (after make demo):
# by default the float16 export of the first of params.yaml's export.models (it answers
# as Python does; uint8 moves a few answers: docs/edge.md).
MODEL ?= build/tfjs/$(shell $(BIN)/python -c "import yaml; print(next(iter(yaml.safe_load(open('params.yaml'))['export']['models'])))" 2>/dev/null)/float16
web: install
	node web/serve.mjs --model $(MODEL) --port 8000

# MLflow tracking server on loopback over the repository's store; stages log to it with
# MLFLOW_TRACKING_URI=http://127.0.0.1:5000 (several machines: PostgreSQL, see
# docs/scale-out.md, "Running on more than one machine").
MLFLOW_PORT ?= 5000
mlflow: install
	mlflow server --backend-store-uri sqlite:///$(CURDIR)/mlflow.db \
	  --artifacts-destination $(CURDIR)/mlartifacts --host 127.0.0.1 --port $(MLFLOW_PORT)

bench: install
	$(BIN)/python bench/read_speed.py
	$(BIN)/python bench/gan_speed.py
	$(BIN)/python bench/batchnorm_speed.py
	$(BIN)/python bench/ray_overhead.py
	$(BIN)/python bench/finetune_speed.py --models vgg16 vgg19
	$(BIN)/python bench/feed_teardown.py
	$(BIN)/python bench/trace_reuse.py --models vgg16 inception_v3
	$(BIN)/python bench/cache_trace.py

clean:
	rm -rf build reports metrics .cache dvc.lock demo_stage_times.json
