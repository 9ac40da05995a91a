# Facilities-monitoring gateway.
#   make run    the whole demo: InfluxDB, Mosquitto, simulated site, gateway
#   make test   install what the tests need, then vet, format check and every test
GO      ?= go
PKGS    := ./...

.PHONY: all build deps run test lint bench fuzz clean

all: build

build:
	$(GO) build -o bin/gateway ./gateway

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
