#!/usr/bin/env bash
# tests/packages.sh PKG...: installs those of the Debian packages PKG that are missing, one
# installer at a time. tests/packages.sh --update: apt-get update, under the same lock.
# tests/packages.sh --pip NAME==VERSION...: the same for PyPI packages, into the tests' virtual
# environment under the cache (stock Debian 12 refuses pip installs into the system Python, PEP
# 668), made from Debian's python3 when missing; prints that environment's python on stdout.
# `cargo test --workspace` runs test binaries side by side, and several of them install what they
# need (tests/cluster.sh, tests/git-servers.sh): apt refuses a second apt-get while one holds its
# lock, so every installer of the tests takes ours first, then looks again at what is missing
# (the one before it may have installed it).
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

venv=${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/mcp-gitops/test-python
python=$venv/bin/python
# pip: NAME==VERSION is missing unless that version is installed in the environment.
pip_missing() {
  local p
  for p in "$@"; do
    [[ -x $python && $("$python" -m pip show "${p%%==*}" 2>/dev/null | sed -n 's/^Version: //p') == "${p#*==}" ]] || echo "$p"
  done
}

update=false pip=false
[[ $1 == --update ]] && update=true
[[ $1 == --pip ]] && { pip=true; shift; }
if $pip; then
  [[ -n $(pip_missing "$@") ]] || { echo "$python"; exit 0; }
else
  $update || [[ -n $(missing "$@") ]] || exit 0
fi

lock=${MCP_GITOPS_APT_LOCK:-${TMPDIR:-/tmp}/mcp-gitops-apt.lock}
exec {fd}>>"$lock"
if ! flock -n "$fd"; then
  echo "packages.sh: waiting for another installer (lock $lock)" >&2
  flock "$fd"
fi

# apt_install PKG...: those of PKG still missing, with apt-get update only when an install fails
# without it.
apt_install() {
  local todo policy=/usr/sbin/policy-rc.d log apt
  mapfile -t todo < <(missing "$@")
  ((${#todo[@]})) || return 0
  echo "packages.sh: installing ${todo[*]}" >&2
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod +x "$policy"
    trap 'as_root rm -f "$policy"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Another apt outside the tests (unattended upgrades, a person) is waited for, not failed on.
  apt=(apt-get -o DPkg::Lock::Timeout=600 -y -q --no-install-recommends)
  log=$(mktemp)
  if ! as_root "${apt[@]}" install "${todo[@]}" >"$log" 2>&1 \
    && ! { as_root apt-get -o DPkg::Lock::Timeout=600 update -q && as_root "${apt[@]}" install "${todo[@]}"; } >>"$log" 2>&1; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    echo "packages.sh: apt-get install ${todo[*]} failed" >&2
    exit 1
  fi
  rm -f "$log"
}

if $pip; then
  if ! "$python" -m pip --version >/dev/null 2>&1; then
    echo "packages.sh: making the tests' Python environment $venv" >&2
    apt_install python3 python3-venv
    rm -rf "$venv" # half made by an installer that was killed
    mkdir -p "${venv%/*}"
    /usr/bin/python3 -m venv "$venv"
  fi
  mapfile -t todo < <(pip_missing "$@")
  if ((${#todo[@]})); then
    echo "packages.sh: pip installing ${todo[*]} into $venv" >&2
    "$python" -m pip install -q --no-input --disable-pip-version-check "${todo[@]}" >&2
  fi
  echo "$python"
  exit 0
fi
if $update; then
  as_root apt-get -o DPkg::Lock::Timeout=600 update -qq
  exit
fi
apt_install "$@"
