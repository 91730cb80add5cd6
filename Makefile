# The two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv on first use (exact CPU pins from constraints-cpu.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Pretrained musicnn weights (ISC): the MSD model the default config uses ships inside
# genre_tagger; the wheel adds the MTT model (zero-shot `pretrained:musicnn-mtt`) and the
# checkpoint files the TF-reader tests read. Its declared TensorFlow-1 / numpy<1.17 requirements
# cannot resolve on current Python and are not needed (genre_tagger reads the files itself).
MUSICNN_WHEEL := musicnn==0.1.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export WANDB_SILENT := true

.PHONY: demo test test-slow bench-quality bench-throughput clean chromium

$(STAMP): pyproject.toml constraints-cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints-cpu.txt -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps $(MUSICNN_WHEEL)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/genre-tagger demo --workdir demo_output

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q

# Debian's chromium for the `serve` page's browser test (Playwright drives it; Playwright's own
# browser download is unreachable). Installed once, as root; without it that test is skipped.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
	  || echo "note: chromium not installed (needs root: apt-get install -y chromium); the browser test is skipped"; }

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench-quality: $(STAMP)
	$(BIN)/python benchmarks/quality.py

bench-throughput: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf demo_output .pytest_cache
