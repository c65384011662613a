# SOC Command Center: `make run` starts the product, `make test` checks everything.
# Both set up .venv first (only when requirements changed).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run replay eval test lint bench install system-deps clean

install: $(STAMP)

# llama-cpp-python is compiled for this machine first, without llama.cpp's AMX kernels
# (they crash on virtualised AMX CPUs), and never taken from pip's wheel cache
# (scripts/build-llama.sh); the rest then finds it installed. The last step proves the
# installed llama.cpp completes a one-token generation on the bundled model.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml scripts/build-llama.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.3
	bash scripts/build-llama.sh $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/soc model check
	touch $(STAMP)

# Debian packages some tests and the benchmark need (installed when running as root).
system-deps:
	bash scripts/system-deps.sh

# The command center on embedded defaults (.streamlit/config.toml: 127.0.0.1:8501;
# soc.toml: SQLite in data/, the local analyst chain). Without [[sources]] it
# replays one server's bundled sample logs (sshd, nginx, ufw; see data/samples/).
run: $(STAMP)
	$(BIN)/streamlit run app.py

# The same pipeline on the command line, printing what it found.
replay: $(STAMP)
	$(BIN)/soc replay data/samples/auth.log data/samples/nginx-access.log data/samples/ufw.log \
		--year 2025 --timezone UTC --analyst offline

# Precision and recall on generated, labelled traffic: legitimate users, attacks, and a
# 1,000,000-line public server's auth.log through the real pipeline (soc/evaluate/).
eval: $(STAMP)
	$(BIN)/soc eval --size full

lint: $(STAMP)
	$(BIN)/ruff check soc tests bench app.py console.py pages
	$(BIN)/ruff format --check soc tests bench app.py console.py pages
	$(BIN)/mypy

test: $(STAMP) system-deps lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	bash bench/setup.sh
	$(BIN)/python bench/bench_parse.py
	$(BIN)/python bench/bench_acquire.py
	$(BIN)/python bench/bench_detect.py
	$(BIN)/python bench/bench_pipeline.py
	$(BIN)/python bench/bench_analyze.py
	$(BIN)/python bench/bench_modelserver.py
	$(BIN)/python bench/bench_app.py
	$(BIN)/python bench/bench_similar.py
	$(BIN)/python bench/bench_policy.py
	$(BIN)/python bench/bench_hotpath.py
	$(BIN)/python bench/bench_regex.py
	$(BIN)/python bench/bench_state.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .bench
