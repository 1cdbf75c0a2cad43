# netlabs - every entry point.  `make help` lists them.
#
# Binaries go to build/<variant>/<tree>/<lab>/, never into the source tree:
#   build/plain/solutions/04-select/server     (make)
#   build/address/labs/04-select/server        (make SAN=address: ASan+UBSan)
#   build/thread/solutions/03-threads/server   (make SAN=thread: TSan)
# A lab is any directory solutions/NN-name or labs/NN-name.  Its server is
# built from every .c file in it except client.c and *_test.c, unless the
# lab's own lab.mk says otherwise (each tree's lab.mk is read for that tree
# only, so an edit to labs/08-reactor/lab.mk changes the labs/ build):
#   SERVER_SRCS := server.c conn.c ...   the server's files, in the lab's directory
#   CLIENT_SRCS := client.c calc.c       the client's (default: client.c if present)
#   BUILDS_ON   := 08-reactor            earlier labs whose headers it includes,
#   BASE_SRCS   := 08-reactor/conn.c ... and whose files it links, always from
#                                        the SAME tree: solutions/09 links
#                                        solutions/08's files, labs/09 the
#                                        student's own labs/08.
#   PKGS        := libevent              pkg-config packages it compiles and
#                                        links with.  Where one is missing,
#                                        the lab is left out of the build with
#                                        a warning that names it (its tests
#                                        then skip with the same reason).

CC      ?= cc
SAN     ?=
VARIANT := $(if $(SAN),$(SAN),plain)
B       := build/$(VARIANT)

CPPFLAGS := -Icommon
CFLAGS   := -std=c11 -Wall -Wextra -O2 -g -pthread
LDFLAGS  := -pthread
LDLIBS   :=
ifeq ($(SAN),address)
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
else ifeq ($(SAN),thread)
  CFLAGS  += -fsanitize=thread
  LDFLAGS += -fsanitize=thread
else ifeq ($(SAN),)
  # An fd >= FD_SETSIZE passed to FD_SET aborts here instead of silently
  # corrupting memory (lab 04).
  CPPFLAGS += -D_FORTIFY_SOURCE=2
else
  $(error SAN must be address or thread, not '$(SAN)')
endif
# The reference code must build without a single warning.
WERROR_solutions := -Werror
WERROR_common    := -Werror
WERROR_tests     := -Werror

