# The two commands: `make demo` (the main job on the embedded synthetic data) and `make test`.
# Both create .venv and install everything the project needs; nothing is installed by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DATA := data/sample-siim-isic
DEMO_RUN := demo

.PHONY: install demo test export clean-demo

$(BIN)/melanoma: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[all,dev]"  # every optional part (demo, onnx, dicom, kaggle, multi-gpu) + dev tools
	touch $@

install: $(BIN)/melanoma

demo: install
	$(BIN)/melanoma sample-data $(DEMO_DATA)
	$(BIN)/melanoma folds $(DEMO_DATA)
	$(BIN)/melanoma train $(DEMO_DATA) --name $(DEMO_RUN)
	$(BIN)/melanoma predict $(DEMO_DATA) --model models/$(DEMO_RUN) --out submissions/$(DEMO_RUN).csv
	@echo "Submission written: submissions/$(DEMO_RUN).csv"

test: install
	$(BIN)/python -m pytest -q
	$(BIN)/nbdev-test --n-workers 2

export: install
	$(BIN)/nbdev-export

# what `make demo` wrote: the synthetic data, its model and its submission
clean-demo:
	rm -rf $(DEMO_DATA) models/$(DEMO_RUN) submissions/$(DEMO_RUN).csv
