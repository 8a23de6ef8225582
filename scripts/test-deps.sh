#!/usr/bin/env bash
# Installs what the test suite needs and does not find. Idempotent; quiet when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Headless browser for the status-page test (Debian's chromium).
if ! command -v chromium >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing chromium (status page browser test)"
		(apt-get update -qq || true) >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	else
		echo "chromium is missing and cannot be installed here (need root and apt-get)" >&2
	fi
fi

# promtool checks and unit-tests docs/prometheus-alerts.yaml (Debian's prometheus package).
if ! command -v promtool >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing prometheus (promtool, for the alert rules test)"
		(apt-get update -qq || true) >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
	else
		echo "promtool is missing and cannot be installed here (need root and apt-get)" >&2
	fi
fi

# DNSSEC: a validating resolver (unbound) and bind9's key tools (dnssec-keygen,
# dnssec-dsfromkey, delv) for test/dnssec_test.go.
dnssec_need=()
command -v unbound >/dev/null 2>&1 || dnssec_need+=(unbound)
command -v dnssec-keygen >/dev/null 2>&1 || dnssec_need+=(bind9-utils)
command -v delv >/dev/null 2>&1 || dnssec_need+=(bind9-dnsutils)
command -v named >/dev/null 2>&1 || dnssec_need+=(bind9) # a forwarding resolver: test/seams_test.go
command -v kdig >/dev/null 2>&1 || dnssec_need+=(knot-dnsutils) # SvcParam parsing: test/https_test.go
if [ ${#dnssec_need[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing ${dnssec_need[*]} (DNSSEC validation tests)"
		(apt-get update -qq || true) >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${dnssec_need[@]}" >/dev/null
	else
		echo "${dnssec_need[*]} missing and cannot be installed here (need root and apt-get)" >&2
	fi
fi

# Linter.
if [ ! -x "$(go env GOPATH)/bin/staticcheck" ]; then
	echo "installing staticcheck"
	go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi

# A real public MaxMind-format database for the geo test against real data.
if [ -f scripts/fetch-realdb.sh ]; then
	bash scripts/fetch-realdb.sh >/dev/null
fi

# A real etcd server for the cluster backend's tests (state/etcd, internal/etcdtest).
bash scripts/etcd.sh

# OpenTofu for the provider's acceptance tests (test/terraform_test.go), built from source.
bash scripts/tofu.sh

# A real Kubernetes API server for the discovery tests (internal/kubetest), built from source.
bash scripts/kube-apiserver.sh