ALL_LABS := $(sort $(notdir $(wildcard solutions/[0-9][0-9]-* labs/[0-9][0-9]-*)))
TREES := solutions labs
.DEFAULT_GOAL := all
-include $(wildcard tests/*/*.mk)

# read_labmk(tree,lab): the lab.mk of one tree's lab, into variables of
# their own (SERVER_SRCS.labs.08-reactor ...).
define read_labmk
SERVER_SRCS :=
CLIENT_SRCS :=
BUILDS_ON :=
BASE_SRCS :=
PKGS :=
include $(1)/$(2)/lab.mk
SERVER_SRCS.$(1).$(2) := $$(SERVER_SRCS)
CLIENT_SRCS.$(1).$(2) := $$(CLIENT_SRCS)
BUILDS_ON.$(1).$(2) := $$(BUILDS_ON)
BASE_SRCS.$(1).$(2) := $$(addprefix $(1)/,$$(BASE_SRCS))
PKGS.$(1).$(2) := $$(PKGS)
endef
$(foreach t,$(TREES),$(foreach l,$(ALL_LABS),$(if $(wildcard $(t)/$(l)/lab.mk),$(eval $(call read_labmk,$(t),$(l))))))

# Every package some lab asks for, asked of pkg-config once:
# PKG_OK.libevent is "yes" when it is installed, PKG_CFLAGS/PKG_LIBS its flags.
ALL_PKGS := $(sort $(foreach t,$(TREES),$(foreach l,$(ALL_LABS),$(PKGS.$(t).$(l)))))
define read_pkg
PKG_OK.$(1)     := $$(shell pkg-config --exists $(1) 2>/dev/null && echo yes)
PKG_CFLAGS.$(1) := $$(if $$(PKG_OK.$(1)),$$(shell pkg-config --cflags $(1)))
PKG_LIBS.$(1)   := $$(if $$(PKG_OK.$(1)),$$(shell pkg-config --libs $(1)))
endef
$(foreach p,$(ALL_PKGS),$(eval $(call read_pkg,$(p))))
# pkgs_missing(tree,lab): the lab's packages that are not installed.
pkgs_missing = $(strip $(foreach p,$(PKGS.$(1).$(2)),$(if $(PKG_OK.$(p)),,$(p))))
MISSING_PKGS :=

# server_srcs(tree,lab) and client_srcs(tree,lab)
server_srcs = $(if $(SERVER_SRCS.$(1).$(2)),$(addprefix $(1)/$(2)/,$(SERVER_SRCS.$(1).$(2))),$(filter-out %/client.c %_test.c,$(wildcard $(1)/$(2)/*.c))) $(BASE_SRCS.$(1).$(2))
client_srcs = $(if $(CLIENT_SRCS.$(1).$(2)),$(addprefix $(1)/$(2)/,$(CLIENT_SRCS.$(1).$(2))),$(wildcard $(1)/$(2)/client.c))
objs        = $(patsubst %.c,$(B)/%.o,$(1))

PROGS :=
define lab_rules
ifneq ($(wildcard $(1)/$(2)),)
ifneq ($(call pkgs_missing,$(1),$(2)),)
MISSING_PKGS += $(call pkgs_missing,$(1),$(2))
$$(info note: $(1)/$(2) is not built: it needs $(call pkgs_missing,$(1),$(2)) (pkg-config cannot find it: README.md's apt-get line installs it))
else
ifneq ($(strip $(call server_srcs,$(1),$(2))),)
PROGS += $(B)/$(1)/$(2)/server
$(B)/$(1)/$(2)/server: $(call objs,$(call server_srcs,$(1),$(2))) $(B)/common/wrap.o
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS) $(foreach p,$(PKGS.$(1).$(2)),$(PKG_LIBS.$(p)))
endif
$(B)/$(1)/$(2)/%.o: CPPFLAGS += $(addprefix -I$(1)/,$(BUILDS_ON.$(1).$(2))) $(foreach p,$(PKGS.$(1).$(2)),$(PKG_CFLAGS.$(p)))
ifneq ($(call client_srcs,$(1),$(2)),)
PROGS += $(B)/$(1)/$(2)/client
$(B)/$(1)/$(2)/client: $(call objs,$(call client_srcs,$(1),$(2))) $(B)/common/wrap.o
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS) $(foreach p,$(PKGS.$(1).$(2)),$(PKG_LIBS.$(p)))
endif
endif
endif
endef
$(foreach t,$(TREES),$(foreach l,$(ALL_LABS),$(eval $(call lab_rules,$(t),$(l)))))

# Unit tests: tests/unit/NAME.c -> build/<variant>/unit/NAME, linked with
# common/ and UNIT_SRCS_NAME (set in a tests/unit/*.mk fragment).
UNIT_TESTS := $(patsubst tests/unit/%.c,$(B)/unit/%,$(wildcard tests/unit/*.c))
define unit_rule
$(B)/unit/$(1): $(B)/tests/unit/$(1).o $(call objs,$(UNIT_SRCS_$(1))) $(B)/common/wrap.o
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach u,$(patsubst tests/unit/%.c,%,$(wildcard tests/unit/*.c)),$(eval $(call unit_rule,$(u))))

# Extra C programs (the load generator, ...) registered by fragments.
PROGS += $(EXTRA_PROGS)

$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WERROR_$(firstword $(subst /, ,$<))) -MMD -MP -c -o $@ $<

.PHONY: all unit test grade compare dist mutants clean help
all: $(PROGS) $(UNIT_TESTS)
unit: $(UNIT_TESTS)

test: all
	@tests/run

grade:
	@tests/grade $(if $(LAB),--lab $(LAB)) $(if $(DIR),--dir $(DIR)) $(if $(FORMAT),--format $(FORMAT)) \
	 $(if $(OUT),--out $(OUT)) $(if $(HIDDEN),--hidden $(HIDDEN)) $(if $(SERVER),--server $(SERVER)) $(if $(CLIENT),--client $(CLIENT))

compare: all
	@if [ -x tests/bench/compare ]; then tests/bench/compare; \
	 else echo "make compare: not yet (the comparison has not landed)"; fi

dist:
	@tests/dist $(if $(OUT),--out $(OUT)) $(if $(LABS),--labs "$(LABS)")

mutants:
	@if [ -x tests/mutants/run ]; then tests/mutants/run $(foreach l,$(LAB),--lab $(l)) $(if $(J),-j $(J)); \
	 else echo "make mutants: instructor-only (tests/mutants/ is not in the student tarball)"; fi

clean:
	rm -rf build

help:
	@echo "make              build common/, every solution and starter, the unit tests"
	@echo "make test         run every lab's tests against solutions/ (+ sanitizers, unit tests, starter checks)"
	@echo "make grade [LAB=04] [DIR=path]  test the student's labs/ and print a score"
	@echo "make compare      run every solution side by side: performance and robustness tables"
	@echo "make mutants [LAB=04]  the kill matrix: each lab's typical mistakes against its tests"
	@echo "make dist [LABS=\"01 02\"]  the student tarball (only these labs)"
	@echo "make SAN=address  ASan+UBSan build   make SAN=thread  TSan build"
	@echo "make clean"

-include $(shell find build -name '*.d' 2>/dev/null)
