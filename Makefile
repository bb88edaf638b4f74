# modelmon developer targets. `make test` is what CI (.ci/run) runs.
PYTHON ?= python3
PYTEST_ARGS ?=

.PHONY: demo install deps test lint typecheck pytest bench soak stack generate check-generated clean

demo: install
	modelmon demo

install:
	$(PYTHON) -m pip install -q -e .

# Test dependencies: the test extra from PyPI and the real Prometheus, Alertmanager and
# Pushgateway binaries (plus docker-compose for the compose file check) from Debian.
deps:
	scripts/install-test-deps.sh

test: deps lint typecheck pytest

lint:
	ruff check .
	ruff format --check .

typecheck:
	mypy

pytest:
	$(PYTHON) -m pytest $(PYTEST_ARGS)

bench: install
	$(PYTHON) benchmarks/bench_ingest.py
	$(PYTHON) benchmarks/bench_refresh.py
	$(PYTHON) benchmarks/bench_scrape.py
	$(PYTHON) benchmarks/bench_memory.py
	$(PYTHON) benchmarks/bench_collectors.py
	$(PYTHON) benchmarks/bench_labels.py
	$(PYTHON) benchmarks/bench_client.py
	$(PYTHON) benchmarks/bench_check.py

# 30 minutes of steady load; resident memory and latency over time (not part of CI).
soak: install
	$(PYTHON) benchmarks/soak.py

# The demo exporter with a local Prometheus and Alertmanager, no Docker needed.
stack: install
	scripts/stack.sh

# Regenerate the dashboards (from grafana/dashgen) and the Kubernetes PrometheusRule and
# dashboard ConfigMaps (from prometheus/rules and grafana/dashboards).
generate:
	$(PYTHON) grafana/generate.py
	$(PYTHON) scripts/gen_k8s.py

check-generated:
	$(PYTHON) grafana/generate.py --check
	$(PYTHON) scripts/gen_k8s.py --check

clean:
	rm -rf build dist *.egg-info exporter/*.egg-info .mypy_cache .ruff_cache
