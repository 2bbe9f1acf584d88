# oshirase — make run starts everything locally; make test runs the whole suite.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
MODULES := wire bus service pub sub dev loadtest
GO ?= go

.PHONY: all build run test test-go test-js fuzz check-generated lint deps bench bench-full mutation clean

all: build

build: ## build bin/pub and bin/sub
	cd pub && $(GO) build -o ../bin/pub .
	cd sub && $(GO) build -o ../bin/sub .

run: build ## start Redis (real redis-server if on PATH, else embedded), pub and sub; Ctrl-C stops all
	cd dev && $(GO) run ./cmd/run

deps: ## install what the tests need (redis-server, chromium, npm packages)
	./scripts/deps.sh

test: deps check-generated lint test-go fuzz test-js ## the whole suite

check-generated: ## fail when gqlgen output is stale
	./scripts/check-generated.sh

lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done

test-go: build ## Go unit and end-to-end tests, with the race detector
	status=0; for m in $(MODULES); do (cd $$m && $(GO) test -race -count=1 -timeout 12m ./...) || status=1; done; exit $$status

fuzz: ## every fuzz target for FUZZTIME (default 3s) beyond its seed corpus
	./scripts/fuzz.sh

test-js: build ## real client libraries and the browser
	./e2e/run.sh

bench: ## reduced benchmark run (under five minutes), prints the table
	./loadtest/bench.sh --quick

bench-full: ## the full benchmark run
	./loadtest/bench.sh

mutation: ## mutation testing of the guarantee packages (not part of make test; PKGS="bus wire" for some)
	./scripts/mutation.sh $(PKGS)

clean:
	rm -rf bin
