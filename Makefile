# xcall — a thin front end to the CMake presets (CMakePresets.json).
#
#   make run        build the release preset and run the shootdown example
#   make test       debug build (warnings are errors), every CTest test
#   make test-asan  unit + stress + torture tests under AddressSanitizer + UBSan
#   make test-tsan  unit + stress + torture tests under ThreadSanitizer
#   make torture    xcall-torture, a minute per engine (release build)
#   make bench      xcall-bench (full; bench-quick, bench-micro too)
#   make build      build everything in the release preset
#   make install    release build of the libraries and xcall-torture, then
#                   `cmake --install` into PREFIX (default /usr/local; DESTDIR too)
#   make package    the same files as a Debian package (CPack), in build/package
#   make format     clang-format every C/C++ file in place (.clang-format)
#   make format-check  fail, listing them, if any file is not formatted
#   make clean      remove build/
#
# Variables: ARGS (passed to the example by `make run`), CTEST_ARGS (extra
# ctest flags, e.g. CTEST_ARGS='-L unit' or '-R cpumask'), JOBS (build jobs),
# PREFIX and DESTDIR (make install).

SHELL := /bin/bash
.DEFAULT_GOAL := help

CMAKE ?= cmake
CTEST ?= ctest
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
ARGS ?=
CTEST_ARGS ?=
PREFIX ?= /usr/local
DESTDIR ?=

SHOOTDOWN := build/release/examples/shootdown/shootdown

# $(call configure_build,<preset>[,<cmake --build flags>])
define configure_build
	$(CMAKE) --preset $(1)
	$(CMAKE) --build --preset $(1) --parallel $(JOBS) $(2)
endef

# $(call run_tests,<preset>)
define run_tests
	$(CTEST) --preset $(1) $(CTEST_ARGS)
endef

TORTURE := build/release/tools/torture/xcall-torture
TORTURE_ARGS ?= --duration 60 --cpus 4 --threads 3 --onoff-interval 0.2 --mask-churn 2 --nesting 2 --crowd slots+4 --stat-interval 10

BENCH := build/release/bench/xcall-bench
MICRO := build/release/bench/micro/xcall-micro
BENCH_ARGS ?=
# Optional peers of the bench: without them the DPDK and libuv rows say so
# and the charts are skipped.
BENCH_PACKAGES := libdpdk-dev libuv1-dev gnuplot-nox

# What `make install` and `make package` build: everything cmake --install
# lays out (not the tests, examples or bench).
INSTALL_TARGETS := xcall_static xcall_shared xcall-torture

.PHONY: help deps build install package run test test-asan test-tsan torture bench bench-deps bench-quick bench-micro format format-check clean

help:
	@echo "xcall make targets:"
	@echo "  make run        build (release) and run examples/shootdown; ARGS='--seconds 3' to pass flags"
	@echo "  make test       build (debug, -Werror) and run every test: unit, stress, example, install"
	@echo "  make test-asan  unit + stress tests under AddressSanitizer + UndefinedBehaviorSanitizer"
	@echo "  make test-tsan  unit + stress tests under ThreadSanitizer"
	@echo "  make torture    xcall-torture for a minute per engine, hotplug and mask churn on"
	@echo "  make bench      full xcall-bench run; rewrites BENCHMARKS.md's table and bench/results/"
	@echo "  make bench-quick  xcall-bench in under a minute, report on stdout only"
	@echo "  make bench-micro  Google Benchmark micro-benchmarks (cpumask, call queue)"
	@echo "  make build      build everything in the release preset"
	@echo "  make install    build (release) and install into PREFIX=$(PREFIX) (DESTDIR honoured)"
	@echo "  make package    a Debian package of the install (CPack), in build/package/"
	@echo "  make format     clang-format every C/C++ file in place"
	@echo "  make format-check  fail if a file is not clang-formatted (CI runs it)"
	@echo "  make clean      remove build/"
	@echo "  make deps       install missing Debian packages (scripts/ensure-deps.sh)"
	@echo "Extra ctest flags: CTEST_ARGS='-L unit' (or -R <regex>, -j 2, ...)."

deps:
	@bash scripts/ensure-deps.sh

# Every tracked C/C++ source (git ls-files: nothing under build/).
FORMAT_FILES = $(shell git ls-files '*.cpp' '*.hpp' '*.h' '*.c')
CLANG_FORMAT ?= clang-format

format: deps
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

format-check: deps
	@$(CLANG_FORMAT) --dry-run --Werror $(FORMAT_FILES) && echo "format-check: $(words $(FORMAT_FILES)) files formatted"

build: deps
	$(call configure_build,release)

install: deps
	$(call configure_build,release,--target $(INSTALL_TARGETS))
	DESTDIR=$(DESTDIR) $(CMAKE) --install build/release --prefix $(PREFIX)

package: deps
	$(call configure_build,release,--target $(INSTALL_TARGETS))
	cd build/release && cpack -G DEB -B $(CURDIR)/build/package
	@ls -1 build/package/*.deb

run: deps
	$(call configure_build,release,--target shootdown)
	$(SHOOTDOWN) $(ARGS)

bench-deps:
	@bash scripts/ensure-deps.sh $(BENCH_PACKAGES)

bench: bench-deps
	$(CMAKE) --preset release -DXCALL_BUILD_BENCH=ON
	$(CMAKE) --build --preset release --parallel $(JOBS) --target xcall-bench
	$(BENCH) --markdown BENCHMARKS.md --json bench/results/latest.json --plot bench/results $(BENCH_ARGS)

bench-quick: bench-deps
	$(CMAKE) --preset release -DXCALL_BUILD_BENCH=ON
	$(CMAKE) --build --preset release --parallel $(JOBS) --target xcall-bench
	$(BENCH) --quick $(BENCH_ARGS)

bench-micro: bench-deps
	$(CMAKE) --preset release -DXCALL_BUILD_BENCH=ON
	$(CMAKE) --build --preset release --parallel $(JOBS) --target xcall-micro
	$(MICRO) $(BENCH_ARGS)

torture: deps
	$(call configure_build,release,--target xcall-torture)
	$(TORTURE) --engine percpu $(TORTURE_ARGS)
	$(TORTURE) --engine classic $(TORTURE_ARGS)

test: deps
	$(call configure_build,debug)
	$(call run_tests,debug)

test-asan: deps
	$(call configure_build,asan)
	$(call run_tests,asan)

test-tsan: deps
	$(call configure_build,tsan)
	$(call run_tests,tsan)

clean:
	rm -rf build
