# fuzz.mk — `make fuzz`: libFuzzer targets for every parser of outside input.
# Included by the Makefile; not part of `make test`.
#
#   make fuzz            installs clang and its runtimes when missing, builds
#                        the library and the targets with clang++
#                        -fsanitize=fuzzer,address,undefined into build_fuzz/,
#                        writes the seed corpora (fuzz/make_seeds.cpp), then
#                        runs each target for FUZZ_SECONDS (default 60) on one
#                        core and prints executions, coverage and corpus size
#                        per target. It fails if any target finds a crash, a
#                        leak, a timeout or a sanitizer report; the input is
#                        kept under build_fuzz/artifacts/.
#   make fuzz-build      only the binaries
#   make fuzz FUZZ_SECONDS=3600 FUZZ_TARGETS="image idx"   longer, or fewer
#
# The targets (fuzz/fuzz_<name>.cpp):
#   idx          read_idx_images / read_idx_labels, plain and gzipped
#   safetensors  read_safetensors, decode_tensor, load_model, load_checkpoint
#   json         the safetensors header's JSON parser, with a write/parse round trip
#   image        load_image's checks and stb_image's decoders (compiled in)
#   lesson_cli   lesson::Cli::parse
#
# The corpus each run grows is kept in build_fuzz/corpus/<target>, so a later
# run starts where the last one stopped.

FUZZ_BUILD    ?= build_fuzz
FUZZ_CXX      ?= clang++
FUZZ_SECONDS  ?= 60
FUZZ_TARGETS  ?= idx safetensors json image lesson_cli
FUZZ_RSS_MB   ?= 2048
FUZZ_TIMEOUT  ?= 10
FUZZ_FASHION  ?= /usr/share/datasets/fashion-mnist
FUZZ_SHARED   ?= $(abspath $(CURDIR)/../shared/data)

# The library, the lesson harness and stb_image are compiled with coverage
# (fuzzer-no-link) and the sanitizers, as the targets are, so the fuzzer is
# guided by, and the sanitizers watch, the code that parses the input.
# -fno-sanitize-recover: the first undefined behaviour aborts, and libFuzzer
# keeps the input that caused it. -Wno-pass-failed: at -O1 with the
# sanitizers, clang cannot honour the library's `omp simd` hints.
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CXXFLAGS := -O1 -g $(ARCH) -std=c++17 -Wall -Wextra -Wno-pass-failed -fopenmp $(FUZZ_SAN) \
                 -fsanitize=fuzzer-no-link -MMD -MP
FUZZ_CPPFLAGS := -Iinclude -Isrc -Itutorials -I/usr/include/stb \
                 -DBYHAND_SOURCE_DIR=\"$(CURDIR)\"
FUZZ_LDLIBS   := -lblis -lz -fopenmp -lm -lpthread

FUZZ_LIB   := $(FUZZ_BUILD)/libbyhand_fuzz.a
# The parsers under test live in one process: the fuzz library is built as a
# world of one (no MPI), whatever the normal build found.
FUZZ_LIB_SRC := $(filter-out src/dist/%,$(LIB_SRC)) src/dist/single_process.cpp
FUZZ_LIB_O := $(FUZZ_LIB_SRC:%.cpp=$(FUZZ_BUILD)/obj/%.o)
FUZZ_STB_O := $(FUZZ_BUILD)/obj/fuzz/stb_impl.o
FUZZ_CLI_O := $(FUZZ_BUILD)/obj/tutorials/lesson.o
FUZZ_BINS  := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_SEEDS := $(FUZZ_BUILD)/make_seeds

.PHONY: fuzz fuzz-build fuzz-deps
fuzz: fuzz-deps
	@$(MAKE) --no-print-directory fuzz-build
	@rm -rf $(FUZZ_BUILD)/seeds
	$(FUZZ_SEEDS) $(FUZZ_BUILD)/seeds $(FUZZ_FASHION) $(FUZZ_SHARED)
	@bash fuzz/more_image_seeds.sh $(FUZZ_BUILD)/seeds/image
	@bash fuzz/run_fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_RSS_MB) $(FUZZ_TIMEOUT) $(FUZZ_TARGETS)

fuzz-build: $(FUZZ_BINS) $(FUZZ_SEEDS)

# clang, its sanitizer and libFuzzer runtimes (libclang-rt-14-dev) and
# LLVM's OpenMP (libomp-dev), on top of what the library needs.
fuzz-deps:
	@BYHAND_DEPS_EXTRA="clang libclang-rt-14-dev libomp-dev" bash .ci/deps.sh

# stb_image's source compiled into the fuzz build (fuzz/stb_impl.cpp); the
# warnings are stb's own. Its shift-exponent check is recoverable, so that
# fuzz/ubsan.supp can silence the one known, harmless case (and only it).
$(FUZZ_STB_O): fuzz/stb_impl.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CPPFLAGS) $(FUZZ_CXXFLAGS) -fsanitize-recover=shift-exponent -w -c $< -o $@
$(FUZZ_BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CPPFLAGS) $(FUZZ_CXXFLAGS) -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_O)
	rm -f $@ && ar rcs $@ $^

# Every target links stb_image from source, never libstb; fuzz_lesson_cli
# also the lesson harness.
$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/fuzz/fuzz_%.o $(FUZZ_STB_O) $(FUZZ_LIB)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer $(filter %.o,$^) $(FUZZ_LIB) -o $@ $(FUZZ_LDLIBS)
$(FUZZ_BUILD)/fuzz_lesson_cli: $(FUZZ_CLI_O)

# The seed writer: an ordinary program (its own main), same flags, but with
# stb_image_write built without the sanitizers: its JPEG writer, which only
# the seeds use, shifts negative ints (undefined behaviour, harmless on
# every compiler we know; the library writes PNGs only).
$(FUZZ_BUILD)/obj/fuzz/stb_impl_seeds.o: fuzz/stb_impl.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CPPFLAGS) -O1 -g -std=c++17 -w -c $< -o $@
$(FUZZ_SEEDS): $(FUZZ_BUILD)/obj/fuzz/make_seeds.o $(FUZZ_BUILD)/obj/fuzz/stb_impl_seeds.o $(FUZZ_LIB)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) $^ -o $@ $(FUZZ_LDLIBS)

ifneq ($(filter fuzz%,$(MAKECMDGOALS)),)
-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
endif
