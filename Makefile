# Two set-up commands: `make demo` and `make test`. Each creates/refreshes .venv from
# pyproject.toml and the pinned versions in requirements.lock, so a fresh clone needs only python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint bench clean data bench-backtest chromium

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/twin demo --out demo-output

# the suite without the long integration tests (a real Tryton ERP, optimizer-vs-baseline runs),
# on TEST_WORKERS pytest-xdist processes: half of it waits on real servers (uvicorn, PostgreSQL,
# Dask, Chromium), so two workers overlap that waiting even on 2 cores; CI runs both targets
TEST_WORKERS ?= 2
test: $(STAMP) data chromium
	$(BIN)/python -m pytest -m "not slow" -n $(TEST_WORKERS)

test-slow: $(STAMP) data
	$(BIN)/python -m pytest -m slow

# Debian's Chromium for the dashboard's real-browser test (Playwright never downloads one):
# installed when absent if we are root; otherwise that test skips and the summary says why
chromium:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] \
		&& { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; } \
		|| echo "note: no /usr/bin/chromium and not root: the browser test will be skipped"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_twin.py

# Dominick's orange juice (real weekly prices, deals, feature ads) from Debian's r-cran-bayesm
# (GPL-2+; data from the Kilts Center, academic use) into the git-ignored data/external/.
# If apt cannot fetch it, the real-data tests skip and say why.
DOMINICKS := data/external/bayesm/usr/lib/R/site-library/bayesm/data/orangeJuice.rda
data: $(DOMINICKS)

$(DOMINICKS):
	@mkdir -p data/external
	@cd data/external && { ls r-cran-bayesm_*.deb >/dev/null 2>&1 \
		|| apt-get download r-cran-bayesm 2>/dev/null \
		|| { apt-get update -qq && apt-get download r-cran-bayesm; }; } \
		&& dpkg-deb -x r-cran-bayesm_*.deb bayesm \
		|| echo "warning: could not fetch r-cran-bayesm; Dominick's tests will be skipped"

bench-backtest: $(STAMP) data
	$(BIN)/python benchmarks/bench_backtest.py

clean:
	rm -rf $(VENV) demo-output
