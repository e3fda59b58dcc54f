# baracuda - the two commands a newcomer needs:
#   make demo   build and run the decoder-style demo (GPU when present, else CPU)
#   make test   build and run the whole test suite (CTest, then the Python suite in
#               python/tests over the library just built; PYTHON picks the interpreter)
#   make test-sanitize   the CPU library and every test under ASan + UBSan (build-sanitize)
#   make fuzz            the libFuzzer targets of fuzz/ for FUZZ_SECONDS each (clang, build-fuzz)
# and, on a machine with an NVIDIA GPU:
#   make gpu-test   build for sm_80 and sm_90a and run every test with the GPU required
#   make gpu-test-python   pip-install the Python package offline, run its suite with the GPU
#                          required (CUDA tensors, gradcheck, torch.compile, CUDA graphs)
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
PYTHON ?= python3

.PHONY: all build test demo gpu-test gpu-test-python gpu-test-ring bench-ring bench clean test-sanitize fuzz

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

# The CPU library, every test and the corpus replays built with -fsanitize=address,undefined
# (-fno-sanitize-recover=all: the first report fails the test), CUDA left out. clang when
# present, else gcc (SAN_CC=gcc to choose).
SAN_BUILD ?= build-sanitize
SAN_CC ?= $(shell command -v clang >/dev/null 2>&1 && echo clang || echo gcc)
test-sanitize:
	cmake -S . -B $(SAN_BUILD) -DCMAKE_C_COMPILER=$(SAN_CC) -DBK_CUDA=OFF -DBK_SANITIZE=address,undefined $(CMAKE_FLAGS) >/dev/null
	cmake --build $(SAN_BUILD) -j $(JOBS)
	cd $(SAN_BUILD) && UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

# libFuzzer (clang): each target of fuzz/ for FUZZ_SECONDS seconds, one after the other,
# starting from the committed seeds (fuzz/corpus/<target>, read only); new inputs go to
# $(FUZZ_BUILD)/corpus/<target>, crashes to $(FUZZ_BUILD)/<target>-crash-*. Fails on
# the first crash, sanitizer report, fuzz assertion or timeout (FUZZ_TIMEOUT s per input).
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 20
FUZZ_TIMEOUT ?= 10
FUZZ_TARGETS ?= attention kvcache paged alibi ssd
fuzz:
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DBK_CUDA=OFF -DBK_FUZZ=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) $(foreach t,$(FUZZ_TARGETS),--target fuzz_$(t))
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/fuzz_$$t; \
	  echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
	  OMP_NUM_THREADS=1 ./$(FUZZ_BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_TIMEOUT) \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/fuzz_$$t- $(FUZZ_BUILD)/corpus/fuzz_$$t \
	    fuzz/corpus/fuzz_$$t > $(FUZZ_BUILD)/fuzz_$$t.log 2>&1 \
	    || { tail -n 80 $(FUZZ_BUILD)/fuzz_$$t.log; echo "fuzz_$$t FAILED (log: $(FUZZ_BUILD)/fuzz_$$t.log)"; exit 1; }; \
	  grep -E "DONE|stat::number_of_executed_units|stat::average_exec_per_sec" $(FUZZ_BUILD)/fuzz_$$t.log; \
	done

gpu-test-python:
	./python/gpu_check.sh

# ring_attention on NGPU GPUs over NCCL: the check against one-GPU attention, then the
# benchmark (TFLOP/s per GPU and scaling efficiency); the library from build-gpu (sm_90a).
NGPU ?= 2
RING_ENV = BARACUDA_LIBRARY=$(CURDIR)/build-gpu/libbaracuda.so.0 PYTHONPATH=$(CURDIR)/python$${PYTHONPATH:+:$$PYTHONPATH} \
  NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1
gpu-test-ring:
	cmake -S . -B build-gpu -DCMAKE_CUDA_ARCHITECTURES="80;90a" >/dev/null
	cmake --build build-gpu -j $(JOBS) --target baracuda_shared
	$(RING_ENV) torchrun --nproc_per_node $(NGPU) python/examples/ring_attention.py
bench-ring: gpu-test-ring
	$(RING_ENV) torchrun --nproc_per_node $(NGPU) bench/ring_bench.py

# bk_bench (ceilings, then every op row), torch's SDPA peers, ours and torch's SDPA on the
# very same tensors (same_tensors.py), FlashInfer's paged peers and mamba_ssm's ssd peers in
# the same run; logs and CSVs go to $(BENCH_OUT) (default
# build-gpu/bench). The peer packages are installed from .peers/ (git-ignored; fill it with
# cp ../shared/peers/* .peers/) into $(PEERS_SITE) when they are not there yet; without .peers/
# the FlashInfer and mamba_ssm peers say they are skipped.
BENCH_OUT ?= build-gpu/bench
BENCH_FILTER ?=
PEERS_SITE ?= /tmp/bk-peers-site
PEERS_ENV = PYTHONPATH=$(PEERS_SITE)$${PYTHONPATH:+:$$PYTHONPATH} FLASHINFER_CUDA_ARCH_LIST=$${FLASHINFER_CUDA_ARCH_LIST:-9.0a}
bench:
	cmake -S . -B build-gpu -DCMAKE_CUDA_ARCHITECTURES="80;90a" >/dev/null
	cmake --build build-gpu -j $(JOBS) --target bk_bench baracuda_shared
	mkdir -p $(BENCH_OUT)
	BK_BENCH_CSV=$(BENCH_OUT)/bk_bench.csv ./build-gpu/bench/bk_bench "$(BENCH_FILTER)" | tee $(BENCH_OUT)/bk_bench.txt
	python3 bench/torch_sdpa.py "$(BENCH_FILTER)" --csv $(BENCH_OUT)/torch.csv | tee $(BENCH_OUT)/torch.txt
	BARACUDA_LIBRARY=$(CURDIR)/build-gpu/libbaracuda.so PYTHONPATH=python \
	  python3 bench/same_tensors.py "$(BENCH_FILTER)" | tee $(BENCH_OUT)/same_tensors.txt
	@if [ -d .peers ] && ! $(PEERS_ENV) python3 -c "import importlib.util as u, sys; \
	    sys.exit(not all(u.find_spec(m) for m in ('flashinfer', 'tvm_ffi', 'mamba_ssm')))" 2>/dev/null; then \
	  echo "peers: installing .peers/ into $(PEERS_SITE)"; \
	  mkdir -p $(PEERS_SITE) && python3 -m pip install -q --no-index --no-deps --target $(PEERS_SITE) .peers/*.whl \
	    && tar -xJf .peers/flashinfer-*.tar.xz -C $(PEERS_SITE) && tar -xzf .peers/mamba_ssm-*.tar.gz -C $(PEERS_SITE) \
	    || echo "peers: installing .peers/ into $(PEERS_SITE) failed"; \
	fi
	$(PEERS_ENV) python3 bench/flashinfer_peers.py "$(BENCH_FILTER)" --csv $(BENCH_OUT)/flashinfer.csv | tee $(BENCH_OUT)/flashinfer.txt
	$(PEERS_ENV) python3 bench/mamba_peers.py "$(BENCH_FILTER)" --csv $(BENCH_OUT)/mamba.csv | tee $(BENCH_OUT)/mamba.txt
	python3 bench/results_table.py $(BENCH_OUT) | tee $(BENCH_OUT)/table.md

clean:
	rm -rf $(BUILD) build-gpu $(SAN_BUILD) $(FUZZ_BUILD)
