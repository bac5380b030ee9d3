# STAR answer scorer. `make` lists the targets, grouped by job.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/star-scorer
STAMP  := $(VENV)/.installed
CONFIG ?= configs/default.yaml
DATA   ?= data/test.jsonl
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

SUDO   := $(if $(filter 0,$(shell id -u)),,sudo)

# data/train.jsonl (7 MB: the training answers and their counterfactual copies) is built from data/raw, not kept in git
TRAIN_DATA := data/train.jsonl
RAW_FILES  := $(shell find data/raw -name '*.txt' 2>/dev/null)

# $(call need,VAR,example): stop with a message naming the missing argument
need = $(if $($(1)),,$(error make $@ needs $(1)=...: for example `make $@ $(2)`))

.DEFAULT_GOAL := help
.PHONY: help venv java chromium report promote train test score score-spark serve bench evaluate calibrate mlflow-ui baselines robustness seeds agreement benchmark data data-check data-stats lint

help: ## list the targets
	@awk 'BEGIN {FS = ":.*?## "} /^##@/ {printf "\n%s\n", substr($$0, 5); next} /^[a-zA-Z_-]+:.*?## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -c requirements.lock -e '.[dev,spark]'
	touch $(STAMP)

##@ Set-up and tests
venv: $(STAMP) ## create .venv with the pinned CPU stack (idempotent)

java: ## a Java runtime for Spark: Debian's default-jre-headless, installed only when java is missing
	@command -v java >/dev/null 2>&1 || { echo "no java on PATH: installing default-jre-headless"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq default-jre-headless; }

chromium: ## a headless browser for the report test: Debian's chromium, installed only when none is on PATH
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { echo "no chromium on PATH: installing chromium"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

test: $(STAMP) java chromium ## run the test suite (tiny models, offline; Spark and REST servers started by the tests)
	$(PY) -m pytest

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check star_scorer tests scripts

##@ Jobs
train: $(STAMP) $(TRAIN_DATA) ## fine-tune on data/train.jsonl, track in MLflow, register @challenger, promote it by the rule: make train [CONFIG=configs/gpu.yaml]
	$(CLI) train --config $(CONFIG)

score: $(STAMP) ## score a file, streaming: make score IN=answers.jsonl OUT=scored.parquet [MODEL=... (default @champion)] [RESUME=1] [CHUNK=512]
	$(call need,IN,IN=answers.csv OUT=scored.parquet)$(call need,OUT,IN=answers.csv OUT=scored.parquet)
	$(CLI) score --input $(IN) --output $(OUT) $(if $(MODEL),--model $(MODEL)) $(if $(RESUME),--resume) $(if $(CHUNK),--chunk-rows $(CHUNK))

score-spark: $(STAMP) java ## score a Parquet file/folder on Spark with @champion: make score-spark IN=answers.parquet OUT=scored/ [MASTER=local[*]]
	$(call need,IN,IN=answers.parquet OUT=scored-spark)$(call need,OUT,IN=answers.parquet OUT=scored-spark)
	$(CLI) score-spark --input $(IN) --output $(OUT) $(if $(MODEL),--model $(MODEL)) $(if $(MASTER),--master '$(MASTER)') $(if $(PARTITIONS),--partitions $(PARTITIONS))

PORT ?= 5001
serve: $(STAMP) ## REST on @champion (mlflow models serve): make serve [PORT=5001] [MODEL=models:/star-scorer@champion]
	$(CLI) serve --port $(PORT) $(if $(MODEL),--model $(MODEL))

bench: $(STAMP) ## speed against the naive transformers pipeline, in one run, and peak RSS at 1,000 and 50,000 rows
	$(CLI) bench $(if $(MODEL),--model $(MODEL))

evaluate: $(STAMP) $(TRAIN_DATA) ## report on labelled data, baselines beside: make evaluate [DATA=data/test.jsonl] [MODEL=...]
	$(CLI) baselines --eval $(DATA) --skip-existing
	$(CLI) evaluate --data $(DATA) $(if $(MODEL),--model $(MODEL))

report: $(STAMP) ## HTML reports with intervals, @champion beside, on every labelled set: make report [MODEL=...] [DATA=...]
	$(CLI) report $(if $(MODEL),--model $(MODEL)) $(if $(filter command line environment,$(origin DATA)),--data $(DATA))

promote: $(STAMP) ## move @champion to @challenger unless it is worse on realworld or dev beyond the intervals, or worse at all on realworld
	$(CLI) promote

calibrate: $(STAMP) ## choose a model's decoding settings again on dev: make calibrate MODEL=models/... [FACTS=../shared/realworld/dev.jsonl] [NUMBER_CHECK=0.9] [REGISTER=star-scorer]
	$(call need,MODEL,MODEL=models/20261206-142220)
	$(CLI) calibrate --model $(MODEL) $(if $(FACTS),--facts $(FACTS)) $(if $(NUMBER_CHECK),--number-check $(NUMBER_CHECK)) $(if $(REGISTER),--register $(REGISTER))

mlflow-ui: $(STAMP) ## open the MLflow UI on the project's SQLite store
	$(VENV)/bin/mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db} --port 5000

##@ Research
baselines: $(STAMP) $(TRAIN_DATA) ## scikit-learn baselines on dev and test
	$(CLI) baselines

robustness: $(STAMP) ## invariance, padding and number checks: make robustness [DATA=data/test.jsonl] [MODEL=...]
	$(CLI) robustness --data $(DATA) $(if $(MODEL),--model $(MODEL))

SEEDS ?= 42 43 44
seeds: $(STAMP) $(TRAIN_DATA) ## train the default config under SEEDS and report mean and spread on DATA (default: the blind test)
	$(CLI) seeds --data $(DATA) --seeds $(SEEDS) $(if $(MODELS),--models $(MODELS))

SECOND ?= data/second_labels/$(basename $(notdir $(DATA)))
agreement: $(STAMP) $(TRAIN_DATA) ## a second annotator against the first; the model and the baselines against both: make agreement [DATA=data/test.jsonl] [MODEL=...]
	$(CLI) agreement --data $(DATA) --second $(SECOND) --baselines data/train.jsonl --out reports/agreement/$(basename $(notdir $(DATA))) $(if $(MODEL),--model $(MODEL))

benchmark: $(STAMP) ## scoring speed per device, as ratios to the first: make benchmark [MODEL=...] [DEVICES="cpu cuda"]
	$(CLI) benchmark --data $(DATA) $(if $(MODEL),--model $(MODEL)) $(if $(DEVICES),--devices $(DEVICES))

##@ Data
$(TRAIN_DATA): $(RAW_FILES)
	$(PYTHON) -m star_scorer.datatools.corpus build

data: ## rebuild data/{train,dev,test,other_writers}.jsonl (and the training copies) from data/raw; any Python 3.11
	$(PYTHON) -m star_scorer.datatools.corpus build

data-check: $(STAMP) $(TRAIN_DATA) ## validate every dataset file against the schema and the labelling guide
	$(CLI) data check

data-stats: $(STAMP) $(TRAIN_DATA) ## print the datasheet's tables and the training data's habits against their targets
	$(CLI) data stats
