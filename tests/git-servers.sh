#!/usr/bin/env bash
# tests/git-servers.sh install: the real git servers the daemon's remote tests fetch from,
# from Debian's packages: lighttpd (+ mod_openssl) running git http-backend over HTTPS with
# basic auth, and OpenSSH's sshd. Installs only what is missing; starts nothing (the tests
# start their own servers on loopback ports, see tests/common/git_servers.rs).
set -euo pipefail
[[ ${1:-} == install ]] || { echo "usage: $0 install" >&2; exit 64; }

missing=()
[[ -x /usr/sbin/lighttpd ]] || missing+=(lighttpd)
[[ -e /usr/lib/lighttpd/mod_openssl.so ]] || missing+=(lighttpd-mod-openssl)
[[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
[[ -x /usr/lib/git-core/git-http-backend ]] || missing+=(git)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v openssl >/dev/null || missing+=(openssl)
((${#missing[@]})) || exit 0

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo -E "$@"; fi; }
echo "git-servers.sh: installing ${missing[*]}" >&2
# Keep the packages' own services from starting on their default ports.
policy=/usr/sbin/policy-rc.d
own_policy=false
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
  as_root chmod +x "$policy"
  own_policy=true
fi
trap '$own_policy && as_root rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
  || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
