# cuda.mk — the optional CUDA path (src/cuda/*.cu). Included by the Makefile.
#
#   make              builds it when a CUDA toolkit is found (see below), else
#                     says "CUDA path skipped" and builds the CPU library alone
#   make CUDA=1       insists (an error without a toolkit)
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

# A toolkit is a directory with bin/nvcc, the runtime's header and the
# cudart and cuBLAS libraries. The nvcc on PATH may be a wrapper script
# (e.g. /usr/local/bin/nvcc running /usr/local/cuda-13.0/bin/nvcc), so its
# own directory is only the first place looked; then /usr/local/cuda and
# /usr/local/cuda-*. CUDA_HOME=DIR names the toolkit outright.
cuda_toolkit_ok = $(and $(wildcard $(1)/bin/nvcc),$(wildcard $(1)/include/cuda_runtime.h),\
                        $(wildcard $(1)/lib64/libcudart.so),$(wildcard $(1)/lib64/libcublas.so))
ifneq ($(CUDA_HOME),)
CUDA_CANDIDATES := $(CUDA_HOME)
else
CUDA_CANDIDATES := $(patsubst %/bin/nvcc,%,$(realpath $(shell command -v nvcc 2>/dev/null))) \
    /usr/local/cuda $(sort $(wildcard /usr/local/cuda-*))
endif
CUDA_FOUND := $(firstword $(foreach d,$(CUDA_CANDIDATES),$(if $(call cuda_toolkit_ok,$(d)),$(d))))

ifeq ($(CUDA),0)
USE_CUDA :=
else ifneq ($(CUDA_FOUND),)
USE_CUDA := 1
else ifeq ($(CUDA),1)
$(error CUDA=1: no CUDA toolkit found (bin/nvcc, include/cuda_runtime.h, lib64/libcudart.so and libcublas.so in CUDA_HOME, nvcc's directory, /usr/local/cuda or /usr/local/cuda-*))
else
USE_CUDA :=
ifeq ($(MAKELEVEL),0)
ifeq ($(shell command -v nvcc 2>/dev/null)$(wildcard /usr/local/cuda/bin/nvcc),)
$(info CUDA path skipped: nvcc not found)
else
$(info CUDA path skipped: nvcc found, but no toolkit with cuda_runtime.h, libcudart and libcublas (set CUDA_HOME=DIR))
endif
endif
endif

ifeq ($(USE_CUDA),1)
CUDA_DIR  := $(CUDA_FOUND)
NVCC      := $(CUDA_DIR)/bin/nvcc
ifeq ($(MAKELEVEL),0)
$(info CUDA path: $(CUDA_DIR) (make CUDA=0 leaves it out))
endif
# Ampere (A100, sm_80) and Hopper (H100/H200, sm_90) in machine code, plus
# PTX for sm_90, which the driver compiles for anything newer.
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
NVCCFLAGS ?= -O3 -lineinfo
NVCCFLAGS += -std=c++17 $(CUDA_ARCH) -Werror all-warnings \
             -Xcompiler -Wall,-Wextra,-fopenmp -MMD -MP
CUDA_SRC    := $(wildcard src/cuda/*.cu src/cuda/*/*.cu)
# NCCL (the GPU's allreduce, for data parallelism on GPUs): with MPI, and
# when the toolkit has it (nccl.h and libnccl beside cuBLAS). NCCL=0 leaves it out.
ifeq ($(USE_MPI)$(if $(wildcard $(CUDA_DIR)/include/nccl.h),1)$(if $(wildcard $(CUDA_DIR)/lib64/libnccl.so),1),111)
USE_NCCL := $(if $(filter 0,$(NCCL)),,1)
endif
ifneq ($(USE_NCCL),1)
CUDA_SRC    := $(filter-out src/cuda/data_parallel.cu,$(CUDA_SRC))
endif
CUDA_O      := $(CUDA_SRC:%.cu=$(BUILD)/f32/%.o)
LIB_F32_SRC := $(filter-out src/device_cpu_only.cpp,$(LIB_SRC))
F32_CPPFLAGS := -DBYHAND_CUDA -I$(CUDA_DIR)/include $(if $(USE_NCCL),-DBYHAND_NCCL)
CUDA_LDLIBS := -L$(CUDA_DIR)/lib64 -Wl,-rpath,$(CUDA_DIR)/lib64 -lcublas -lcudart $(if $(USE_NCCL),-lnccl)

$(BUILD)/f32/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(CPPFLAGS) $(F32_CPPFLAGS) $(NVCCFLAGS) -c $< -o $@
else
CUDA_O      :=
LIB_F32_SRC := $(LIB_SRC)
F32_CPPFLAGS :=
CUDA_LDLIBS :=
endif
