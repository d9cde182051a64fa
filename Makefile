# Two entry points for a fresh machine; each makes its own virtual environment in .venv.
#   make demo   set up, migrate the bundled examples (show the diff, write a copy), convert TinyNet's
#               weights, then prove the migration numerically
#   make test   set up (including PyTorch and MindSpore) and run the whole test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[verify,lsp,dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	rm -rf build/demo && mkdir -p build/demo
	$(VENV)/bin/torch2ms migrate --diff examples/ ; test $$? -le 1
	$(VENV)/bin/torch2ms migrate examples/ --out build/demo --report build/demo/report.md
	@echo "--- migrated copy written to build/demo/, report in build/demo/report.md"
	cd examples && ../$(PY) run_tinynet.py --save ../build/demo/tinynet.pth
	$(VENV)/bin/torch2ms convert-ckpt build/demo/tinynet.pth build/demo/tinynet.ckpt --source examples/tinynet/ \
		--verify --model 'TinyNet()' --input-shape 2,3,32,32
	$(VENV)/bin/torch2ms verify examples/tinynet/model.py --model 'TinyNet()' --input-shape 2,3,32,32
	$(VENV)/bin/torch2ms verify examples/

test: $(STAMP)
	TORCH2MS_REQUIRE_FRAMEWORKS=1 $(PY) -m pytest -q

clean:
	rm -rf $(VENV) build
