# The front door: `make test` is what CI runs (through .ci/run) and what a developer runs before
# pushing. Every target takes PKGS (package patterns, default ./...) so that one package can be
# checked alone: make test PKGS=./internal/admin/...
#
# Time budget for `make test` on the 2-core machines everyone (CI included) has: the whole suite
# stays under 25 minutes, well inside CI's 90, so that a slow test is noticed long before it
# blocks a landing. .ci/run prints the total and warns past 25 minutes. Roughly:
#   deps        about 1 minute once per machine (building staticcheck), plus about 6 minutes
#               once per machine to build kube-apiserver for test/k8s (cached outside the
#               repository by Kubernetes and Go version, see docs/testing.md), and a few
#               minutes once to build helm for test/helm and test/k8s, then nothing
#   lint        2-3 minutes cold (type-checking go-control-plane), seconds with a warm cache
#   unit        the bulk: -race roughly doubles CPU time, and with 2 cores that is felt, so
#               -race runs on every package except the whole-binary suites (NORACE), which are
#               slow by nature and exercise code whose own tests already ran under -race
#   fuzz-short  FUZZTIME_SHORT (10s) per Fuzz function plus a second or two to start it, and
#               about half a minute once for the coverage-instrumented build: 20 fuzz functions
#               cost 4-5 minutes; past that, shorten FUZZTIME_SHORT
# A package whose tests take more than a minute or two should say why, or move its slow part
# behind testing.Short() or into test/e2e.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
# The phases of `make test` must run in order: lint before tests, fuzzing last.
.NOTPARALLEL:
.DEFAULT_GOAL := build

GO ?= go
PKGS ?= ./...
# Extended regular expression over import paths of the packages tested without -race.
NORACE ?= /test/(e2e|conformance|k8s)(/|$$)
TEST_TIMEOUT ?= 10m
FUZZTIME ?= 5m
FUZZTIME_SHORT ?= 10s
# Passed to tools/test-deps.sh, which always installs what the tests drive (chromium);
# --peers also installs the servers and load generators the benchmarks compare against (nginx,
# haproxy, caddy, wrk, nghttp2-client, redis-server).
TEST_DEPS_FLAGS ?=
# Tests run with -update by `make testdata`; every test of the packages using the golden helper
# by default, since only golden comparisons look at the flag.
GOLDEN_RUN ?= .

GOBIN_DIR = $(or $(shell $(GO) env GOBIN),$(firstword $(subst :, ,$(shell $(GO) env GOPATH)))/bin)
STATICCHECK ?= $(GOBIN_DIR)/staticcheck

.PHONY: build test deps lint unit fuzz fuzz-short testdata gen clean

## build: compile the nuncio binary into bin/
build:
	$(GO) build -o bin/nuncio ./cmd/nuncio

## test: install missing test tools, lint, run the tests (-race on most), then fuzz briefly
test: deps lint unit fuzz-short

## deps: install what the tests need when it is missing (see TEST_DEPS_FLAGS)
deps:
	./tools/test-deps.sh $(TEST_DEPS_FLAGS)

## lint: gofmt, go vet and staticcheck (configured in staticcheck.conf)
lint: deps
	./tools/gofmt-check.sh $(PKGS)
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)

## unit: go test, with -race except for the packages matching NORACE
unit:
	NORACE='$(NORACE)' TEST_TIMEOUT='$(TEST_TIMEOUT)' ./tools/gotest.sh $(PKGS)

## fuzz-short: run every Fuzz function for FUZZTIME_SHORT
fuzz-short:
	./tools/fuzz.sh $(FUZZTIME_SHORT) $(PKGS)

## fuzz: run every Fuzz function for FUZZTIME (make fuzz FUZZTIME=30m PKGS=./internal/codec/...)
fuzz:
	./tools/fuzz.sh $(FUZZTIME) $(PKGS)

## testdata: regenerate golden files (tests run with -update) and delete orphaned ones
testdata:
	GOLDEN_RUN='$(GOLDEN_RUN)' ./tools/testdata.sh $(PKGS)

## gen: run go generate
gen:
	$(GO) generate $(PKGS)

## clean: remove build output
clean:
	rm -rf bin/

## bench: the side-by-side benchmark against nginx, HAProxy and Caddy (docs/performance.md);
## BENCH_REPS, BENCH_DURATION, BENCH_PROXIES and BENCH_SCENARIOS narrow it
.PHONY: bench bench-quick
bench:
	ulimit -n 65536 2>/dev/null || ulimit -n $$(ulimit -Hn); $(GO) run ./bench/cmd/benchrun

## bench-quick: every benchmark run once for 3 s, to check the benchmark itself works
bench-quick:
	ulimit -n 65536 2>/dev/null || ulimit -n $$(ulimit -Hn); QUICK=1 $(GO) run ./bench/cmd/benchrun

## bench-xds: `nuncio controller` with 10,000 routes and 1,000 clusters pushing to three ADS
## clients (docs/performance-xds.md); BENCH_XDS_FLAGS are passed on (e.g. -changes 20)
.PHONY: bench-xds
bench-xds: build
	$(GO) run ./bench/xds -nuncio bin/nuncio $(BENCH_XDS_FLAGS)

## bench-k8s: `nuncio controller --kubeconfig` with 10,000 Ingresses over 2,000 Services in a real
## API server, in a private network namespace (root; docs/performance-k8s.md); BENCH_K8S_FLAGS
## are passed on (e.g. -changes 20)
.PHONY: bench-k8s
bench-k8s: build
	./tools/kube-apiserver.sh >/dev/null
	$(GO) run ./bench/k8s -nuncio bin/nuncio $(BENCH_K8S_FLAGS)

## help: list the targets
.PHONY: help
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)
