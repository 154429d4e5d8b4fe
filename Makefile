# Two entry points: `make demo` and `make test`. Each creates (or reuses) .venv
# and installs everything it needs. TORCH_SPEC pins the CPU wheel this machine
# kind ships; override it elsewhere, e.g. `make test TORCH_SPEC=torch`.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
JOBS ?= 2
N ?= 1000

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

.PHONY: venv demo test test-slow bench fuzz
venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/logspike demo

test: $(VENV)/.installed
	$(PY) -m pytest -n $(JOBS) --dist worksteal -q

test-slow: $(VENV)/.installed
	$(PY) -m pytest -n $(JOBS) -q -m slow

bench: $(VENV)/.installed
	$(PY) -m logspike.model.bench_golden

# the random-network campaign over the contract's whole range (hw/fuzz.py): N packages
fuzz: $(VENV)/.installed
	$(VENV)/bin/logspike fuzz --packages $(N) --jobs $(JOBS) --out out/fuzz
