# tickwire: make run (the demo) and make test (everything, with -race).
SHELL   := /bin/bash
GO      ?= go
MODULES := ./shared/... ./collector/... ./publisher/... ./e2e/... ./testkit/...
BENCHTIME ?= 2s
# staticcheck ships in honnef.co/go/tools; the proxy serves its module versions.
STATICCHECK ?= v0.8.2

.PHONY: all build run test bench lint fmt-check staticcheck fuzz soak clean

all: build

build:
	@mkdir -p bin
	$(GO) build -o bin/ ./collector ./publisher

run: build
	@scripts/run.sh

test: fmt-check
	@scripts/ensure-redis.sh
	$(GO) vet $(MODULES)
	@$(MAKE) --no-print-directory staticcheck
	@if command -v node >/dev/null; then node --test publisher/internal/web/static/test/; \
	  else echo "node not installed: skipping the JavaScript client's tests"; fi
	$(GO) test -race -count=1 -timeout 15m $(MODULES)

bench:
	@scripts/ensure-redis.sh
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(MODULES)

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
	@scripts/ensure-redis.sh
	TICKWIRE_SOAK=$(SOAK) $(GO) test -count=1 -race -run '^TestSoak$$' -timeout 30m -v ./e2e/

clean:
	rm -rf bin .run
