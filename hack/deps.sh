#!/usr/bin/env bash
# Installs the Debian packages the tests need when they are missing: with apt-get when run as root,
# otherwise it names them and fails. Go itself must already be installed.
set -euo pipefail

# command or file -> Debian package that provides it
declare -A need=(
	[git]=git
	[diff]=diffutils
	[/usr/sbin/nginx]=nginx-light
	[/usr/lib/nginx/modules/ngx_http_set_misc_module.so]=libnginx-mod-http-set-misc
	[chromium]=chromium
	[redis-server]=redis-server
	[redis-sentinel]=redis-sentinel
	[redis-cli]=redis-tools
)

missing=()
for what in "${!need[@]}"; do
	if [[ $what == /* ]]; then
		[ -e "$what" ] || missing+=("${need[$what]}")
	else
		command -v "$what" >/dev/null 2>&1 || missing+=("${need[$what]}")
	fi
done
if ! command -v go >/dev/null 2>&1; then
	echo "deps: Go is not installed; install Go 1.26 or later and run again" >&2
	exit 1
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages: ${missing[*]}" >&2
	echo "deps: install them with: sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
