# The front door. `make demo` then `make test` is the whole set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
CUSTOMERS ?= 5000
SEED ?= 42
WORKSPACE ?= data
export CDP_WORKSPACE := $(abspath $(WORKSPACE))
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help venv spark browser demo run test test-fast test-engines ui serve notebooks bench lint format clean

help:
	@echo "make demo   create .venv, generate $(CUSTOMERS) demo customers into $(WORKSPACE)/, run the pipeline"
	@echo "make test   run the test suite (with the Spark extra)"
	@echo "make test-engines  one workspace on DuckDB and on Spark, same results (about 5 min)"
	@echo "make test-fast  the tests without the end-to-end ones (marked slow)"
	@echo "make spark  add the Spark extra to .venv (cdp.yml engine: spark)"
	@echo "make ui     open the Dagster UI on the workspace (http://127.0.0.1:3000)"
	@echo "make serve  the agent console and profile API on the workspace (http://127.0.0.1:8000)"
	@echo "make notebooks  JupyterLab on the analyst notebooks in notebooks/"
	@echo "make bench  measure every stage at scale against plain Splink (writes BENCHMARKS.md)"
	@echo "make lint   ruff, and sqlfluff with the dbt templater"

# The venv is rebuilt when the pinned set or the package metadata changes. Bytecode is
# compiled at install time, as pip does: every `cdp` command (and each test's subprocess)
# then starts from .pyc files instead of compiling Dagster, dbt and DuckDB's Python
# sources again, which matters where PYTHONDONTWRITEBYTECODE is set (`cdp profile`
# answers in under half a second only with it).
# Quiet (one line instead of each command): `make demo` stays short on a fresh machine.
$(BIN)/.installed: requirements.lock pyproject.toml
	@echo "installing the locked requirements into $(VENV) (once; about a minute)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	@$(BIN)/uv pip sync -q --compile-bytecode --python $(BIN)/python requirements.lock
	@$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@$(BIN)/python -m compileall -q cdp
	@touch $@

venv: $(BIN)/.installed

# The Spark extra (cdp.yml `engine: spark`, docs/scale-out.md), pinned in
# requirements-spark.lock. Splink's Spark dialect fails under the compiled sqlglot
# (sqlglotc, pulled in by dagster-dbt): it is removed, and sqlglot runs interpreted
# (sqlglotrs goes too: sqlglot no longer uses it, and warns on every import beside it).
# PySpark is published as a source archive only. Online, uv asks the index again and
# builds it into a wheel each time (about 35 s of CPU); offline it installs the wheel it
# built before, in a second. So the cache first, the index when the cache lacks it.
$(BIN)/.spark-installed: requirements-spark.lock $(BIN)/.installed
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python --offline \
		-r requirements-spark.lock 2>/dev/null || \
		$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements-spark.lock
	$(BIN)/uv pip uninstall -q --python $(BIN)/python sqlglotc sqlglotrs
	touch $@

spark: $(BIN)/.spark-installed

demo: venv
	@$(BIN)/cdp generate --customers $(CUSTOMERS) --seed $(SEED)
	@$(BIN)/cdp run

run: venv
	$(BIN)/cdp run

# Headless Chromium for the UI test (Playwright's own browser download is not reachable).
browser:
	test -x /usr/bin/chromium || { $(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; }

# On every core (pytest-xdist), each test file on one worker so its module fixtures are
# built once; the demo run (a session fixture) is made once and copied to each worker.
# The longest files start first (marker `takes`, tests/conftest.py), in that order.
# With the Spark extra, so the Spark UDF parity tests run too. The one test that runs a
# whole workspace on both engines takes about five minutes of JVM start-ups and per-model
# Spark jobs: it is `make test-engines`, which CI (.ci/run) runs after this. The SQL style
# check (sqlfluff) is `make lint`, which CI runs before it.
test: venv spark browser
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -p no:cacheprovider \
		-n auto --dist loadfile --no-loadscope-reorder --durations=15 -m "not (spark and slow)"

test-engines: venv spark
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -p no:cacheprovider \
		-m "spark and slow"

# The same without the end-to-end tests (marked slow): a minute or two.
test-fast: venv spark
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -p no:cacheprovider \
		-n auto --dist loadfile --no-loadscope-reorder -m "not slow"

# `dagster dev` runs the webserver and the daemon, which ticks the landing sensor (on by
# default) and the nightly schedule (switched on here by CDP_SCHEDULE_ON=1). It is started
# through dagster_project.serve so that SIGTERM stops it even when run in the background.
ui: venv
	test -f $(WORKSPACE)/cdp.yml || $(BIN)/cdp init $(WORKSPACE)
	mkdir -p $(CDP_WORKSPACE)/.cdp/dagster_home
	$(BIN)/cdp prepare
	DAGSTER_HOME=$(CDP_WORKSPACE)/.cdp/dagster_home CDP_SCHEDULE_ON=1 PATH="$(abspath $(BIN)):$$PATH" \
		$(BIN)/python -m dagster_project.serve dagster dev -m dagster_project.definitions \
		-h 127.0.0.1 -p 3000

# The agent console and the read-only profile API (`cdp serve`, docs in README.md).
serve: venv
	$(BIN)/cdp serve

# JupyterLab on the analyst notebooks over $(WORKSPACE). JupyterLab is in the `notebooks`
# extra, pinned in requirements-notebooks.lock (the tests need only the dev extra, so
# `make venv` leaves it out). The venv's JupyterLab opens the percent-format .py files as
# notebooks (jupytext) on a double click.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings
notebooks: venv
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements-notebooks.lock
	mkdir -p $(LAB_SETTINGS)
	echo '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}}}' \
		> $(LAB_SETTINGS)/overrides.json
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 \
		$(if $(SUDO),,--allow-root)

# With the Spark extra: the engines part measures DuckDB and Spark side by side.
bench: venv spark
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m bench.run

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	test -f $(WORKSPACE)/cdp.yml || $(BIN)/cdp init $(WORKSPACE)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m cdp.harmonise.lint $(WORKSPACE)

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Lock the dependency set again after changing pyproject.toml.
lock: venv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --no-header -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra notebooks -c requirements.lock \
		--python-version 3.11 --no-header -o requirements-notebooks.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra spark -c requirements.lock \
		--no-emit-package sqlglotc --no-emit-package sqlglotrs --python-version 3.11 --no-header \
		-o requirements-spark.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache dbt_models/target dbt_models/logs
