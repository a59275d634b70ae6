# Berth build. `make demo` runs a container end to end; `make test` runs
# every test (unit + integration; needs root, runc, overlayfs).
PREFIX   ?= /usr/local
DESTDIR  ?=
GO       ?= go
GOFLAGS  ?= -buildvcs=false
BINARIES := berthd ctr containerd-shim-berth-v2 berth-testimage
TEST_TIMEOUT ?= 15m

.PHONY: all build binaries test unit integration protos verify-protos install uninstall clean demo bench fuzz lint check-deps

all: build

build: binaries

binaries: $(addprefix bin/,$(BINARIES))

bin/%: FORCE
	@mkdir -p bin
	@if [ -d cmd/$* ]; then $(GO) build $(GOFLAGS) -o $@ ./cmd/$*; fi

FORCE:

# berthd and ctr are built without cgo (the pure-Go resolver and os/user
# suffice: the daemon dials unix sockets, pulls happen in ctr), so neither
# maps libc; with -trimpath; and with urfave/cli's man/markdown generators
# left out (urfave_cli_no_docs), which dropped blackfriday and its ~1 MB
# entity map that every berthd and ctr process built at init. The kernel
# maps nearly the whole binary of a running daemon (fault-around), so its
# size is most of berthd's idle RSS.
DAEMON_BUILD := CGO_ENABLED=0 $(GO) build $(GOFLAGS) -trimpath -tags urfave_cli_no_docs

# berthd also leaves out gRPC's request tracing (grpcnotrace: berthd never
# enabled it nor served its /debug/requests page), whose golang.org/x/net/
# trace linked html/template. With no template package in berthd (see
# cmd/berthd/cli.go) the linker can drop unused methods again: a 20 MB
# binary instead of 25 MB, about 2.7 MiB less resident memory. The tag
# is appended to DAEMON_BUILD's -tags list.

bin/berthd: FORCE
	@mkdir -p bin
	$(DAEMON_BUILD),grpcnotrace -o $@ ./cmd/$(@F)

# ctr too: it never served gRPC traces either, and every ctr process paid
# for initialising the trace and template packages (0.6 MB of binary).
bin/ctr: FORCE
	@mkdir -p bin
	$(DAEMON_BUILD),grpcnotrace -o $@ ./cmd/$(@F)

# The shim is built without cgo and stripped: it runs once per container and
# its size and RSS are what every running container pays (the kernel maps
# nearly all of the binary's pages). Inlining is off except in the runtime:
# about 5% smaller, and the shim is idle but for a few calls per container.
# It uses Go's previous garbage collector (GOEXPERIMENT=nogreenteagc): the
# default one keeps more memory beside the heap, and measured here each shim
# ~0.2 MiB larger both at start and after its periodic collections; a shim
# collects a tiny heap rarely, so its speed does not matter.
bin/containerd-shim-berth-v2: FORCE
	@mkdir -p bin
	@if [ -d cmd/containerd-shim-berth-v2 ]; then GOEXPERIMENT=nogreenteagc CGO_ENABLED=0 $(GO) build $(GOFLAGS) -trimpath -gcflags=all=-l -gcflags=runtime= -ldflags '-s -w' -o $@ ./cmd/containerd-shim-berth-v2; fi

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'))" || { gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

unit:
	$(GO) test $(GOFLAGS) -count=1 -p 2 $$($(GO) list ./... | grep -v /integration)

integration: binaries
	$(GO) test $(GOFLAGS) -count=1 -p 1 -timeout $(TEST_TIMEOUT) ./integration/...

# The one test command (README, CI): lint, generated code up to date, unit, integration.
test: lint verify-protos unit integration

protos:
	bash api/generate.sh

verify-protos:
	@if [ -f api/verify.sh ]; then bash api/verify.sh; fi

fuzz:
	@for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$t/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "== $$t $$f"; $(GO) test $(GOFLAGS) -run '^$$' -fuzz "^$$f$$" -fuzztime 20s $$t || exit 1; \
	  done; done

demo: binaries
	bash contrib/demo.sh

bench: binaries
	bash contrib/bench.sh

install: binaries
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/berth $(DESTDIR)/lib/systemd/system
	install -m 0755 bin/berthd bin/ctr bin/containerd-shim-berth-v2 $(DESTDIR)$(PREFIX)/bin/
	@[ -f $(DESTDIR)/etc/berth/config.toml ] || install -m 0644 contrib/config.toml $(DESTDIR)/etc/berth/config.toml
	sed 's#/usr/local/bin#$(PREFIX)/bin#g' contrib/systemd/berthd.service > $(DESTDIR)/lib/systemd/system/berthd.service

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/bin/,berthd ctr containerd-shim-berth-v2) $(DESTDIR)/lib/systemd/system/berthd.service

clean:
	rm -rf bin
