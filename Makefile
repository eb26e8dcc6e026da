# libdiffclip build. `make deps` installs what the build and tests need (Debian 12);
# `make` builds lib/ and build/bin/diffclip; `make test` runs unit and golden tests, then the
# Python, Rust and C++ bindings' tests (`make test-python`, `test-rust`, `test-cpp`: one of them);
# `make bench` builds and runs the benchmark (test/bench/bench.c; never run by make test) and
# prints one table; BENCH_DOC=docs/performance.md also writes it there, BENCH_ARGS passes options
# (--runs N, --invert-steps N, --only KEY,...). `make bench-compare` times the same network in
# PyTorch eager and libdiffclip, alternating (test/bench/compare_pytorch.py, Debian's torch).
# `make demo` fine-tunes the trained Fashion-MNIST models of examples/fashion-mnist and edits held-out images (build/demo/).
#   LIBTORCH=dir   build against an official or pip LibTorch (2.x, CUDA) instead of Debian's
#   GOLDEN=dir     conformance cases (default ../shared/golden)
#   CLIP_DATA=dir  CLIP vocabulary and templates (default ../shared/clip)
#   FACEAPI=dir    face-api's face recognition weights (default third_party/face-api, made by
#                  `make faceapi`, which `make deps` runs)
#   SANITIZE=1     build under build/sanitize with ASan+UBSan (`make test-sanitize` runs the tests so)
#   SANITIZE=thread  build under build/tsan with TSan (`make test-tsan` runs the thread tests so)
# `make fuzz FUZZ_SECONDS=N [FUZZ_TARGETS="png zip"]` runs each libFuzzer target in test/fuzz for
# N seconds (test/fuzz/README.md).
# `make check-abi` (part of make test) compares the library's ABI with abi/libdiffclip.abi;
# `make abi-baseline` rewrites that baseline, on purpose only (README.md, "ABI").
# `make cli-docs` regenerates docs/cli.md from the tool's help texts (make test checks it).

PREFIX    ?= /usr/local
DESTDIR   ?=
LIBDIR    ?= $(PREFIX)/lib
GOLDEN    ?= ../shared/golden
CLIP_DATA ?= ../shared/clip
FACEAPI   ?= third_party/face-api
LIBTORCH  ?=
SANITIZE  ?=

CC  ?= cc
CXX ?= c++
OBJCOPY ?= objcopy
OPT ?= -O2 -g

VERSION_MAJOR := $(shell sed -n 's/^\#define DC_VERSION_MAJOR \([0-9]*\)/\1/p' include/diffclip.h)
VERSION       := $(shell sed -n 's/^\#define DC_VERSION_STRING "\(.*\)"/\1/p' include/diffclip.h)
SONAME        := libdiffclip.so.$(VERSION_MAJOR)

ifeq ($(LIBTORCH),)
TORCH_CPPFLAGS :=
TORCH_LDLIBS   := -ltorch -ltorch_cpu -lc10
else
# LIBTORCH is the official zip's libtorch/ or pip's site-packages/torch/: both hold include/,
# lib/ and share/cmake/Torch.
ifeq ($(wildcard $(LIBTORCH)/lib/libc10.so),)
$(error LIBTORCH=$(LIBTORCH) has no lib/libc10.so: give the official zip's libtorch/ directory or pip's site-packages/torch/)
endif
# Code built with another C++ ABI than LibTorch's fails to link (std::string arguments). The ABI
# is in TorchConfig.cmake (TORCH_CXX_FLAGS) where the build recorded it; else libc10 tells:
# its std::string symbols mangle as __cxx11 in the new ABI only.
TORCH_ABI      := $(shell grep -ho '_GLIBCXX_USE_CXX11_ABI=[01]' $(LIBTORCH)/share/cmake/Torch/TorchConfig.cmake 2>/dev/null | head -n1)
ifeq ($(TORCH_ABI),)
TORCH_ABI      := _GLIBCXX_USE_CXX11_ABI=$(shell nm -D --defined-only $(LIBTORCH)/lib/libc10.so | grep -q __cxx11 && echo 1 || echo 0)
endif
TORCH_CUDA     := $(wildcard $(LIBTORCH)/lib/libtorch_cuda.so)
TORCH_CPPFLAGS := -isystem $(LIBTORCH)/include -isystem $(LIBTORCH)/include/torch/csrc/api/include -D$(TORCH_ABI)
# --no-as-needed keeps libtorch_cuda loaded so that LibTorch registers its CUDA backend; the
# rpath-link finds the libraries it needs where they lie beside it.
TORCH_LDLIBS   := -L$(LIBTORCH)/lib -Wl,-rpath,$(abspath $(LIBTORCH))/lib -Wl,-rpath-link,$(abspath $(LIBTORCH))/lib \
                  -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10 $(if $(TORCH_CUDA),-ltorch_cuda -lc10_cuda) \
                  -Wl,--as-needed
