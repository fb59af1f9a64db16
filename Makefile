# byhand — deep learning, by hand, in C++.
#
#   make              the library (build/libbyhand.a)
#   make tutorials    every lesson under build/tutorials/
#   make run          install what is missing, build, run the flagship lesson (03_mlp)
#   make test         install what is missing, build, run every test
#   make bench        throughput figures (and PyTorch's, when python3-torch is installed)
#   make plots        PNG curves beside every history CSV under runs/ (needs gnuplot)
#   make deps         install the Debian packages byhand needs
#   make clean
#   make CUDA=1       insist on the CUDA path (src/cuda/, device.h); CUDA=0 leaves
#                     it out. By default it is built when nvcc is found.
#   make MPI=1        insist on data-parallel training through Open MPI
#                     (distributed.h); MPI=0 leaves it out. By default it is
#                     built when mpicxx is found.
#
# Objects go under build/ (build/f32 for the float library, build/f64 for the
# double build used by the gradient-check tests). It builds on every core by
# default; `make -jN` chooses.

# Build in parallel on every core unless a -j was given (make -j1 for one).
# (At the top level only: a sub-make shares its parent's job slots, and its
# MAKEFLAGS never shows the -j, so adding one there would leave the jobserver.)
ifeq ($(MAKELEVEL)$(filter -j%,$(MAKEFLAGS)),0)
MAKEFLAGS += -j$(shell nproc)
endif

BUILD    ?= build
CXX      ?= g++
ARCH     ?= -march=native
OPT      ?= -O3
CXXFLAGS ?= $(OPT) $(ARCH) -g
# -fno-math-errno lets sqrt/exp vectorise (errno is never read here).
CXXFLAGS += -std=c++17 -Wall -Wextra -fopenmp -fno-math-errno -MMD -MP
CPPFLAGS += -Iinclude -I/usr/include/stb -DBYHAND_SOURCE_DIR=\"$(CURDIR)\"
LDLIBS   += -lblis -lstb -lz -fopenmp -lm -lpthread

# The CPU library's sources: never src/cuda/, whose .cu files only nvcc builds.
LIB_SRC   := $(filter-out src/cuda/%,$(wildcard src/*.cpp src/*/*.cpp))

include mk/mpi.mk
include mk/cuda.mk

LIB_F32_O := $(LIB_F32_SRC:%.cpp=$(BUILD)/f32/%.o) $(CUDA_O)
LIB_F64_O := $(LIB_SRC:%.cpp=$(BUILD)/f64/%.o)
LIB       := $(BUILD)/libbyhand.a
LIB_F64   := $(BUILD)/libbyhand_f64.a

TEST_SRC   := $(wildcard tests/*.cpp)
TEST_F64_O := $(TEST_SRC:%.cpp=$(BUILD)/f64/%.o)
TEST_F32_O := $(TEST_SRC:%.cpp=$(BUILD)/f32/%.o)
TEST_F64   := $(BUILD)/tests/byhand_tests_f64
TEST_F32   := $(BUILD)/tests/byhand_tests_f32

LESSON_SRC  := $(wildcard tutorials/[0-9][0-9]_*.cpp)
LESSON_BIN  := $(LESSON_SRC:tutorials/%.cpp=$(BUILD)/tutorials/%)
HARNESS_SRC := $(filter-out $(LESSON_SRC),$(wildcard tutorials/*.cpp))
HARNESS_O   := $(HARNESS_SRC:%.cpp=$(BUILD)/f32/%.o)

BENCH_SRC := $(wildcard bench/*.cpp)
BENCH_BIN := $(BENCH_SRC:bench/%.cpp=$(BUILD)/bench/%)

.PHONY: all lib tutorials tests run test bench deps plots clean
# Keep the lessons' and benchmarks' objects (make would delete them as
# intermediate files, and rebuild them on the next change to the library).
.SECONDARY:
all: lib
lib: $(LIB)

$(BUILD)/f32/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(F32_CPPFLAGS) $(CXXFLAGS) -c $< -o $@
$(BUILD)/f64/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) -DBYHAND_DOUBLE $(CXXFLAGS) -c $< -o $@

$(LIB): $(LIB_F32_O)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(LIB_F64): $(LIB_F64_O)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tutorials/%: $(BUILD)/f32/tutorials/%.o $(HARNESS_O) $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS) $(CUDA_LDLIBS) $(MPI_LDLIBS)
tutorials: $(LESSON_BIN)

$(BUILD)/bench/%: $(BUILD)/f32/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS) $(CUDA_LDLIBS) $(MPI_LDLIBS)

$(TEST_F64): $(TEST_F64_O) $(LIB_F64)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS) $(MPI_LDLIBS)
$(TEST_F32): $(TEST_F32_O) $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS) $(CUDA_LDLIBS) $(MPI_LDLIBS)
# The program tests/test_distributed.cpp runs alone and under mpirun.
DP_CHECK := $(BUILD)/tests/byhand_dp_check
$(DP_CHECK): $(BUILD)/f32/tests/mpi/dp_check.o $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS) $(CUDA_LDLIBS) $(MPI_LDLIBS)
tests: $(TEST_F64) $(TEST_F32) $(LESSON_BIN) $(DP_CHECK)

deps:
	@bash .ci/deps.sh

# The flagship lesson: an MLP on Fashion-MNIST, by hand.
run: deps
	@$(MAKE) --no-print-directory tutorials
	$(BUILD)/tutorials/03_mlp

test: deps
	@$(MAKE) --no-print-directory tests
	@BUILD=$(BUILD) bash tests/run_tests.sh

bench: deps
	@$(MAKE) --no-print-directory $(BENCH_BIN) $(BUILD)/tutorials/15_data_parallel
	@BUILD=$(BUILD) bash bench/run_bench.sh

# Every training history under runs/ (a lesson's --history CSV) as PNG curves.
plots:
	@bash tutorials/make_plots.sh runs

clean:
	rm -rf $(BUILD)

include mk/sanitize.mk

include fuzz/fuzz.mk
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
