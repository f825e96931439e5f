# segcore: the two commands for a fresh machine are `make journey` (the main job) and `make test`.
# Both create the virtualenv .venv/ first (torch CPU build by default; TORCH=... to choose another) with the
# `segcore` Jupyter kernel, so `.venv/bin/jupyter lab` opens the notebooks ready to run.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
PROFILE ?= quick
OUT    ?= reports/latest
DATA   ?=
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.segcore-installed

.PHONY: setup journey test clean-venv

$(STAMP): setup.py settings.ini requirements-lock.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c requirements-lock.txt "setuptools<81" wheel
	$(BIN)/python -m pip install -q -c requirements-lock.txt "$(TORCH)"
	$(BIN)/python -m pip install -q -c requirements-lock.txt -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name segcore --display-name segcore >/dev/null
	touch $@

setup: $(STAMP)

journey: $(STAMP)
	$(BIN)/segcore journey $(if $(DATA),--data $(DATA)) --profile $(PROFILE) --out $(OUT)

test: $(STAMP)
	$(BIN)/ruff check segcore nbs tests
	$(BIN)/nbdev_test --n_workers 2
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests

clean-venv:
	rm -rf $(VENV)
