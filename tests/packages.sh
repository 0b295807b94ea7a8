#!/usr/bin/env bash
# tests/packages.sh PKG...: installs those of the Debian packages PKG that are missing, one
# installer at a time. tests/packages.sh --update: apt-get update, under the same lock.
# tests/packages.sh --pip NAME==VERSION...: the same for PyPI packages, with pip. `cargo test --workspace` runs test binaries side by side, and several
# of them install what they need (tests/cluster.sh, tests/git-servers.sh): apt refuses a second
# apt-get while one holds its lock, so every installer of the tests takes ours first, then
# looks again at what is missing (the one before it may have installed it).
# Packages' own services are kept from starting (policy-rc.d): the tests start their own.
set -euo pipefail
(($#)) || { echo "usage: $0 --update | --pip NAME==VERSION... | PKG..." >&2; exit 64; }

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo -E "$@"; fi; }

missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

update=false pip=false
[[ $1 == --update ]] && update=true
[[ $1 == --pip ]] && { pip=true; shift; }
# pip: NAME==VERSION is missing unless that version is installed.
pip_missing() {
  local p
  for p in "$@"; do
    [[ $(python3 -m pip show "${p%%==*}" 2>/dev/null | sed -n 's/^Version: //p') == "${p#*==}" ]] || echo "$p"
  done
}
if $pip; then
  [[ -n $(pip_missing "$@") ]] || exit 0
else
  $update || [[ -n $(missing "$@") ]] || exit 0
fi

lock=${MCP_GITOPS_APT_LOCK:-${TMPDIR:-/tmp}/mcp-gitops-apt.lock}
exec {fd}>>"$lock"
if ! flock -n "$fd"; then
  echo "packages.sh: waiting for another installer (lock $lock)" >&2
  flock "$fd"
fi
if $pip; then
  mapfile -t todo < <(pip_missing "$@")
  ((${#todo[@]})) || exit 0
  echo "packages.sh: pip installing ${todo[*]}" >&2
  exec python3 -m pip install -q --disable-pip-version-check "${todo[@]}"
fi
if $update; then
  as_root apt-get -o DPkg::Lock::Timeout=600 update -qq
  exit
fi
mapfile -t todo < <(missing "$@")
((${#todo[@]})) || exit 0

echo "packages.sh: installing ${todo[*]}" >&2
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
  as_root chmod +x "$policy"
  trap 'as_root rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
# Another apt outside the tests (unattended upgrades, a person) is waited for, not failed on.
apt=(apt-get -o DPkg::Lock::Timeout=600 -y -q --no-install-recommends)
log=$(mktemp)
if ! as_root "${apt[@]}" install "${todo[@]}" >"$log" 2>&1; then
  as_root apt-get -o DPkg::Lock::Timeout=600 update -q >>"$log" 2>&1 \
    && as_root "${apt[@]}" install "${todo[@]}" >>"$log" 2>&1 \
    || { tail -n 40 "$log" >&2; rm -f "$log"; echo "packages.sh: apt-get install ${todo[*]} failed" >&2; exit 1; }
fi
rm -f "$log"
