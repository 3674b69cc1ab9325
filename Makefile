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

.PHONY: all test test-engine test-plugin lint system-deps engine-env requirements demo sample plugin bench clean

all: test

system-deps:
	./scripts/install_system_deps.sh

# The engine's own environment: wheels only, never mixed into QGIS's Python, at the versions
# pinned in requirements/ (`make requirements` refreshes them). --isolated ignores the PIP_*
# variables and the user's pip configuration (a machine's find-links or extra index holding a
# torch wheel without a matching torchvision).
engine-env: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml requirements/engine.txt requirements/dev.txt
	test -x $(ENGINE_PY) || $(PYTHON) -m venv $(VENV)
	$(ENGINE_PY) -m pip install --isolated -q --upgrade pip
	$(ENGINE_PY) -m pip install --isolated -q -r requirements/engine.txt -r requirements/dev.txt
	$(ENGINE_PY) -m pip install --isolated -q --no-deps -e .
	touch $@

# Refresh the pins: the newest torch and engine dependencies in a fresh venv, frozen. The engine
# is frozen before the dev tools go in, so dev.txt holds only what they add. A torch build's own
# packages (CUDA libraries, triton) exist on Linux only and come from torch's index, so their
# pins carry torch's marker and flair:install_engine leaves them to the torch it installs.
PIN_VENV ?= build/pin-venv
PIN_PY := $(PIN_VENV)/bin/python
PIN_FREEZE := $(PIN_PY) -m pip freeze --isolated --all --exclude-editable | grep -v '^pip=='
requirements:
	rm -rf $(PIN_VENV)
	$(PYTHON) -m venv $(PIN_VENV)
	$(PIN_PY) -m pip install --isolated -q --upgrade pip
	$(PIN_PY) -m pip install --isolated -q torch torchvision
	$(PIN_PY) -m pip install --isolated -q -e .
	$(PIN_FREEZE) > $(PIN_VENV)/engine.freeze
	$(PIN_PY) -m pip install --isolated -q -e '.[dev]'
	$(PIN_FREEZE) > $(PIN_VENV)/all.freeze
	mkdir -p requirements
	{ echo '# The engine environment, pinned: written by `make requirements` (see README.md).'; \
	  echo "# Frozen with Python $$($(PIN_PY) -c 'import platform; print(platform.python_version())') on $$(uname -sm)."; \
	  sed -E 's/^((nvidia-|cuda-|triton==).*)$$/\1 ; platform_system == "Linux"/' $(PIN_VENV)/engine.freeze; \
	} > requirements/engine.txt
	{ echo '# Development tools, pinned: written by `make requirements` with requirements/engine.txt.'; \
	  grep -vxFf $(PIN_VENV)/engine.freeze $(PIN_VENV)/all.freeze; \
	} > requirements/dev.txt
	rm -rf $(PIN_VENV)

test: system-deps engine-env
	$(MAKE) lint
	$(MAKE) test-engine
	$(MAKE) test-plugin

test-engine: engine-env
	$(ENGINE_PY) -m pytest tests/engine -q -p no:cacheprovider

test-plugin: system-deps engine-env
	$(QGIS_PY) -m pytest tests/plugin -q -p no:cacheprovider

LINTED := engine flair_qgis tests scripts benchmarks
lint: engine-env
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

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
