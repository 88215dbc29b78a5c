#!/usr/bin/env bash
# Builds the control-plane binaries the tests run (kube-apiserver and etcd) from Go modules into
# bin/k8s and prints that directory, for KUBEBUILDER_ASSETS. There is no download site for envtest
# binaries here, so they come from source: hack/envtest pins k8s.io/kubernetes, hack/envtest/etcd
# pins the etcd server. A binary is rebuilt only when it is missing or its module files changed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="$root/bin/k8s"
mkdir -p "$dir"

# build NAME MODULE_DIR PACKAGE: builds when the binary is missing or the stamp of its module differs.
build() {
	local name=$1 mod=$2 pkg=$3 stamp want
	stamp="$dir/.$name.stamp"
	want=$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -d' ' -f1)
	if [ -x "$dir/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
		return
	fi
	echo "envtest: building $name from ${mod#"$root"/} (minutes when cold, once)" >&2
	local start=$SECONDS
	(cd "$mod" && CGO_ENABLED=0 go build -trimpath -o "$dir/$name.tmp" "$pkg")
	mv "$dir/$name.tmp" "$dir/$name"
	echo "$want" >"$stamp"
	echo "envtest: built $name in $((SECONDS - start))s" >&2
}

build kube-apiserver "$root/hack/envtest" k8s.io/kubernetes/cmd/kube-apiserver
build etcd "$root/hack/envtest/etcd" .
echo "$dir"
