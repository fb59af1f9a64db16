# sanitize.mk — the whole test suite under AddressSanitizer + UBSan, and one
# lesson under valgrind (memcheck). Included by the Makefile; neither target
# is part of `make test`.
#
#   make sanitize   library, both test binaries and every lesson built into
#                   build_san/ with -fsanitize=address,undefined, then
#                   tests/run_tests.sh on them (the [lessons] tests run the
#                   sanitized lessons: lesson_dir() finds build_san/tutorials
#                   beside build_san/tests). Clean means: every test passes,
#                   and no process, test binary or lesson, wrote a report.
#   make valgrind   one lesson's quick run under memcheck (VG_LESSON).
#
# Both build the CPU library alone (CUDA=0 MPI=0): ASan, UBSan and memcheck
# watch byhand's host code only; the CUDA twins are checked against the CPU
# layers by the [gpu] tests on a machine with a GPU, and Open MPI's own
# allocations (which it keeps until exit) would drown the leak report.

SAN_BUILD ?= build_san
VG_BUILD  ?= build_vg

# The hook: a sub-make given SANITIZE compiles and links every object and
# binary with these flags too (CXXFLAGS is on both lines of the Makefile).
# -fno-sanitize-recover makes the first undefined behaviour fatal, as an
# ASan error is, so nothing scrolls past unseen.
ifneq ($(SANITIZE),)
CXXFLAGS += $(SANITIZE)
endif
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# -O2, not the usual -O1: the lessons' quick runs are held to accuracy bars,
# and at -O1 (where gcc fuses no multiply-add) their roundings, and so their
# results, drift further from those of `make test`'s -O3 build; lesson 12's
# fell under its bar.
SAN_OPT ?= -O2

# Every sanitized process (the test binaries and the lessons they start)
# writes its report to a file under $(SAN_BUILD)/reports: a lesson's stderr
# is read by the test that ran it, and a report there could pass unseen in a
# test that expects a failure. The target fails when any report exists.
SAN_REPORTS := $(CURDIR)/$(SAN_BUILD)/reports
SAN_ENV := \
  ASAN_OPTIONS=detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1:log_path=$(SAN_REPORTS)/asan \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(SAN_REPORTS)/ubsan

.PHONY: sanitize valgrind
sanitize: deps
	@$(MAKE) --no-print-directory BUILD=$(SAN_BUILD) CUDA=0 MPI=0 OPT=$(SAN_OPT) SANITIZE="$(SAN_FLAGS)" tests
	@rm -rf $(SAN_REPORTS) && mkdir -p $(SAN_REPORTS)
	@start=$$(date +%s); status=0; \
	  $(SAN_ENV) BUILD=$(SAN_BUILD) bash tests/run_tests.sh || status=1; \
	  echo "sanitize: tests ran in $$(( $$(date +%s) - start )) s"; \
	  if [ -n "$$(ls -A $(SAN_REPORTS))" ]; then \
	    echo "sanitize: reports in $(SAN_REPORTS):"; cat $(SAN_REPORTS)/*; status=1; \
	  else echo "sanitize: no ASan, LSan or UBSan report"; fi; \
	  exit $$status

# valgrind: the lesson from a build of its own (normal -O3 flags), so that
# it neither waits for nor disturbs build/. Valgrind decodes AVX2 but not
# AVX-512, so on a CPU with AVX-512 that build targets AVX2 (x86-64-v3);
# valgrind's CPUID hides AVX-512 from BLIS too. Clean: no error, and no
# block definitely or indirectly lost. "Possibly lost" is not counted: BLIS
# keeps its packing buffers by a pointer past the start of the malloc'd
# block (it aligns them itself), which memcheck can only call possibly lost.
# No suppressions are needed. One thread by default: memcheck runs one
# thread at a time anyway; VG_LESSON="03_mlp --quick" runs two.
VG_ARCH ?= $(if $(shell grep -m1 -ow avx512f /proc/cpuinfo 2>/dev/null),-march=x86-64-v3,-march=native)
VG_LESSON ?= 03_mlp --quick --threads 1
VG_FLAGS := --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --track-origins=yes
valgrind: deps
	@command -v valgrind >/dev/null || { echo "valgrind: not installed (apt-get install valgrind)"; exit 1; }
	@$(MAKE) --no-print-directory BUILD=$(VG_BUILD) CUDA=0 MPI=0 ARCH="$(VG_ARCH)" $(VG_BUILD)/tutorials/$(word 1,$(VG_LESSON))
	@start=$$(date +%s); \
	  valgrind $(VG_FLAGS) $(VG_BUILD)/tutorials/$(VG_LESSON); status=$$?; \
	  echo "valgrind: ran in $$(( $$(date +%s) - start )) s, exit code $$status"; exit $$status
