# mpi.mk — data-parallel training through Open MPI (distributed.h).
# Included by the Makefile.
#
#   make              builds with MPI when mpicxx is found (Debian:
#                     libopenmpi-dev, which `make deps` installs), else says
#                     "MPI skipped: mpicxx not found" and builds a world of
#                     one process (src/dist/single_process.cpp)
#   make MPI=1        insists (an error without mpicxx)
#   make MPI=0        leaves it out
#
# Only src/dist/mpi.cpp includes mpi.h; its compile flags come from
# `mpicxx --showme:compile`, and every program links libmpi. Both
# the float and the double build get it (the code is the same for both).

MPICXX ?= $(shell command -v mpicxx 2>/dev/null)

ifeq ($(MPI),0)
USE_MPI :=
else ifneq ($(MPICXX),)
USE_MPI := 1
else ifeq ($(MPI),1)
$(error MPI=1: mpicxx not found (apt-get install libopenmpi-dev openmpi-bin))
else
USE_MPI :=
ifeq ($(MAKELEVEL),0)
$(info MPI skipped: mpicxx not found)
endif
endif

ifeq ($(USE_MPI),1)
ifeq ($(MAKELEVEL),0)
$(info MPI: $(MPICXX) (make MPI=0 leaves it out))
endif
# The C interface only: MPI's deprecated C++ bindings are skipped (they
# also warn under -Wextra), and the program links libmpi alone.
MPI_CPPFLAGS := -DBYHAND_MPI -DOMPI_SKIP_MPICXX $(shell $(MPICXX) --showme:compile)
MPI_LDLIBS   := $(filter-out -lmpi_cxx,$(shell $(MPICXX) --showme:link))
LIB_SRC      := $(filter-out src/dist/single_process.cpp,$(LIB_SRC))
$(BUILD)/f32/src/dist/mpi.o $(BUILD)/f64/src/dist/mpi.o: CPPFLAGS += $(MPI_CPPFLAGS)
else
MPI_CPPFLAGS :=
MPI_LDLIBS   :=
LIB_SRC      := $(filter-out src/dist/mpi.cpp,$(LIB_SRC))
endif
