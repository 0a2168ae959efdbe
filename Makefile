# tickwire: make run (the demo) and make test (everything, with -race).
SHELL   := /bin/bash
GO      ?= go
MODULES := ./shared/... ./collector/... ./publisher/... ./e2e/... ./testkit/...
BENCHTIME ?= 2s
# staticcheck ships in honnef.co/go/tools; the proxy serves its module versions.
STATICCHECK ?= v0.8.2

.PHONY: all build run replay stdin test bench bench-e2e bench-floor bench-storm bench-scale lint fmt-check staticcheck monitoring-check fuzz soak clean

all: build

# The version `version` prints and tickwire_build_info exports: git describe
# of the checkout (a build outside git falls back to the module's build info).
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILDINFO := github.com/tickwire/tickwire/shared/buildinfo
LDFLAGS  := -X '$(BUILDINFO).version=$(VERSION)' -X '$(BUILDINFO).revision=$(REVISION)'

build:
	@mkdir -p bin
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./collector ./publisher

run: build
	@scripts/run.sh

# Your own data, beside the demo (or alone): a key prefix of its own, a
# collector on 127.0.0.1:9102 and a publisher on :8090, on the Redis of
# make run when it is up. At the end of a file the publisher stays up.
#   make replay FILE=trades.csv [SPEED=0] [LOOP=true]
#   my-feed | make stdin
FILE  ?=
SPEED ?= 1
LOOP  ?= false
OWN   := SECRET_FILE=.run/jwt-secret PUB_PORTS=8090 COLLECTOR_ADDR=127.0.0.1:9102
replay: build
	@if [ -z "$(FILE)" ]; then echo "usage: make replay FILE=trades.csv [SPEED=0] [LOOP=true]" >&2; exit 2; fi
	@test -r "$(FILE)" || { echo "make replay: cannot read $(FILE)" >&2; exit 2; }
	@$(OWN) RUN_DIR=.run/replay STREAM_PREFIX=replay COLLECTOR_SOURCE=replay \
	  COLLECTOR_REPLAY_FILE="$(abspath $(FILE))" COLLECTOR_REPLAY_SPEED="$(SPEED)" COLLECTOR_REPLAY_LOOP="$(LOOP)" \
	  scripts/run.sh

stdin: build
	@$(OWN) RUN_DIR=.run/stdin STREAM_PREFIX=stdin COLLECTOR_SOURCE=stdin scripts/run.sh

test: fmt-check
	@scripts/ensure-deps.sh redis '?promtool' '?nginx'
	@scripts/ensure-browser.sh
	$(GO) vet $(MODULES)
	@$(MAKE) --no-print-directory staticcheck
	@$(MAKE) --no-print-directory monitoring-check
	@if command -v node >/dev/null; then node --test publisher/internal/web/static/test/; \
	  else echo "node not installed: skipping the JavaScript client's tests"; fi
	$(GO) test -race -count=1 -timeout 15m $(MODULES)

bench:
	@scripts/ensure-deps.sh redis
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(MODULES)

# Named workloads W1-W4 (issue 9) with the real binaries on loopback;
# PRESETS, DURATION, WARMUP and FLUSH are passed through.
bench-e2e:
	@scripts/bench-e2e.sh

# The machine's floor under W3 and the collector at light load: loopback
# writes and Redis round trips with no tickwire code (BENCHMARKS.md).
bench-floor:
	scripts/bench-floor.sh

# Many users on one replica (15 000 connections in a 10 s storm), and the
# scale run (1, 2, 4 replicas on a 3-master cluster behind nginx); figures
# in BENCHMARKS.md and docs/scaling.md. Knobs: see the scripts' heads.
bench-storm:
	scripts/bench-storm.sh

bench-scale:
	scripts/bench-scale.sh

lint: fmt-check staticcheck
	$(GO) vet $(MODULES)

fmt-check:
	@out=$$(gofmt -l shared collector publisher e2e testkit); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# staticcheck is installed (pinned) into GOPATH/bin when that version is missing.
STATICCHECK_BIN = $(shell $(GO) env GOPATH)/bin/staticcheck
staticcheck:
	@if ! "$(STATICCHECK_BIN)" -version 2>/dev/null | grep -q "$(STATICCHECK:v%=%)"; then \
	  echo "==> installing staticcheck $(STATICCHECK)"; \
	  $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK); fi
	"$(STATICCHECK_BIN)" $(MODULES)

# Alert rules: syntax (promtool check rules) and behaviour (promtool test
# rules). Skipped, with a note, when promtool is missing and cannot be
# installed (not root).
monitoring-check:
	@scripts/ensure-deps.sh '?promtool'
	@if command -v promtool >/dev/null; then \
	  promtool check rules deploy/monitoring/alerts.yml && \
	  (cd deploy/monitoring && promtool test rules alerts_test.yml); \
	else echo "promtool not installed: skipping the alert rules' checks"; fi

FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseChannel$$' -fuzztime $(FUZZTIME) ./shared/event/
	$(GO) test -run '^$$' -fuzz '^FuzzFromEntry$$' -fuzztime $(FUZZTIME) ./shared/event/
	$(GO) test -run '^$$' -fuzz '^FuzzParseID$$' -fuzztime $(FUZZTIME) ./shared/event/
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./shared/auth/
	$(GO) test -run '^$$' -fuzz '^FuzzParseLine$$' -fuzztime $(FUZZTIME) ./collector/internal/source/
	$(GO) test -run '^$$' -fuzz '^FuzzParseCSVRow$$' -fuzztime $(FUZZTIME) ./collector/internal/source/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeTrade$$' -fuzztime $(FUZZTIME) ./collector/internal/derive/

SOAK ?= 3m
soak:
	@scripts/ensure-deps.sh redis
	TICKWIRE_SOAK=$(SOAK) $(GO) test -count=1 -race -run '^TestSoak$$' -timeout 30m -v ./e2e/

clean:
	rm -rf bin .run
