# FLAIR land cover for QGIS: one-command set-up, tests, demo, plugin package.
#   make demo   installs what it needs, then maps a sample orthophoto through qgis_process
#   make test   installs what it needs, then runs the engine and plugin test suites
PYTHON ?= python3
VENV ?= .venv
ENGINE_PY := $(abspath $(VENV))/bin/python
QGIS_PY ?= /usr/bin/python3
QGIS_PROCESS ?= /usr/bin/qgis_process.bin
SAMPLE_DIR ?= sample
export QT_QPA_PLATFORM ?= offscreen
export FLAIR_ENGINE_PYTHON ?= $(ENGINE_PY)

.PHONY: all test test-engine test-plugin lint system-deps engine-env demo sample plugin bench clean

all: test

system-deps:
	./scripts/install_system_deps.sh

# The engine's own environment: wheels only, never mixed into QGIS's Python. torch and
# torchvision come together from PyPI (--isolated ignores a machine pip config that points at
# a torch wheel without a matching torchvision).
engine-env: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(ENGINE_PY) || $(PYTHON) -m venv $(VENV)
	$(ENGINE_PY) -m pip install --isolated -q --upgrade pip
	$(ENGINE_PY) -m pip install --isolated -q torch torchvision
	$(ENGINE_PY) -m pip install --isolated -q -e '.[dev]'
	touch $@

test: system-deps engine-env
	$(MAKE) lint
	$(MAKE) test-engine
	$(MAKE) test-plugin

test-engine: engine-env
	$(ENGINE_PY) -m pytest tests/engine -q -p no:cacheprovider

test-plugin: system-deps engine-env
	$(QGIS_PY) -m pytest tests/plugin -q -p no:cacheprovider

lint: engine-env
	$(VENV)/bin/ruff check engine flair_qgis tests scripts benchmarks

sample: engine-env
	mkdir -p $(SAMPLE_DIR)
	$(ENGINE_PY) scripts/make_sample.py $(SAMPLE_DIR)/ortho_rgbie.tif

demo: system-deps engine-env sample
	./scripts/demo.sh $(SAMPLE_DIR)

plugin:
	$(QGIS_PY) scripts/build_plugin_zip.py

bench: engine-env
	$(ENGINE_PY) benchmarks/bench_predict.py

clean:
	rm -rf dist build $(SAMPLE_DIR) .pytest_cache
