# libpatchcore build. `make` builds build/lib/libpatchcore.so (+ the CLI in build/bin);
# `make test` installs what is missing, builds and runs every test suite;
# `make demo` runs the main job end to end. Build flags live here and nowhere else.

VERSION_MAJOR := 0
VERSION_MINOR := 1
VERSION_PATCH := 0
VERSION       := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

ROOT    := $(abspath .)
DEPS    ?= $(ROOT)/.deps
BUILD   ?= $(ROOT)/build
GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
LIBDIR  := $(BUILD)/lib
BINDIR  := $(BUILD)/bin
SONAME  := libpatchcore.so.$(VERSION_MAJOR)
LIBFILE := $(LIBDIR)/libpatchcore.so.$(VERSION)

export CGO_ENABLED := 1
export CGO_CFLAGS  := -I$(DEPS)/include -O2
export CGO_LDFLAGS := -L$(DEPS)/lib -Wl,--exclude-libs,ALL
export PATCHCORE_ORT_LIBRARY ?= $(DEPS)/lib/libonnxruntime.so.1

VERSION_LDFLAG := -X github.com/libpatchcore/libpatchcore/core.Version=$(VERSION)
GO_SOURCES := $(shell find core internal capi cmd -name '*.go' -not -name '*_test.go' 2>/dev/null) go.mod go.sum include/patchcore.h capi/capi.h capi/libpatchcore.map

.PHONY: all lib cli deps test test-go test-race test-c test-python test-csharp fuzz-short demo bench clean

all: lib cli

deps: $(DEPS)/.stamp
$(DEPS)/.stamp: scripts/install-deps.sh
	bash scripts/install-deps.sh
	touch $@

lib: $(LIBDIR)/libpatchcore.so
$(LIBDIR)/libpatchcore.so: $(DEPS)/.stamp $(GO_SOURCES)
	mkdir -p $(LIBDIR)
	$(GO) build -buildmode=c-shared -trimpath \
	  -ldflags "$(VERSION_LDFLAG) -extldflags '-Wl,-soname,$(SONAME) -Wl,--version-script=$(ROOT)/capi/libpatchcore.map'" \
	  -o $(LIBFILE) ./capi
	rm -f $(LIBDIR)/*.h  # the generated header is not the interface: include/patchcore.h is
	ln -sf libpatchcore.so.$(VERSION) $(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(LIBDIR)/libpatchcore.so
	cp -f $(DEPS)/lib/libonnxruntime.so.1 $(LIBDIR)/

cli: $(BINDIR)/patchcore
$(BINDIR)/patchcore: $(DEPS)/.stamp $(GO_SOURCES)
	mkdir -p $(BINDIR)
	$(GO) build -trimpath -ldflags "$(VERSION_LDFLAG)" -o $(BINDIR)/patchcore ./cmd/patchcore
	cp -f $(DEPS)/lib/libonnxruntime.so.1 $(BINDIR)/

test: test-go test-race test-c test-python test-csharp

# Plain `go test` also replays every fuzz target's seed corpus. The faultinject build tag
# makes worker goroutines panic on demand (internal/parallel): the Inject tests check that
# such a panic comes back as an internal error and poisons only the model involved.
test-go: $(DEPS)/.stamp
	$(GO) vet ./...
	$(GO) vet -tags faultinject ./core ./capi ./internal/parallel
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -tags faultinject -run Inject ./core ./capi

# The race detector over the library's Go packages: ~6 minutes on 2 cores, hence a step of
# its own in `make test` rather than part of test-go.
test-race: $(DEPS)/.stamp
	$(GO) test -count=1 -race ./core/... ./internal/... ./capi/...

# Every fuzz target for FUZZTIME each (scripts/fuzz.sh; `scripts/fuzz.sh 10m` for a long run).
FUZZTIME ?= 10s
fuzz-short: $(DEPS)/.stamp
	bash scripts/fuzz.sh $(FUZZTIME)

# The C ABI: header compile checks, exported symbols, CMake build + ctest of examples/c,
# an installed-package consumer (find_package and pkg-config), valgrind.
test-c: lib
	bash scripts/test-c.sh

# The Python binding: a fresh venv (build/venv-python), pip install bindings/python, pytest.
test-python: lib
	bash scripts/test-python.sh

# The C# binding under Mono: builds bindings/csharp into build/csharp, runs its tests and example.
test-csharp: lib
	bash scripts/test-csharp.sh

demo: all
	bash scripts/demo.sh

bench: $(DEPS)/.stamp
	bash bench/run.sh $(BENCH_ARGS)

clean:
	rm -rf $(BUILD)
