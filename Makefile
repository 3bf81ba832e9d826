# The project's two commands (see README): `make train` runs the main job, `make test` the tests.
# Both build a virtualenv in .venv from nothing: a fresh machine needs only python3 and pip.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# 2 workers by default: CI machines have 2 cores
WORKERS ?= 2
EPOCHS ?= 3

.PHONY: train test deps data bench clean

$(VENV)/.deps: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# dev: pytest + hypothesis; bench: the peers (torch 2.13.0 CPU, scikit-learn, MiniSom)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	# pytorch-fid, the FID reference the tests compare with, without its dependencies: it pulls
	# torchvision, and PyPI's torchvision (a CUDA build) does not import beside the CPU torch.
	# The tests run its calculate_frechet_distance from the installed source with scipy.
	$(PY) -m pip install --quiet --no-deps pytorch-fid==0.3.0
	touch $@

deps: $(VENV)/.deps

# Fashion-MNIST from Debian's package where apt exists (elsewhere: set MINIGEN_DATA, see README)
data:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then echo "Fashion-MNIST: /usr/share/datasets/fashion-mnist"; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist; \
	else echo "no apt-get: put the four Fashion-MNIST IDX files in a folder and set MINIGEN_DATA to it"; fi

train: deps data
	$(VENV)/bin/minigen train vae --dataset fashion-mnist --epochs $(EPOCHS) --out runs/vae

test: deps
	$(PY) -m pytest -q -n $(WORKERS) --hypothesis-profile=ci tests

bench: deps data
	# results to benchmarks/results/<time>.json, the chart, and README's table
	$(PY) benchmarks/run.py --readme

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