endif

# dlib (face detection and landmarks, src/cdlib); its headers call BLAS and LAPACK directly
# (Debian's dlib is configured with both, see dlib-1.pc). libyaml: the model configs.
DEP_LDLIBS := -ldlib -llapack -lblas -lpng -ljpeg -lz -lyaml -lm -lpthread
WARN       := -Wall -Wextra -Wno-unused-parameter
CPPFLAGS   += -Iinclude -DDC_BUILDING_LIBRARY
CFLAGS     += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -fPIC -fvisibility=hidden -MMD -MP
CXXFLAGS   += -std=c++17 $(OPT) $(WARN) -fPIC -fvisibility=hidden -fvisibility-inlines-hidden -MMD -MP

ifeq ($(SANITIZE),)
BUILD  := build
LIBOUT ?= lib
else ifeq ($(SANITIZE),thread)
# ThreadSanitizer over our code, LibTorch not: races inside LibTorch, OpenMP and OpenBLAS
# (whose synchronisation TSan cannot see) are suppressed by test/tsan.supp, which names only
# those libraries: a race between two accesses of our own code is still reported.
SANITIZE_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
BUILD    := build/tsan
LIBOUT   ?= $(BUILD)/lib
CFLAGS   += $(SANITIZE_FLAGS)
CXXFLAGS += $(SANITIZE_FLAGS)
LDFLAGS  += $(SANITIZE_FLAGS)
SANITIZE_ENV := TSAN_OPTIONS=suppressions=$(abspath test/tsan.supp):halt_on_error=1:print_suppressions=0
else
# Our code instrumented, LibTorch not; the suppressions name only leaks inside LibTorch and
# the libraries under it.
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
BUILD    := build/sanitize
LIBOUT   ?= $(BUILD)/lib
CFLAGS   += $(SANITIZE_FLAGS)
# Not `enum` in C++: C callers may pass any int as a dc_dtype, which the shim must refuse, and
# reading one outside 0..7 is UB only to C++ compilers that assume enum ranges (-fstrict-enums).
CXXFLAGS += $(SANITIZE_FLAGS) -fno-sanitize=enum
LDFLAGS  += $(SANITIZE_FLAGS)
SANITIZE_ENV := ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:check_initialization_order=1 \
                LSAN_OPTIONS=suppressions=$(abspath test/lsan.supp):print_suppressions=0 \
                UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
endif
LIB_C_SRCS   := $(sort $(shell find src -name '*.c' -not -path 'src/cli/*' -not -path 'src/serve/*' \
                  -not -path 'src/client/*'))
