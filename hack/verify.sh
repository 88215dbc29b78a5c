#!/usr/bin/env bash
# Fails when anything generated is stale or the tree is not tidy: regenerates into a temporary copy
# of the repository and compares, then checks gofmt, go vet and go mod tidy for every module.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
status=0
fail() { echo "verify: $*" >&2; status=1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The working tree as git sees it (tracked and new, not ignored files), without bin/.
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
	[ -e "$f" ] || continue
	mkdir -p "$tmp/$(dirname "$f")"
	cp -p "$f" "$tmp/$f"
done
(cd "$tmp" && make -s generate manifests >/dev/null)
generated=(api config charts docs/policy-reference.md)
for p in "${generated[@]}"; do
	if ! d=$(diff -ruN "$root/$p" "$tmp/$p"); then
		fail "$p is stale: run make generate manifests"
		echo "$d" | head -40 >&2
	fi
done

unformatted=$(gofmt -l $(git ls-files --cached --others --exclude-standard '*.go'))
[ -z "$unformatted" ] || fail "gofmt would change: $unformatted"

go vet ./... || fail "go vet failed"

for mod in . hack/envtest hack/envtest/etcd; do
	(cd "$mod" && go mod tidy -diff >/dev/null) || fail "$mod/go.mod is not tidy: run (cd $mod && go mod tidy)"
done

[ $status -eq 0 ] && echo "verify: ok"
exit $status
