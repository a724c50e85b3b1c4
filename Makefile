# Two set-up commands that work on a fresh machine: `make demo` and `make test`.
# Both create .venv with pip when missing and install featkit into it (editable).

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.featkit-installed
# torch pair that installs from this machine's local files; pyproject keeps ranges for users.
TORCH_PIN = torch==2.14.1 torchvision==0.29.1

.PHONY: demo test bench weights clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

# The whole job on the ~20 sample photos (no download), about two minutes on 2 CPU cores: trains
# the default recipe, then search, clusters and matching beside the baselines, all in one
# report.html whose path it prints (examples/demo.py --help).
demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest -q

# Rebuild the shipped pretrained model featkit/pretrained/featkit-cae from scratch (about ten
# minutes on 2 CPU cores); its PROVENANCE.md says what it was trained on.
weights: $(STAMP)
	$(PY) bench/build_pretrained.py --overwrite

bench: $(STAMP)
	for f in bench/bench_*.py; do $(PY) $$f || exit 1; done

clean-venv:
	rm -rf $(VENV)