LIB_CXX_SRCS := $(sort $(wildcard src/ctorch/*.cpp src/cdlib/*.cpp))
LIB_OBJS     := $(LIB_C_SRCS:%.c=$(BUILD)/obj/%.o) $(LIB_CXX_SRCS:%.cpp=$(BUILD)/obj/%.o)
CLI_SRCS     := $(sort $(wildcard src/cli/*.c))
# diffclip serve (src/serve, over the public API like the CLI) and its web page, embedded as
# a C array generated from src/serve/page.html; only the CLI links libmicrohttpd. src/client:
# what both share.
SERVE_SRCS   := $(sort $(wildcard src/serve/*.c src/client/*.c))
SERVE_PAGE   := $(BUILD)/gen/serve_page.c
CLI_OBJS     := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o) $(SERVE_SRCS:%.c=$(BUILD)/obj/%.o) \
                $(SERVE_PAGE:%.c=$(BUILD)/obj/%.o)
SERVE_LDLIBS := -lmicrohttpd -lpthread

SHARED_LIB := $(LIBOUT)/libdiffclip.so.$(VERSION)
STATIC_LIB := $(LIBOUT)/libdiffclip.a
# Every object as it is, internal names global: what the tests and the benchmark link.
INTERNAL_LIB := $(BUILD)/libdiffclip-internal.a
CLI        := $(BUILD)/bin/diffclip

UNIT_SRCS    := $(sort $(wildcard test/unit/*.c))
GOLDEN_SRCS  := $(sort $(wildcard test/golden/*.c))
TEST_BINS    := $(UNIT_SRCS:test/%.c=$(BUILD)/test/%) $(GOLDEN_SRCS:test/%.c=$(BUILD)/test/%)
TEST_SCRIPTS := $(sort $(wildcard test/scripts/*.sh))
HARNESS_OBJS := $(BUILD)/obj/test/harness.o
BENCH        := $(BUILD)/bench/bench

.PHONY: all deps faceapi browser-deps test test-some test-python test-rust test-cpp test-sanitize test-tsan tsan-run fuzz \
        bench bench-compare demo install uninstall clean unicode-tables check-abi abi-baseline \
        cli-docs debian13-root bench-libtorch test-libtorch2 check-cuda-build device-debs
.SECONDARY:
all: $(SHARED_LIB) $(STATIC_LIB) $(CLI)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(TORCH_CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(SHARED_LIB): $(LIB_OBJS) src/libdiffclip.map
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/libdiffclip.map -Wl,--no-undefined \
	    -o $@ $(LIB_OBJS) $(TORCH_LDLIBS) $(DEP_LDLIBS)
	ln -sf libdiffclip.so.$(VERSION) $(LIBOUT)/$(SONAME)
	ln -sf $(SONAME) $(LIBOUT)/libdiffclip.so

# One partially linked object whose only global symbols are the dc_ API, as the shared
# library's version script leaves them: internal names (ct_add, unet_take, ...) cannot clash
# with those of the program that embeds the library. test/scripts/test_install.sh checks it.
$(STATIC_LIB): $(LIB_OBJS)
	@mkdir -p $(@D) $(BUILD)/obj
	$(LD) -r -o $(BUILD)/obj/libdiffclip.o $(LIB_OBJS)
	$(OBJCOPY) --wildcard --keep-global-symbol='dc_*' $(BUILD)/obj/libdiffclip.o
	rm -f $@
	ar rcs $@ $(BUILD)/obj/libdiffclip.o

$(INTERNAL_LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $(LIB_OBJS)

# The CLI links the shared library: it can reach only the exported dc_ API.
$(CLI): $(CLI_OBJS) $(SHARED_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJS) -L$(LIBOUT) -ldiffclip -Wl,-rpath,'$$ORIGIN/$(shell realpath -m --relative-to=$(BUILD)/bin $(LIBOUT))' -lm $(SERVE_LDLIBS)

$(SERVE_PAGE): src/serve/page.html
	@mkdir -p $(@D)
	{ printf '#include <stddef.h>\nconst char sv_page_html[] = {\n'; \
	  od -An -v -tx1 $< | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  printf '0};\nconst size_t sv_page_html_size = sizeof sv_page_html - 1;\n'; } > $@.tmp
	mv $@.tmp $@

# Tests link the internal archive so that they can test internal modules.
$(BUILD)/test/%: $(BUILD)/obj/test/%.o $(HARNESS_OBJS) $(INTERNAL_LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $< $(HARNESS_OBJS) $(INTERNAL_LIB) $(TORCH_LDLIBS) $(DEP_LDLIBS)

# The benchmark is a program over the internal archive (it times internal modules too).
$(BENCH): $(BUILD)/obj/test/bench/bench.o $(INTERNAL_LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $< $(INTERNAL_LIB) $(TORCH_LDLIBS) $(DEP_LDLIBS)

$(BUILD)/obj/test/%.o: test/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Isrc -Itest $(CFLAGS) -c $< -o $@

# python3-skimage and python-matplotlib-data hold the face photographs of the face descriptor
# and alignment tests (skimage/data/astronaut.png, matplotlib's sample_data/grace_hopper.jpg);
# libdlib-dev the face detector and predictor code, libdlib-data the 68-landmark predictor
# file; python3-pil and python3-scipy run the alignment test's Python reference; libgloo-dev the
# Gloo headers that LibTorch's c10d headers include (data-parallel fine-tuning,
# src/ctorch/dist.cpp; the library itself is inside libtorch_cpu). Debian's cargo only when no
# cargo (a rustup toolchain, say) is on PATH already.
deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	    build-essential pkg-config libtorch-dev libopenblas0-pthread \
	    libpng-dev libjpeg62-turbo-dev zlib1g-dev libyaml-dev \
	    python3 python3-torch python3-numpy abigail-tools unicode-data \
	    python3-skimage python-matplotlib-data libdlib-dev libdlib-data libblas-dev liblapack-dev \
	    python3-pil python3-scipy clang libclang-rt-14-dev llvm debootstrap shellcheck \
	    libmicrohttpd-dev chromium libgloo-dev dataset-fashion-mnist
	command -v cargo >/dev/null 2>&1 || \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cargo
	$(MAKE) faceapi
	$(MAKE) browser-deps

# playwright-core (pinned by test/browser/package-lock.json) drives Debian's chromium in the
# page test (test/scripts/test_serve_page.sh); installed into test/browser/node_modules.
browser-deps:
	@command -v npm >/dev/null 2>&1 || { echo "make browser-deps: npm is not on PATH; install Node.js with npm" >&2; exit 1; }
	cd test/browser && npm ci --no-audit --no-fund

# The face descriptor's weights from the npm package @vladmandic/face-api (MIT; the dlib
# weights are public domain), the tarball pinned by its sha256 (npm integrity
# sha512-WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw==).
# Uses whatever npm is on PATH.
FACEAPI_VERSION := 1.7.15
FACEAPI_SHA256  := 0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031
FACEAPI_TARBALL := $(FACEAPI)/vladmandic-face-api-$(FACEAPI_VERSION).tgz
FACEAPI_MODEL   := face_recognition_model.bin face_recognition_model-weights_manifest.json

faceapi: $(FACEAPI)/face_recognition_model-weights_manifest.json

$(FACEAPI_TARBALL):
	@command -v npm >/dev/null 2>&1 || { echo "make faceapi: npm is not on PATH; install Node.js with npm" >&2; exit 1; }
	mkdir -p $(FACEAPI)
	cd $(FACEAPI) && npm pack --silent @vladmandic/face-api@$(FACEAPI_VERSION) >/dev/null

$(FACEAPI)/face_recognition_model-weights_manifest.json: $(FACEAPI_TARBALL)
	@echo "$(FACEAPI_SHA256)  $<" | sha256sum -c --quiet - || { echo "make faceapi: $< does not have the pinned sha256; removed" >&2; rm -f $<; exit 1; }
	tar -xzf $< -C $(FACEAPI) --strip-components=2 $(addprefix package/model/,$(FACEAPI_MODEL))
	touch $@

# The tokenizer's Unicode and HTML tables are generated and committed (a build needs neither
# Python nor unicode-data); this regenerates them from unicode-data and Python's html module.
PYTHON       ?= /usr/bin/python3
UNICODE_DATA ?= /usr/share/unicode
unicode-tables:
	$(PYTHON) tools/gen_tokenizer_tables.py $(UNICODE_DATA) > src/nn/tokenizer_tables.c.tmp
	mv src/nn/tokenizer_tables.c.tmp src/nn/tokenizer_tables.c

# The test scripts and the bindings' suites (test/bindings/*.sh) run after the C tests and
# count in the same closing line; test-python, test-rust and test-cpp run one suite.
BINDING_TESTS := test/bindings/python.sh test/bindings/rust.sh test/bindings/cpp.sh
TEST_ENV = DC_GOLDEN=$(abspath $(GOLDEN)) DC_CLIP_DATA=$(abspath $(CLIP_DATA)) DC_CLI=$(CLI) \
           DC_FACEAPI=$(abspath $(FACEAPI)) \
           DIFFCLIP_LIBRARY=$(abspath $(LIBOUT))/$(SONAME) DIFFCLIP_LIB_DIR=$(abspath $(LIBOUT)) \
           CARGO_TARGET_DIR=$(abspath $(BUILD))/rust DC_BUILD=$(abspath $(BUILD)) PYTHON=$(PYTHON) \
           CXX="$(CXX)" DC_LIBOUT=$(LIBOUT) \
           DC_MAKE_ARGS="BUILD=$(BUILD) LIBOUT=$(LIBOUT) LIBTORCH=$(LIBTORCH)"

test-python test-rust test-cpp: test-%: all
	@$(TEST_ENV) sh test/run.sh test/bindings/$*.sh

# The Fashion-MNIST demo (tools/demo.sh): the project's trained models in examples/fashion-mnist
# and Debian's dataset-fashion-mnist; no ../shared needed.
demo: all
	sh tools/demo.sh $(CLI) $(PYTHON) examples/fashion-mnist $(BUILD)/demo

BENCH_ARGS    ?=
BENCH_DOC     ?=
COMPARE_ARGS  ?=
bench: $(BENCH)
	DC_CLIP_DATA=$(CLIP_DATA) $(BENCH) $(BENCH_ARGS) $(if $(BENCH_DOC),--markdown $(BENCH_DOC))

bench-compare: $(BENCH)
	$(PYTHON) test/bench/compare_pytorch.py --bench $(BENCH) $(COMPARE_ARGS)

# This build (LibTorch 1.13) beside the same code on 2.6 and PyTorch 2.6 in the Debian 13 root,
# alternating (root only; tools/compare_libtorch.sh).
bench-libtorch: $(BENCH) debian13-root
	sh tools/compare_libtorch.sh $(BENCH) $(DEBIAN13_ROOT) $(abspath $(GOLDEN)) \
	    $(abspath $(CLIP_DATA)) $(abspath $(FACEAPI)) $(COMPARE_ARGS)

# ---- LibTorch 2.6 and its CUDA build, in a Debian 13 root (tools/debian13.sh; root only) ----
# `make test-libtorch2` runs the whole `make test` (golden cases required) against Debian 13's
# LibTorch 2.6 in a root made once under build/debian13 (about 4 GB) and reused; `make
# check-cuda-build` compiles and links the library and diffclip there against Debian 13's CUDA
# LibTorch 2.6, unpacked beside it (tools/check_cuda_build.sh says what is checked).
DEBIAN13_ROOT     ?= build/debian13
DEBIAN13_JOBS     ?= 2
DEBIAN13_PACKAGES := build-essential pkg-config libtorch-dev libopenblas0-pthread \
                     libpng-dev libjpeg62-turbo-dev zlib1g-dev python3 python3-torch python3-numpy python3-setuptools \
                     abigail-tools unicode-data python3-skimage python-matplotlib-data \
                     libdlib-dev libdlib-data libblas-dev liblapack-dev python3-pil python3-scipy clang libclang-rt-dev llvm cargo \
                     libmicrohttpd-dev chromium nodejs libyaml-dev shellcheck libgloo-dev dataset-fashion-mnist
DEBIAN13_RUN       = sh tools/debian13.sh run $(DEBIAN13_ROOT) . $(abspath $(GOLDEN)) \
                     $(abspath $(CLIP_DATA)) $(abspath $(FACEAPI))
DEBIAN13_ARGS     := GOLDEN=/work/golden CLIP_DATA=/work/clip FACEAPI=/work/faceapi

debian13-root:
	sh tools/debian13.sh root $(DEBIAN13_ROOT) $(DEBIAN13_PACKAGES)

test-libtorch2: debian13-root
	CI=true $(DEBIAN13_RUN) 'nice make -j$(DEBIAN13_JOBS) $(DEBIAN13_ARGS) all && \
	    nice make $(DEBIAN13_ARGS) test'

# The libpng, libjpeg and zlib packages (headers and libraries, 2 MB) that travel with the tree
# to a GPU machine without apt for tools/device_check.sh (docs/cuda.md).
DEVICE_DEBS := libpng-dev libpng16-16 libjpeg62-turbo-dev libjpeg62-turbo zlib1g-dev zlib1g
device-debs:
	mkdir -p third_party/device-debs
	cd third_party/device-debs && apt-get download $(DEVICE_DEBS)

check-cuda-build: debian13-root
	$(DEBIAN13_RUN) 'nice sh tools/check_cuda_build.sh $(DEBIAN13_JOBS)'

# ---- fuzzing: the pure-C readers (no LibTorch) built with clang's libFuzzer, ASan and UBSan ----
FUZZ_CC       ?= clang
FUZZ_SECONDS  ?= 60
FUZZ_BUILD    := build/fuzz
# clang 14 (Debian 12) prints the directory that holds it; clang 19 (Debian 13) prints a
# per-target directory and keeps it under the resource directory's lib/linux.
FUZZ_RUNTIME  := $(firstword $(wildcard \
                   $(shell $(FUZZ_CC) -print-runtime-dir 2>/dev/null)/libclang_rt.fuzzer-$(shell uname -m).a \
                   $(shell $(FUZZ_CC) -print-resource-dir 2>/dev/null)/lib/linux/libclang_rt.fuzzer-$(shell uname -m).a))
FUZZ_SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS   := -std=c11 -D_GNU_SOURCE -g -O1 $(WARN) $(FUZZ_SANITIZE) -MMD -MP
# The readers and the core under them: no api code (test/scripts/test_layers.sh keeps io and
# cache from reaching above themselves); the predictor check of src/face.
FUZZ_LIB_SRCS := $(sort $(wildcard src/core/*.c src/io/*.c src/cache/*.c src/nn/tokenizer*.c) \
                   src/face/predictor_file.c)
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_SRCS     := $(sort $(wildcard test/fuzz/fuzz_*.c))
FUZZ_BINS     := $(FUZZ_SRCS:test/fuzz/%.c=$(FUZZ_BUILD)/%) $(FUZZ_BUILD)/make_seeds
FUZZ_TARGETS  ?= $(FUZZ_SRCS:test/fuzz/fuzz_%.c=%)
FUZZ_ENV       = DC_FUZZ_BUILD=$(FUZZ_BUILD) DC_FUZZ_TARGETS="$(FUZZ_TARGETS)" \
                 DC_GOLDEN=$(abspath $(GOLDEN)) DC_CLIP_DATA=$(abspath $(CLIP_DATA)) \
                 DC_FACEAPI=$(abspath $(FACEAPI)) PYTHON=$(PYTHON) \
                 $(if $(FUZZ_RUNTIME),,DC_FUZZ_MISSING="clang's libFuzzer runtime (make deps installs libclang-rt-14-dev)")

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) -Isrc $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/test/fuzz/fuzz_%.o $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(FUZZ_SANITIZE) -fsanitize=fuzzer -o $@ $^ $(DEP_LDLIBS)

$(FUZZ_BUILD)/fuzz_image_header: $(FUZZ_BUILD)/obj/src/serve/image_header.o

$(FUZZ_BUILD)/make_seeds: $(FUZZ_BUILD)/obj/test/fuzz/make_seeds.o $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(FUZZ_SANITIZE) -fsanitize=fuzzer-no-link -o $@ $^ $(DEP_LDLIBS)

# `make test` runs each fuzz target briefly and replays test/corpus (skipped, or failed under
# CI=true, without the fuzzer runtime); the sanitizer build leaves them to `make test`.
ifeq ($(SANITIZE)$(if $(FUZZ_RUNTIME),,missing),)
FUZZ_TEST_BINS := $(FUZZ_BINS)
endif

# Under SANITIZE the bindings, install and fuzz suites are left out: they load the library
# into uninstrumented programs; the serve API test runs the instrumented diffclip serve.
# Otherwise the bench is built too, for test_bench_compare.sh.
test: all $(TEST_BINS) $(FUZZ_TEST_BINS) $(if $(SANITIZE),,$(BENCH))
	@$(SANITIZE_ENV) $(TEST_ENV) $(FUZZ_ENV) sh test/run.sh $(TEST_BINS) \
	    $(if $(SANITIZE),test/scripts/test_serve.sh,$(TEST_SCRIPTS) $(BINDING_TESTS) test/fuzz/run_fuzz.sh)

test-sanitize:
	$(MAKE) SANITIZE=1 test

# A few of make test's programs and scripts with its environment, while working on them:
#   make test-some TESTS="build/test/unit/test_finetuner test/scripts/test_docs.sh"
test-some: all $(TEST_BINS)
	@$(TEST_ENV) $(FUZZ_ENV) sh test/run.sh $(TESTS)

# The thread tests under ThreadSanitizer (build/tsan): concurrent handles and per-thread errors.
TSAN_TESTS := test/unit/test_threads
test-tsan:
	$(MAKE) SANITIZE=thread $(TSAN_TESTS:%=build/tsan/%)
	@$(MAKE) --no-print-directory SANITIZE=thread tsan-run

ifeq ($(SANITIZE),thread)
tsan-run:
	@$(SANITIZE_ENV) $(TEST_ENV) sh test/run.sh $(TSAN_TESTS:%=$(BUILD)/%)
endif

check-abi: $(SHARED_LIB)
	@DIFFCLIP_LIBRARY=$(LIBOUT)/$(SONAME) sh test/scripts/test_abi.sh

# The public interface only: the types of include/ and the exported dc_ functions; short
# locations and no build paths, so that the baseline does not depend on the checkout.
abi-baseline: $(SHARED_LIB)
	abidw --headers-dir include --drop-private-types --exported-interfaces-only --no-corpus-path \
	    --no-comp-dir-path --no-elf-needed --short-locs --type-id-style hash \
	    --out-file abi/libdiffclip.abi $(LIBOUT)/$(SONAME)

cli-docs: $(CLI)
	sh tools/gen_cli_md.sh $(CLI) > docs/cli.md.tmp
	mv docs/cli.md.tmp docs/cli.md

fuzz: $(if $(FUZZ_RUNTIME),$(FUZZ_BINS))
	@$(if $(FUZZ_RUNTIME),,echo "make fuzz needs clang's libFuzzer runtime (make deps)"; exit 1;) \
	$(FUZZ_ENV) DC_FUZZ_SECONDS=$(FUZZ_SECONDS) sh test/fuzz/run_fuzz.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/diffclip.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libdiffclip.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libdiffclip.so
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@LIBS_PRIVATE@|$(TORCH_LDLIBS) $(DEP_LDLIBS) -lstdc++|' \
	    diffclip.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/diffclip.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/diffclip.h $(DESTDIR)$(LIBDIR)/libdiffclip.* \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/diffclip.pc $(DESTDIR)$(PREFIX)/bin/diffclip

clean:
	rm -rf $(BUILD) $(LIBOUT)/libdiffclip.*

# (The Debian 13 root under build/ is no build output: its /etc/rc*.d are directories.)
-include $(shell find $(BUILD) -path build/debian13 -prune -o -name '*.d' -type f -print 2>/dev/null)
