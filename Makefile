# baracuda - the two commands a newcomer needs:
#   make demo   build and run the decoder-style demo (GPU when present, else CPU)
#   make test   build and run the whole test suite (CTest, then the Python suite in
#               python/tests over the library just built; PYTHON picks the interpreter)
# and, on a machine with an NVIDIA GPU:
#   make gpu-test   build for sm_80 and sm_90a and run every test with the GPU required
#   make gpu-test-python   pip-install the Python package offline, run its suite with the GPU
#                          required (CUDA tensors, gradcheck, torch.compile, CUDA graphs)
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
PYTHON ?= python3

.PHONY: all build test demo gpu-test gpu-test-python bench clean

all: build

build:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	./python/run_tests.sh $(BUILD) $(PYTHON)

demo: build
	./$(BUILD)/examples/bk_demo

gpu-test:
	./tests/gpu_test.sh

gpu-test-python:
	./python/gpu_check.sh

# bk_bench (ceilings, then every op row) and torch's SDPA peers in the same run;
# logs and CSVs go to $(BENCH_OUT) (default build-gpu/bench)
BENCH_OUT ?= build-gpu/bench
BENCH_FILTER ?=
bench:
	cmake -S . -B build-gpu -DCMAKE_CUDA_ARCHITECTURES="80;90a" >/dev/null
	cmake --build build-gpu -j $(JOBS) --target bk_bench
	mkdir -p $(BENCH_OUT)
	BK_BENCH_CSV=$(BENCH_OUT)/bk_bench.csv ./build-gpu/bench/bk_bench "$(BENCH_FILTER)" | tee $(BENCH_OUT)/bk_bench.txt
	python3 bench/torch_sdpa.py "$(BENCH_FILTER)" --csv $(BENCH_OUT)/torch.csv | tee $(BENCH_OUT)/torch.txt
	python3 bench/results_table.py $(BENCH_OUT) | tee $(BENCH_OUT)/table.md

clean:
	rm -rf $(BUILD) build-gpu
