#!/usr/bin/env bash
# Control layer at scale (not part of `make test`): builds the binary, generates a Corefile
# of 10,000 domains (two routes each) over 2,000 pools of 25 addresses, with an api block
# (token_file, state FILE), and reports start-to-first-answer, RSS, PUT-to-answer times and
# reload time and peak RSS. Arguments go to the driver:
#   bash scripts/scale/control.sh [-domains 10000 -pools 2000 -per 25 -writes 20 -reloads 3]
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/coredns-gtm" ./cmd/coredns-gtm
go build -o "$work/control" ./scripts/scale/control
"$work/control" -bin "$work/coredns-gtm" "$@"
