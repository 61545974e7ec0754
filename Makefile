# Thin wrapper over CMake for the commands the README gives.
#   make run    build, then generate text with the bundled model
#   make test   build and run every test
#   make deps   install the Debian packages the build needs (as root)
#   make asan   unit tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz   build the libFuzzer targets with clang and run each for FUZZ_SECONDS
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
MODEL ?= models/bitnet-kjv-tiny.gguf
PROMPT ?= In the beginning

.PHONY: all build run test deps asan fuzz clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@if [ -f $(MODEL) ]; then \
	  ./$(BUILD)/tools/bitnet/bitnet run -m $(MODEL) -p "$(PROMPT)" -n 96 --seed 1; \
	else \
	  echo "($(MODEL) is not here: using llama2.c's stories260K instead)"; \
	  ./$(BUILD)/tools/bitnet/bitnet run -m tests/data/gguf/stories260K.gguf -p "Once upon a time" -n 96 --seed 1; \
	fi

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBITNET_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS) -L unit

fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DBITNET_FUZZ=ON -DBITNET_BUILD_TESTS=OFF >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh build-fuzz

clean:
	rm -rf $(BUILD) build-asan build-fuzz
