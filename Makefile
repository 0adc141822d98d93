# Parley: `make run` starts everything, `make test` runs the whole suite.
# Both install what is missing first (a virtualenv in .venv, the Kafka jars).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KAFKA_LIBS := deploy/kafka/target/libs/.fetched

.PHONY: install system-packages kustomize container-tools run test compose-test bench chaos clean

install: $(STAMP) $(KAFKA_LIBS)

# Debian packages the suite drives as real components, installed only when missing, in
# one apt-get run (needs root):
#   chromium    the browser tests (Playwright with executable_path, no `playwright install`)
#   nginx       the ingress in front of two gateways in the topology test (tests/deploy/test_production_topology.py)
#   prometheus  promtool, which checks the alert rules (tests/deploy)
system-packages:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	$(call install_missing,the test suite)

# Installs Debian's $$missing (set by the recipe before it) for $(1), as root; otherwise
# says what to install and stops.
define install_missing
if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "[parley] installing Debian's$$missing for $(1)..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
		echo "[parley] error: $(1) needs Debian's$$missing, and installing them needs root." >&2; \
		echo "[parley]        Install them, then run make again:" >&2; \
		echo "[parley]          sudo apt-get update && sudo apt-get install -y$$missing" >&2; \
		exit 1; \
	fi
endef

$(STAMP): requirements.lock requirements-dev.lock pyproject.toml
	@echo "[parley] installing Python packages into $(VENV)..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --progress-bar on -r requirements-dev.lock
	$(BIN)/pip install --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

$(KAFKA_LIBS): deploy/kafka/pom.xml
	@echo "[parley] fetching Apache Kafka jars from Maven Central (cached after the first run)..."
	mvn -B -f deploy/kafka/pom.xml package
	@touch $@

run: install
	@$(BIN)/python -m devstack.run

# kustomize for the offline deploy checks (tests/deploy): kubectl's built-in one, or a
# pinned kustomize built from the Go module proxy into $(BIN) when kubectl is absent.
KUSTOMIZE_VERSION := v5.5.0
kustomize:
	@if command -v kubectl >/dev/null || [ -x $(BIN)/kustomize ]; then :; else \
		echo "[parley] building kustomize $(KUSTOMIZE_VERSION) into $(BIN)..."; \
		GOBIN=$(abspath $(BIN)) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION); \
	fi

test: install system-packages kustomize
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# deploy/compose.yaml in real containers (tests/deploy/containers, docs/containers.md): podman, runc
# and mmdebstrap from Debian, and Docker Compose built from its Go module into $(BIN).
COMPOSE_VERSION := v2.28.1
container-tools:
	@missing=""; \
	for tool in podman runc mmdebstrap; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	$(call install_missing,the container test)
	@if [ ! -x $(BIN)/docker-compose ]; then \
		echo "[parley] building Docker Compose $(COMPOSE_VERSION) into $(BIN)..."; \
		tmp=$$(mktemp -d) && GOBIN=$$tmp go install github.com/docker/compose/v2/cmd@$(COMPOSE_VERSION) \
		&& mv $$tmp/cmd $(BIN)/docker-compose && rmdir $$tmp; \
	fi

compose-test: install container-tools
	$(BIN)/python -m pytest tests/deploy/containers -m containers -p no:cacheprovider $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench

# Services, Kafka and PostgreSQL killed in turn under a supervisor while scripted clients
# chat (docs/chaos.md); report in test-artifacts/chaos. CHAOS_ARGS=--quick for the short one.
chaos: install
	$(BIN)/python -m chaos $(CHAOS_ARGS)

clean:
	rm -rf .run test-artifacts deploy/kafka/target
