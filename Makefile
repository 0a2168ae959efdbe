# tickwire: make run (the demo) and make test (everything, with -race).
SHELL   := /bin/bash
GO      ?= go
MODULES := ./shared/... ./collector/... ./publisher/... ./e2e/...
BENCHTIME ?= 2s
STATICCHECK ?= 2026.2.2

.PHONY: all build run test bench lint fuzz soak clean

all: build

build:
	@mkdir -p bin
	$(GO) build -o bin/ ./collector ./publisher

run: build
	@scripts/run.sh

test:
	@scripts/ensure-redis.sh
	$(GO) vet $(MODULES)
	@if command -v node >/dev/null; then node --test publisher/internal/web/static/test/; \
	  else echo "node not installed: skipping the JavaScript client's tests"; fi
	$(GO) test -race -count=1 -timeout 15m $(MODULES)

bench:
	@scripts/ensure-redis.sh
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(MODULES)

lint:
	@out=$$(gofmt -l shared collector publisher); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(MODULES)
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK)
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" staticcheck $(MODULES)

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
