# Parley — make run | make build | make test | make lint
GO          ?= go
BIN         := bin/parley
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
STATICCHECK := $(shell command -v staticcheck 2>/dev/null || ls $$($(GO) env GOPATH)/bin/staticcheck 2>/dev/null)
HAS_WEB     := $(wildcard web/package.json)
# Go packages of the project (npm packages may ship stray .go files under web/node_modules)
PKGS         = $(shell $(GO) list ./... | grep -v /node_modules/)
HAS_NPM     := $(shell command -v npm 2>/dev/null)
# npm script names defined in web/package.json
WEB_SCRIPTS := $(if $(HAS_WEB),$(shell node -e 'console.log(Object.keys(require("./web/package.json").scripts||{}).join(" "))' 2>/dev/null))

.PHONY: run demo build web web-deps test e2e lint vet clean

## run: build the web app and the binary, then serve with data under ./data
run: build
	PARLEY_DATA_DIR=$${PARLEY_DATA_DIR:-./data} ./$(BIN) serve

## demo: serve with simulated customers on every channel (log-in details are printed)
demo: build
	./scripts/demo.sh

## build: the single binary (with the web app embedded when it could be built)
build: web
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/parley

web-deps:
ifneq ($(HAS_WEB),)
ifneq ($(HAS_NPM),)
	@if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then \
		cd web && npm ci --no-audit --no-fund; fi
endif
endif

## web: build web/dist (skipped with a warning when npm is missing: the binary then serves a minimal page)
web: web-deps
ifneq ($(HAS_WEB),)
ifneq ($(HAS_NPM),)
	cd web && npm run build
else
	@echo "warning: npm not found; building without the web app" >&2
endif
endif

vet:
	$(GO) vet $(PKGS)

## lint: gofmt, go vet, staticcheck (when installed), and the web lint (when defined)
lint: vet
	@out=$$(find . -name '*.go' -not -path './web/node_modules/*' -exec gofmt -l {} +); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
ifneq ($(STATICCHECK),)
	$(STATICCHECK) $(PKGS)
else
	@echo "staticcheck not installed; skipping (go install honnef.co/go/tools/cmd/staticcheck@v0.8.2)" >&2
endif
ifneq ($(filter lint,$(WEB_SCRIPTS)),)
ifneq ($(HAS_NPM),)
	$(MAKE) web-deps
	npm --prefix web run lint
endif
endif

## test: vet, staticcheck, go test -race (all Go packages), and the web unit tests (when defined)
test: vet
ifneq ($(STATICCHECK),)
	$(STATICCHECK) $(PKGS)
endif
	$(GO) test -race $(PKGS)
ifneq ($(filter test,$(WEB_SCRIPTS)),)
ifneq ($(HAS_NPM),)
	$(MAKE) web-deps
	npm --prefix web run test
endif
endif
ifneq ($(filter e2e,$(WEB_SCRIPTS)),)
ifneq ($(HAS_NPM),)
	$(MAKE) e2e
endif
endif

## e2e: browser tests (Playwright in Debian's Chromium) against a real server and the provider simulator
e2e: build
	./scripts/e2e.sh

clean:
	rm -rf bin
