# The two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv on first use (exact CPU pins from constraints-cpu.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export WANDB_SILENT := true

.PHONY: demo test test-slow bench-quality bench-throughput clean

$(STAMP): pyproject.toml constraints-cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints-cpu.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/genre-tagger demo --workdir demo_output

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench-quality: $(STAMP)
	$(BIN)/python benchmarks/quality.py

bench-throughput: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf demo_output .pytest_cache
