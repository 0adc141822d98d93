# Parley: `make run` starts everything, `make test` runs the whole suite.
# Both install what is missing first (a virtualenv in .venv, the Kafka jars).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KAFKA_LIBS := deploy/kafka/target/libs/.fetched

.PHONY: install run test bench clean

install: $(STAMP) $(KAFKA_LIBS)

$(STAMP): requirements.lock pyproject.toml
	@echo "[parley] installing Python packages into $(VENV)..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --progress-bar on -r requirements.lock
	$(BIN)/pip install --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

$(KAFKA_LIBS): deploy/kafka/pom.xml
	@echo "[parley] fetching Apache Kafka jars from Maven Central (cached after the first run)..."
	mvn -B -f deploy/kafka/pom.xml package
	@touch $@

run: install
	@$(BIN)/python -m parley.platform.run

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf .run test-artifacts deploy/kafka/target
