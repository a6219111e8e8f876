# certlake: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
GOBIN := $(shell go env GOPATH)/bin
export PATH := $(PATH):$(GOBIN)

.PHONY: demo test test-short lint bench bench-full tools fuzz

tools:
	@scripts/ensure-temporal.sh
	@scripts/ensure-versitygw.sh

## demo: dev server + Web UI, in-process CT logs, a lake with holes, backfill into staging, merge.
demo: tools
	go run ./internal/demo

## test: the whole suite (unit, integration, end to end against a real dev server).
test: tools
	go test -race -timeout 45m ./...

test-short:
	go test -short ./...

## lint: gofmt, go vet, staticcheck (exceptions in staticcheck.conf) and workflowcheck
## (determinism of workflows/; exceptions in workflowcheck.config.yaml).
lint:
	@scripts/ensure-lint-tools.sh
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: files above need formatting" >&2; exit 1)
	go vet ./...
	staticcheck ./...
	workflowcheck -config workflowcheck.config.yaml ./workflows/...

## fuzz: every fuzz target for FUZZTIME (default 15s) each; a crash fails.
fuzz:
	scripts/fuzz.sh

## bench: small benchmark run (seconds); bench-full: the full-size figures (minutes).
bench: tools
	go run ./internal/bench -size small

bench-full: tools
	go run ./internal/bench -size full
