# Two commands for a fresh machine: `make demo` composes a song, `make test` runs the tests.
# Each creates the virtual environment it needs in .venv (Python 3.11+).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The install builds the C extension in place (setup.py), so it is redone when its source changes.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml setup.py synth/learn/_ppmcore.c | cksum | cut -d' ' -f1)
# The runtime dependencies and setuptools as wheels, so that tests/test_wheel.py builds and
# installs synth's wheel offline; filled when missing and again when pyproject.toml changes.
WHEELHOUSE := $(VENV)/wheelhouse
WHEELS := $(WHEELHOUSE)/.filled-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: demo test browser bench quality benchmark dataset clean

$(STAMP): pyproject.toml setup.py synth/learn/_ppmcore.c | $(WHEELS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# A .venv from before the distribution was named synth-melody: drop the old name first.
	$(BIN)/python -m pip uninstall -qq --yes synth
	# compat: the editable install is a plain path entry, not an import hook (a hook costs
	# about 15 ms at every start, 3 % of compose's budget); it builds synth/learn/_ppmcore.c in place.
	$(BIN)/python -m pip install --quiet -e ".[train,dev]" --config-settings editable_mode=compat
	# Byte-compile synth as a regular install does: an editable one under
	# PYTHONDONTWRITEBYTECODE would otherwise compile every module on every run.
	$(BIN)/python -m compileall -q synth
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

$(WHEELS):
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	rm -rf $(WHEELHOUSE) && mkdir -p $(WHEELHOUSE)
	$(BIN)/python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > $(WHEELHOUSE)/requirements.txt
	$(BIN)/python -m pip wheel --quiet --wheel-dir $(WHEELHOUSE) -r $(WHEELHOUSE)/requirements.txt "setuptools>=77"
	touch $(WHEELS)

demo: $(STAMP)
	$(BIN)/synth compose --notes 200 --seed 7 --out out/demo.wav --midi out/demo.mid --plot out/demo.png --overwrite

test: $(STAMP) browser
	$(BIN)/python -m pytest

# The studio's browser tests drive Debian's chromium; install it where apt-get can (they skip
# without it, and fail instead under SYNTH_REQUIRE_BROWSER=1, as .ci/run sets).
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver >/dev/null) \
		|| echo "note: could not install chromium and chromium-driver: the studio's browser tests will skip"; \
	fi

bench: $(STAMP)
	for script in bench/*.py; do [ $$script = bench/quality.py ] || $(BIN)/python $$script || exit 1; done

# The quality benchmark: trains on bench/corpus/train for at most 20 minutes, then scores.
quality: $(STAMP)
	[ -d bench/corpus/train ] || $(MAKE) benchmark
	$(BIN)/python bench/quality.py

benchmark: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dataset]"
	$(BIN)/python tools/build_benchmark.py

dataset: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dataset]"
	$(BIN)/python tools/build_dataset.py
	$(BIN)/python tools/describe_dataset.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis synth/learn/_ppmcore*.so
