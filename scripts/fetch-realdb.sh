#!/usr/bin/env bash
# Fetches a real public MaxMind-format database for geo/realdb_test.go: ip-location-db's
# geo-whois-asn-country (CC0-1.0, country per network from RIR whois and ASN data), from the
# npm registry, into .cache/realdb/. Idempotent: does nothing when the file is there.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/realdb
pkg=@ip-location-db/geo-whois-asn-country-mmdb
if [ ! -s "$dest/country.mmdb" ]; then
	mkdir -p "$dest/tmp"
	(cd "$dest/tmp" && npm pack --silent "$pkg" >/dev/null 2>&1)
	tar -xzf "$dest"/tmp/*.tgz -C "$dest/tmp"
	mv "$dest/tmp/package/geo-whois-asn-country.mmdb" "$dest/country.mmdb"
	cp "$dest/tmp/package/package.json" "$dest/country.package.json"
	rm -rf "$dest/tmp"
fi
echo "$dest/country.mmdb"
