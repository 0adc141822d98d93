# Parley: `make run` starts everything, `make test` runs the whole suite.
# Both install what is missing first (a virtualenv in .venv, the Kafka jars).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KAFKA_LIBS := deploy/kafka/target/libs/.fetched

.PHONY: install chromium nginx deploy-tools run test bench chaos clean

install: $(STAMP) $(KAFKA_LIBS)

# The browser tests drive Debian's chromium through Playwright (executable_path, no
# `playwright install`). Installed only when missing; needs root (apt-get).
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "[parley] installing Debian's chromium for the browser tests..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "[parley] error: /usr/bin/chromium is missing and installing it needs root." >&2; \
		echo "[parley]        Install Debian's chromium package, then run make again:" >&2; \
		echo "[parley]          sudo apt-get update && sudo apt-get install -y chromium" >&2; \
		exit 1; \
	fi

# The production topology test (tests/topology) puts Debian's nginx in front of two
# gateways as the ingress. Installed only when missing; needs root (apt-get).
nginx:
	@if [ -x /usr/sbin/nginx ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "[parley] installing Debian's nginx for the topology test..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx; \
	else \
		echo "[parley] error: /usr/sbin/nginx is missing and installing it needs root." >&2; \
		echo "[parley]        Install Debian's nginx package, then run make again:" >&2; \
		echo "[parley]          sudo apt-get update && sudo apt-get install -y nginx" >&2; \
		exit 1; \
	fi

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

# The offline deploy checks (tests/deploy): promtool from Debian's prometheus package, and
# kustomize - kubectl's built-in one, or a pinned kustomize built from the Go module proxy
# into $(BIN) when kubectl is absent. Installed only when missing; apt-get needs root.
KUSTOMIZE_VERSION := v5.5.0
deploy-tools:
	@if command -v promtool >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "[parley] installing Debian's prometheus package (promtool) for the deploy checks..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; \
	else \
		echo "[parley] error: promtool is missing and installing it needs root:" >&2; \
		echo "[parley]          sudo apt-get update && sudo apt-get install -y prometheus" >&2; \
		exit 1; \
	fi
	@if command -v kubectl >/dev/null || [ -x $(BIN)/kustomize ]; then :; else \
		echo "[parley] building kustomize $(KUSTOMIZE_VERSION) into $(BIN)..."; \
		GOBIN=$(abspath $(BIN)) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION); \
	fi

test: install chromium nginx deploy-tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench

# Services, Kafka and PostgreSQL killed in turn under a supervisor while scripted clients
# chat (docs/chaos.md); report in test-artifacts/chaos. CHAOS_ARGS=--quick for the short one.
chaos: install
	$(BIN)/python -m chaos $(CHAOS_ARGS)

clean:
	rm -rf .run test-artifacts deploy/kafka/target
