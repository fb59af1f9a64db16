# cuda.mk — the optional CUDA path (src/cuda/*.cu). Included by the Makefile.
#
#   make              builds it when nvcc is found (on PATH, or in
#                     /usr/local/cuda/bin), else says "CUDA path skipped: nvcc
#                     not found" and builds the CPU library alone
#   make CUDA=1       insists (an error without nvcc)
#   make CUDA=0       leaves it out
#   make CUDA_ARCH="-gencode arch=compute_90,code=sm_90"   other GPUs
#
# Only the float build (build/f32: the library, lessons, benchmarks and the
# float test binary) gets the path: the double build exists for the CPU's
# gradient checks. Its objects define BYHAND_CUDA, which declares each
# layer's CUDA twin in its header (as dlib's DLIB_USE_CUDA does); code built
# against the library outside this Makefile must define it too.
# The CPU library's sources never include src/cuda/: LIB_SRC leaves it out,
# and nvcc alone builds the .cu files there.

NVCC ?= $(or $(shell command -v nvcc 2>/dev/null),$(wildcard /usr/local/cuda/bin/nvcc))

ifeq ($(CUDA),0)
USE_CUDA :=
else ifneq ($(NVCC),)
USE_CUDA := 1
else ifeq ($(CUDA),1)
$(error CUDA=1: nvcc not found (not on PATH, not in /usr/local/cuda/bin))
else
USE_CUDA :=
ifeq ($(MAKELEVEL),0)
$(info CUDA path skipped: nvcc not found)
endif
endif

ifeq ($(USE_CUDA),1)
CUDA_HOME := $(patsubst %/bin/nvcc,%,$(realpath $(NVCC)))
# Ampere (A100, sm_80) and Hopper (H100/H200, sm_90) in machine code, plus
# PTX for sm_90, which the driver compiles for anything newer.
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
NVCCFLAGS ?= -O3 -lineinfo
NVCCFLAGS += -std=c++17 $(CUDA_ARCH) -Werror all-warnings \
             -Xcompiler -Wall,-Wextra,-fopenmp -MMD -MP
CUDA_SRC    := $(wildcard src/cuda/*.cu src/cuda/*/*.cu)
CUDA_O      := $(CUDA_SRC:%.cu=$(BUILD)/f32/%.o)
LIB_F32_SRC := $(filter-out src/device_cpu_only.cpp,$(LIB_SRC))
F32_CPPFLAGS := -DBYHAND_CUDA -I$(CUDA_HOME)/include
CUDA_LDLIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart

$(BUILD)/f32/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(CPPFLAGS) $(F32_CPPFLAGS) $(NVCCFLAGS) -c $< -o $@
else
CUDA_O      :=
LIB_F32_SRC := $(LIB_SRC)
F32_CPPFLAGS :=
CUDA_LDLIBS :=
endif
