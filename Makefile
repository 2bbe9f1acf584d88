# oshirase — make run starts everything locally; make test runs the whole suite.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
MODULES := wire bus service pub sub dev loadtest client
GO ?= go

.PHONY: all build run test test-go test-js fuzz check-generated lint deps bench bench-full soak mutation clean

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

# Two lanes: dev (the binaries end to end, mostly waiting on real
# processes) beside every other module; dev's output is printed when it ends.
# bus runs its suite on three topologies (a single Redis, a cluster,
# Sentinel) and took 10 minutes here beside the dev lane: both lanes get 20.
test-go: build ## Go unit and end-to-end tests, with the race detector
	mkdir -p .cache; status=0; \
	(cd dev && $(GO) test -race -count=1 -timeout 20m ./...) > .cache/test-dev.log 2>&1 & dev=$$!; \
	for m in $(filter-out dev,$(MODULES)); do (cd $$m && $(GO) test -race -count=1 -timeout 20m ./...) || status=1; done; \
	wait $$dev || status=1; cat .cache/test-dev.log; exit $$status

fuzz: ## every fuzz target for FUZZTIME (default 3s) beyond its seed corpus
	./scripts/fuzz.sh

test-js: build ## real client libraries and the browser
	./e2e/run.sh

bench: ## reduced benchmark run (under five minutes), prints the table
	./loadtest/bench.sh --quick

bench-full: ## the full benchmark run
	./loadtest/bench.sh

soak: build ## soak sub for SOAK_DURATION (default 10m): churning connections, publishing, slow consumers; RSS, goroutines and Redis keys must stay flat (not part of make test)
	./loadtest/soak.sh

mutation: ## mutation testing of the guarantee packages (not part of make test; PKGS="bus wire" for some)
	./scripts/mutation.sh $(PKGS)

clean:
	rm -rf bin
