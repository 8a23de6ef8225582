# coredns-gtm: `make run` serves Corefile.example on port 1053, `make test` runs every test.
GO      ?= go
BINARY  ?= coredns-gtm
DEMO_DB  = demo/geo-city.mmdb demo/geo-asn.mmdb

.PHONY: build run test deps demo-db lint fuzz bench clean

build:
	$(GO) build -o $(BINARY) ./cmd/coredns-gtm

$(DEMO_DB): internal/mkgeodb/main.go geo/geotest/*.go
	$(GO) run ./internal/mkgeodb -city demo/geo-city.mmdb -asn demo/geo-asn.mmdb

demo-db: $(DEMO_DB)

run: build demo-db
	./$(BINARY) -conf Corefile.example

# deps installs what the tests need and cannot find (chromium, a public mmdb, staticcheck, etcd).
deps:
	bash scripts/test-deps.sh

lint:
	$(GO) vet ./...
	$$($(GO) env GOPATH)/bin/staticcheck ./...

test: deps demo-db lint
	GTM_REAL_COUNTRY_MMDB=$${GTM_REAL_COUNTRY_MMDB:-$(CURDIR)/.cache/realdb/country.mmdb} \
	GTM_REAL_CITY_MMDB=$${GTM_REAL_CITY_MMDB:-$(CURDIR)/.cache/realdb/city.mmdb} \
	GTM_REAL_ASN_MMDB=$${GTM_REAL_ASN_MMDB:-$(CURDIR)/.cache/realdb/asn.mmdb} \
	GTM_ETCD=$${GTM_ETCD:-$(CURDIR)/.cache/bin/etcd} \
	GTM_TOFU=$${GTM_TOFU:-$(CURDIR)/.cache/bin/tofu} \
	$(GO) test -race -count=1 -timeout 20m ./...

# Longer fuzzing than the seed-corpus runs of `make test`.
fuzz:
	$(GO) test ./plugin -run '^$$' -fuzz FuzzParse -fuzztime 60s
	$(GO) test ./plugin -run '^$$' -fuzz FuzzServeDNS -fuzztime 60s
	$(GO) test ./geo -run '^$$' -fuzz FuzzParseECS -fuzztime 60s
	$(GO) test ./api -run '^$$' -fuzz FuzzAPIBodies -fuzztime 60s

# Also prints ServeDNS's stack frame: each UDP query runs on a fresh goroutine, and a frame
# that grows past a stack-size step costs a stack copy per query (docs/BENCHMARKS.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./policy ./geo ./plugin ./control
	@$(GO) build -gcflags=-S ./plugin 2>&1 | grep -o 'GTM).ServeDNS STEXT.*locals=0x[0-9a-f]*' || true

clean:
	rm -f $(BINARY) $(DEMO_DB)
