# Facilities-monitoring gateway.
#   make run    the whole demo: InfluxDB, Mosquitto, simulated site, gateway
#   make run-multisite  a monitoring center and three simulated sites bridged to it (docs/multisite.md)
#   make test   install what the tests need, then vet, format check and every test
#   make package  .deb packages for amd64, arm64 and armhf in bin/package
GO      ?= go
PKGS    := ./...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
DEB_ARCHS ?= amd64 arm64 armhf

# Unit tests of the packages that decode bytes or use atomics, on arm64 and
# armhf (32-bit: 64-bit atomics need 8-byte alignment) under qemu-user.
# The queue's crash loop re-executes its own test binary: without binfmt_misc
# (containers, CI) an ARM child cannot be started, so it is left out here.
ARM_PKGS ?= ./collectors ./collectors/queue ./collectors/modbus ./collectors/mqtt ./collectors/influx ./rules ./internal/sdnotify
ARM_SKIP ?= ^TestCrashLoopAcknowledgedRecordsSurviveSIGKILL$$

.PHONY: all build deps run run-multisite test lint bench fuzz clean package test-arm test-upgrade

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/gateway ./gateway

test-arm:
	@command -v qemu-aarch64-static >/dev/null || { echo "qemu-user-static missing: scripts/install-deps.sh"; exit 1; }
	CGO_ENABLED=0 GOARCH=arm64 $(GO) test -trimpath -short -count=1 -skip '$(ARM_SKIP)' -exec qemu-aarch64-static $(ARM_PKGS)
	CGO_ENABLED=0 GOARCH=arm GOARM=7 $(GO) test -trimpath -short -count=1 -skip '$(ARM_SKIP)' -exec qemu-arm-static $(ARM_PKGS)

# The previous release's state through this binary (builds that release
# from a temporary git worktree: needs the repository's history).
test-upgrade: deps
	GATEWAY_TEST_UPGRADE=1 $(GO) test -count=1 -timeout 30m -run TestUpgradeFromPreviousReleaseStateIntegration ./gateway

package:
	@for a in $(DEB_ARCHS); do VERSION=$(VERSION) GO=$(GO) scripts/package/build-deb.sh $$a bin/package || exit 1; done

deps:
	scripts/install-deps.sh

run: deps build
	scripts/run-demo.sh

run-multisite: deps build
	scripts/run-multisite.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

test: deps lint build
	$(GO) test -count=1 -timeout 12m $(PKGS)

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 3x ./collectors/...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./collectors/mqtt
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime 30s ./gateway/config
	$(GO) test -run '^$$' -fuzz FuzzAPIBodies -fuzztime 30s ./dashboard
	$(GO) test -run '^$$' -fuzz FuzzDecodeRecord -fuzztime 30s ./collectors/queue

clean:
	rm -rf bin/gateway .run
