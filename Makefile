# syncord: see README.md. `make demo` and `make check` are the two entry
# points; both install what they need first (scripts/deps.sh, apt-get).

SHELL     := /bin/bash
GO        ?= go
PREFIX    ?= /usr/local
DESTDIR   ?=
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION)
E2E_TIMEOUT ?= 60m

.PHONY: all build deps test e2e check lint demo generate install clean fixtures bench bench-workloads image

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/syncord ./cmd/syncord
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/syncord-host ./cmd/syncord-host
	@for b in bin/syncord bin/syncord-host; do \
		file $$b | grep -q 'statically linked' || { echo "$$b is not statically linked" >&2; exit 1; }; \
		echo "$$b: $$(du -h $$b | cut -f1), static"; \
	done

deps:
	bash scripts/deps.sh

# Unit tests everywhere; privileged tests (root, private bpffs) run when root.
test:
	$(GO) test -count=1 ./...
	# Mutated argv through a real agent for 60 s: it must stay up and answer.
	$(GO) test -count=1 -run '^$$' -fuzz '^FuzzAgentArgv$$' -fuzztime 60s ./cmd/syncord

# Boots Debian's stock kernel under QEMU TCG for every e2e test.
e2e:
	SYNCORD_E2E=1 $(GO) test -count=1 -p 1 -timeout $(E2E_TIMEOUT) -v ./e2e/ 2>&1 | tee e2e.log | grep --line-buffered -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|^ +[a-z_0-9]+_test.go:[0-9]+: e2e: ' ; \
	exit $${PIPESTATUS[0]}

# What .ci/run calls: everything, after installing what it needs.
check: deps lint build test e2e

lint:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

# Regenerates committed BPF objects (needs clang/llvm).
generate:
	$(GO) generate ./...

# The main job on an embedded default: boot the 2x2 NUMA VM, pin it,
# profile rename_lock, run a will-it-scale sweep through the agent and
# plot it (the figure stays in demo-results/).
demo: deps build
	bash scripts/demo.sh

# Refreshes the sysfs fixtures captured from real trees (this machine and
# the e2e VMs); the 8x28 tree is synthesized.
fixtures: build
	$(GO) run ./numa/internal/capture -root /sys -o numa/testdata/host
	$(GO) run ./numa/internal/synth -o numa/testdata
	SYNCORD_E2E=1 SYNCORD_UPDATE_FIXTURES=1 $(GO) test -count=1 -run '^TestTopology' -v ./e2e/

# A bootable Debian guest image with syncord and the agent unit (needs
# root and mmdebstrap; the bootstrapped base is cached in .cache/image).
IMAGE ?= syncord-guest.img
image: build
	@command -v mmdebstrap >/dev/null || apt-get install -y -q mmdebstrap
	bin/syncord-host image -o $(IMAGE) --cache .cache/image --unit dist/syncord-agent.service

# Figures for the notes: Go benchmarks, then the drivers against minimal C
# loops of the same system calls (gcc), run alternately in one session;
# with ARTIFACT=<SynCord checkout or git mirror>, also the syncord binary
# against the artifact's own will-it-scale and fxmark builds.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

bench-workloads:
	$(GO) run ./bench/cmpref -rounds 7 -secs 2
	$(if $(ARTIFACT),$(GO) run ./bench/cmpref -artifact $(ARTIFACT) -rounds 7 -secs 5)
	$(GO) test ./workloads/xdir ./workloads/metis ./workloads/leveldb -run '^$$' -bench 'XDirVsC|MetisWrmem|LevelDBReadRandom' -benchtime 1x -timeout 30m

install: build
	install -D -m 0755 bin/syncord $(DESTDIR)$(PREFIX)/bin/syncord
	install -D -m 0755 bin/syncord-host $(DESTDIR)$(PREFIX)/bin/syncord-host
	mkdir -p $(DESTDIR)/etc/systemd/system
	sed 's|/usr/local/bin/syncord|$(PREFIX)/bin/syncord|' dist/syncord-agent.service > $(DESTDIR)/etc/systemd/system/syncord-agent.service
	mkdir -p $(DESTDIR)/etc/systemd/system/multi-user.target.wants
	ln -sf /etc/systemd/system/syncord-agent.service $(DESTDIR)/etc/systemd/system/multi-user.target.wants/syncord-agent.service

clean:
	rm -rf bin e2e.log e2e/logs
	@echo "kept the kernel download in .cache/e2e (rm -rf .cache to drop it)"
