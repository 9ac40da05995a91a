# Facilities-monitoring gateway.
#   make run    the whole demo: InfluxDB, Mosquitto, simulated site, gateway
#   make test   install what the tests need, then vet, format check and every test
#   make package  .deb packages for amd64, arm64 and armhf in bin/package
GO      ?= go
PKGS    := ./...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
DEB_ARCHS ?= amd64 arm64 armhf

.PHONY: all build deps run test lint bench fuzz clean package

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/gateway ./gateway

package:
	@for a in $(DEB_ARCHS); do VERSION=$(VERSION) GO=$(GO) scripts/package/build-deb.sh $$a bin/package || exit 1; done

deps:
	scripts/install-deps.sh

run: deps build
	scripts/run-demo.sh

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
