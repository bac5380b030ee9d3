# STAR answer scorer. `make` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CONFIG ?= configs/default.yaml
DATA   ?= data/test.jsonl
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.DEFAULT_GOAL := help
.PHONY: help venv train test score evaluate benchmark mlflow-ui data data-check data-stats baselines calibrate robustness seeds agreement lint

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP) ## create .venv with the pinned CPU stack (idempotent)

train: $(STAMP) ## fine-tune on data/train.jsonl, track in MLflow, register @champion
	$(PY) -m pipeline.train --config $(CONFIG)

test: $(STAMP) ## run the test suite (tiny models, offline)
	$(PY) -m pytest

score: $(STAMP) ## score a file: make score IN=answers.jsonl OUT=scored.jsonl [MODEL=models/... | models:/star-scorer@champion]
	$(PY) -m pipeline.score --input $(IN) --output $(OUT) $(if $(MODEL),--model $(MODEL))

evaluate: $(STAMP) ## report on labelled data: make evaluate [DATA=data/test.jsonl] [MODEL=...]
	$(PY) -m pipeline.evaluate --data $(DATA) $(if $(MODEL),--model $(MODEL))

benchmark: $(STAMP) ## scoring speed per device, as ratios to the first: make benchmark [MODEL=...] [DEVICES="cpu cuda"]
	$(PY) -m pipeline.benchmark --data $(DATA) $(if $(MODEL),--model $(MODEL)) $(if $(DEVICES),--devices $(DEVICES))

mlflow-ui: $(STAMP) ## open the MLflow UI on the project's SQLite store
	$(VENV)/bin/mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db} --port 5000

data: ## rebuild data/{train,dev,test,other_writers}.jsonl from the hand-written sources in data/raw
	$(PYTHON) -m pipeline.corpus build

data-check: $(STAMP) ## validate every dataset file against the schema and the labelling guide
	$(PY) -m pipeline.datacheck check

data-stats: $(STAMP) ## print the corpus tables the datasheet (data/README.md) quotes
	$(PY) -m pipeline.datacheck stats

baselines: $(STAMP) ## scikit-learn baselines on dev and test
	$(PY) -m pipeline.baselines

calibrate: $(STAMP) ## choose a model's decoding settings again on dev: make calibrate MODEL=models/... [REGISTER=star-scorer]
	$(PY) -m pipeline.calibrate --model $(MODEL) $(if $(REGISTER),--register $(REGISTER))

robustness: $(STAMP) ## invariance checks of the newest model on the blind test
	$(PY) -m pipeline.robustness --data $(DATA) $(if $(MODEL),--model $(MODEL))

SEEDS ?= 42 43 44
seeds: $(STAMP) ## train the default config under SEEDS and report mean and spread on DATA (default: the blind test)
	$(PY) -m pipeline.seeds --data $(DATA) --seeds $(SEEDS) $(if $(MODELS),--models $(MODELS))

SECOND ?= data/second_labels/$(basename $(notdir $(DATA)))
agreement: $(STAMP) ## a second annotator against the first; the model and the baselines against both: make agreement [DATA=data/test.jsonl] [MODEL=...]
	$(PY) -m pipeline.agreement --data $(DATA) --second $(SECOND) --baselines data/train.jsonl --out reports/agreement/$(basename $(notdir $(DATA))) $(if $(MODEL),--model $(MODEL))

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check pipeline tests
