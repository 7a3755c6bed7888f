# tend: make build | test | lint | fuzz | bench | demo
GO          ?= go
BIN         := bin
CACHE       := .cache
VERSION     ?= 0.1.0
LDFLAGS     := -X main.version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(CACHE)/staticcheck-$(STATICCHECK_VERSION)/staticcheck
FUZZTIME    ?= 20s
BENCHTIME   ?= 5x

.PHONY: all build test engines test-unit bench-smoke fuzz-short fuzz bench lint demo clean

all: build

## build: tend, and beside it tend-supervise, which supervises each replica
## of the process provider in about 1.4 MiB of private memory (tend itself,
## which supervises them when tend-supervise is not beside it, in 6.4 MiB).
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/tend ./cmd/tend-supervise

## test: the real backends first (a Docker Engine), then every test, every
## benchmark once (so none rots; the figures come from make bench), then
## each fuzz target for a short while.
test: engines
	$(MAKE) test-unit bench-smoke fuzz-short

## engines: make the backends the provider tests need available: install and
## start dockerd when missing (root only), build the image of systemd the
## systemd provider's tests run in (about a minute cold), and build the
## Kubernetes control plane the kubernetes provider's tests start (about 12
## minutes cold on 2 cores), and the S3 server (versitygw) the s3 backup
## destination's tests start (about 4 minutes cold). They are cached in
## ~/.cache/tend. Without them, those tests skip, or fail with
## TEND_REQUIRE_DOCKER=1, TEND_REQUIRE_SYSTEMD=1, TEND_REQUIRE_KUBERNETES=1
## or TEND_REQUIRE_S3=1. PostgreSQL (the PostgreSQL state store's tests
## start a server from it in a temporary directory) is Debian's package,
## installed when missing (hack/postgres.sh; TEND_REQUIRE_POSTGRES=1). So
## is chromium, the browser the dashboard's test drives (hack/chromium.sh;
## TEND_REQUIRE_CHROMIUM=1).
engines:
	./hack/postgres.sh install >/dev/null || [ "$$TEND_REQUIRE_POSTGRES" != 1 ]
	./hack/docker-engine.sh up
	./hack/systemd-image.sh >/dev/null || [ "$$TEND_REQUIRE_SYSTEMD" != 1 ]
	./hack/k8s-cluster.sh build >/dev/null || [ "$$TEND_REQUIRE_KUBERNETES" != 1 ]
	./hack/s3-server.sh build >/dev/null || [ "$$TEND_REQUIRE_S3" != 1 ]
	./hack/chromium.sh

## TestDockerFleet restarts dockerd, which would cut the other packages'
## containers (the systemd tests run in one), so it runs alone, after them.
## -timeout: cmd/tend's tests take 5 to 10 minutes under -race on 2 busy
## cores, past go test's default of 10 minutes when the machine is loaded.
test-unit:
	$(GO) test -race -count=1 -timeout 30m -skip '^TestDockerFleet$$' ./...
	TEND_DOCKERD_RESTART=1 $(GO) test -race -count=1 -run '^TestDockerFleet$$' ./cmd/tend

## -short: the benchmarks that start real servers (BenchmarkProcessApply)
## run at a tenth of their size.
bench-smoke:
	$(GO) test ./... -run '^$$' -bench . -benchtime 1x -short

fuzz-short:
	$(GO) test ./spec -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME)
	$(GO) test ./spec/diagtext -run '^$$' -fuzz '^FuzzWrite$$' -fuzztime $(FUZZTIME)

## fuzz: a longer fuzzing session (FUZZTIME=10m make fuzz), with the lock
## file's parser too (its seeds run in every go test of ./spec).
fuzz: FUZZTIME = 5m
fuzz: fuzz-short
	$(GO) test ./spec -run '^$$' -fuzz '^FuzzLockParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s

## bench: the performance targets; see the figures in the README.
bench:
	$(GO) test ./spec ./spec/diagtext ./reconcile ./reconcile/dashboard ./reconcile/autoscale ./reconcile/state ./reconcile/source ./reconcile/backup ./reconcile/versions ./providers/docker ./providers/null -run '^$$' -bench . -benchtime $(BENCHTIME) -benchmem
	$(GO) test ./cmd/tend -run '^$$' -bench WebhookToApply -benchtime 20x
	$(GO) test ./cmd/tend -run '^$$' -bench ProcessApply -benchtime 3x

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

$(STATICCHECK):
	GOBIN=$(CURDIR)/$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## demo: the main job on the embedded defaults (process provider, SQLite store).
demo: build
	./hack/demo.sh

clean:
	rm -rf $(BIN) demo
