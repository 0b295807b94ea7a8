#!/usr/bin/env bash
# tests/git-servers.sh install: the real git servers the daemon's remote tests fetch from,
# from Debian's packages: lighttpd (+ mod_openssl) running git http-backend over HTTPS with
# basic auth, and OpenSSH's sshd. Installs only what is missing; starts nothing (the tests
# start their own servers on loopback ports, see tests/common/git_servers.rs).
set -euo pipefail
[[ ${1:-} == install ]] || { echo "usage: $0 install" >&2; exit 64; }

# One installer at a time, and only what is missing: tests/packages.sh.
exec bash "$(dirname "$0")/packages.sh" lighttpd lighttpd-mod-openssl openssh-server openssh-client git openssl
