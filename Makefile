# Makefile: a thin wrapper over CMake. `make demo` and `make test` are the two commands of
# the README; each installs what is missing (tools/install-deps.sh) and builds first.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
MAKEFLAGS += --no-print-directory
CMAKE_FLAGS ?=

.PHONY: all deps build asan test test-fast demo fuzz bench bench-load bench-profile clean golden graphs

all: build

deps:
	@./tools/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DFLOW_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DFLOW_WERROR=ON -DFLOW_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# Every test twice: under ASan+UBSan, then the normal build (whose CTest summary ends the run).
test: build asan
	@echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer =="
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS)
	@echo "== tests =="
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-fast: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Rewrites the golden files of tests/diag, tests/disasm and tests/graph from the current
# compiler.
golden: build
	@for f in tests/diag/*.flow; do UPDATE_GOLDEN=1 sh tests/golden.sh diag $(BUILD)/flowc $$f; done
	@for f in tests/disasm/*.flow; do UPDATE_GOLDEN=1 sh tests/golden.sh disasm $(BUILD)/flowc $$f; done
	@for f in examples/flows/*.flow tests/graph/*.flow; do UPDATE_GOLDEN=1 sh tests/graph.sh $(BUILD)/flowc $$f; done

# Redraws the pictures of docs/lang/graphs.md (docs/img/graph-*.svg) with Graphviz.
graphs: build
	@sh tools/render-graphs.sh $(BUILD)/flowc

demo: build
	@sh tools/demo.sh $(BUILD)

fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DFLOW_FUZZ=ON -DFLOW_WERROR=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

bench: build
	@sh bench/run.sh $(BUILD)

# The webhook load benchmark (bench/load.sh): flowvm with Redis and in memory, and
# BuilderBot when node and npm are installed. Not a test: it measures.
bench-load: build
	@sh bench/load.sh $(BUILD)

# Where flowvm's instructions go per webhook (bench/profile.sh: callgrind, repeatable).
bench-profile: build
	@sh bench/profile.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz

# Regenerates the fuzz seed corpora (bytecode of the examples, encoded session states).
fuzz-corpus: build
	@$(BUILD)/tests/fuzz/gen_corpus examples/flows tests/fuzz/corpus
