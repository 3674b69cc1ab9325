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

.PHONY: all test test-engine test-plugin test-qgis-versions qgis-chroots check-installer lint \
	system-deps engine-env requirements demo sample plugin bench clean

all: test

system-deps:
	./scripts/install_system_deps.sh

# The engine's own environment: wheels only, never mixed into QGIS's Python, at the versions
# pinned in requirements/ (`make requirements` refreshes them). pip honours the machine's own
# configuration: every pin is exact, so a mirror, extra index or find-links folder can only
# supply the same releases (a local copy of torch's 5 GB spares the download), never another
# torch. --no-cache-dir: a second copy of those wheels in pip's cache is disk nobody reads.
PIP_INSTALL := $(ENGINE_PY) -m pip install -q --no-cache-dir
engine-env: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml requirements/engine.txt requirements/dev.txt
	test -x $(ENGINE_PY) || "$$($(PYTHON) -c 'import os, sys; print(os.path.realpath(sys.executable))')" \
	  -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) -r requirements/engine.txt -r requirements/dev.txt
	$(PIP_INSTALL) --no-deps -e .
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
	$(MAKE) test-qgis-versions

test-engine: engine-env
	$(ENGINE_PY) -m pytest tests/engine -q -p no:cacheprovider

test-plugin: system-deps engine-env
	$(QGIS_PY) -m pytest tests/plugin -q -p no:cacheprovider

# The QGIS releases users run beside Debian 12's 3.22: Debian trixie (QGIS 3.40, Python 3.13)
# and sid (QGIS 3.44, Python 3.14), each in a cached debootstrap chroot (scripts/qgis_chroot.sh)
# with this tree and the engine venv mounted at the same paths. Each runs the whole plugin suite
# (about 4.5 min); 3.44 runs it in strict-API mode, without the enum aliases QGIS 4 removed
# (tests/plugin/strict_api.py). QGIS_SUITES= (empty) skips them; NEWER_QGIS_TESTS narrows them.
QGIS_SUITES ?= trixie sid
STRICT_SUITE ?= sid
NEWER_QGIS_TESTS ?= tests/plugin
AS_ROOT := $(if $(filter 0,$(shell id -u)),,sudo -E)

qgis-chroots:
	for suite in $(QGIS_SUITES); do $(AS_ROOT) ./scripts/qgis_chroot.sh build $$suite || exit 1; done

test-qgis-versions: engine-env qgis-chroots
	for suite in $(QGIS_SUITES); do \
	  strict=$$([ $$suite = "$(STRICT_SUITE)" ] && echo 1 || echo 0); \
	  echo "== QGIS in Debian $$suite (strict API: $$strict)"; \
	  FLAIR_QGIS_STRICT_API=$$strict $(AS_ROOT) ./scripts/qgis_chroot.sh run $$suite \
	    python3 -m pytest $(NEWER_QGIS_TESTS) -q -p no:cacheprovider || exit 1; \
	done

# The installer end to end on a newer Python: in the trixie chroot (Python 3.13, no pip
# configuration), flair:install_engine builds an engine venv from PyPI alone (PyTorch's own
# index is unreachable here, so it falls back to PyPI's torch, about 5 GB) and maps with it.
check-installer: qgis-chroots
	$(AS_ROOT) ./scripts/qgis_chroot.sh run trixie ./scripts/check_installer.sh

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
