#!/usr/bin/env bash
# tests/cluster.sh: a REAL kube-apiserver v1.20.2 + etcd on loopback, for integration tests,
# benchmarks and people. See docs/test-cluster.md.
#
#   tests/cluster.sh up      build (once) or reuse the cached kube-apiserver, start etcd +
#                            kube-apiserver, create namespaces, install schema/crds/*.yaml;
#                            the LAST line on stdout is the admin kubeconfig path
#   tests/cluster.sh up --until-unused
#                            the same, and a cluster it starts stops itself once no process has
#                            held a shared lock on <state dir>.users for a while (the tests)
#   tests/cluster.sh down    stop the processes this script started, remove the state dir
#   tests/cluster.sh env     print `export KUBECONFIG=...` lines
#   tests/cluster.sh kubectl print the kubectl the tests use (building it when there is none)
#
# Progress goes to stderr; stdout carries only results. Nothing here is part of the product.
set -euo pipefail

readonly KUBE_VERSION=v1.20.2
readonly KUBE_MINOR=1.20
readonly SCRIPT_NAME=${0##*/}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
readonly REPO_ROOT=${SCRIPT_DIR%/*}

readonly CACHE_ROOT=${MCP_GITOPS_CACHE:-${HOME:?HOME is not set; set MCP_GITOPS_CACHE}/.cache/mcp-gitops}
readonly BIN_DIR=$CACHE_ROOT/kube-apiserver-$KUBE_VERSION
readonly APISERVER_BIN=$BIN_DIR/kube-apiserver
readonly CACHED_KUBECTL=$BIN_DIR/kubectl          # built alongside, used only if no kubectl on PATH
readonly BUILD_LOG=$BIN_DIR/build.log
readonly APT_LOG=$CACHE_ROOT/apt.log

STATE_DIR=${MCP_GITOPS_CLUSTER_DIR:-/tmp/mcp-gitops-cluster}
STATE_DIR=${STATE_DIR%/}
[[ -n $STATE_DIR && $STATE_DIR == /* ]] || { echo "$SCRIPT_NAME: MCP_GITOPS_CLUSTER_DIR must be an absolute path" >&2; exit 2; }
readonly STATE_DIR
readonly STATE_LOCK=$STATE_DIR.lock
readonly MARKER=$STATE_DIR/.mcp-gitops-cluster   # proves the dir is ours before rm -rf
# Processes that use the cluster hold a shared flock on this file; the reaper of an
# `up --until-unused` cluster stops it once it could take the lock exclusively for IDLE s.
readonly USERS_LOCK=$STATE_DIR.users
readonly IDLE=${MCP_GITOPS_CLUSTER_IDLE:-15}
[[ $IDLE =~ ^[0-9]+$ ]] || { echo "$SCRIPT_NAME: MCP_GITOPS_CLUSTER_IDLE must be a number of seconds" >&2; exit 2; }
readonly ADMIN_KUBECONFIG=$STATE_DIR/admin.kubeconfig
readonly RESTRICTED_KUBECONFIG=$STATE_DIR/restricted.kubeconfig
readonly CRD_DIR=${MCP_GITOPS_CRD_DIR:-$REPO_ROOT/schema/crds}
readonly NAMESPACES=(mcp-servers mcp-team-payments mcp-team-support)
readonly READY_TIMEOUT=${MCP_GITOPS_READY_TIMEOUT:-60}
# extra kube-apiserver flags, split on whitespace (fault tests: --max-requests-inflight=1 ...)
read -r -a EXTRA_APISERVER_ARGS <<<"${MCP_GITOPS_APISERVER_ARGS:-}"
readonly EXTRA_APISERVER_ARGS

export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C

# ---------------------------------------------------------------------------------------------
# helpers

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
warn() { printf '%s: warning: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() { printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2; exit 1; }

tail_file() { # tail_file FILE [LINES]
  local f=$1 n=${2:-40}
  if [[ -s $f ]]; then
    printf -- '----- last %s lines of %s -----\n' "$n" "$f" >&2
    tail -n "$n" "$f" >&2
    printf -- '----- end of %s -----\n' "$f" >&2
  fi
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -E "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

CLEANUPS=()
run_cleanups() { local c; for c in "${CLEANUPS[@]}"; do eval "$c" || true; done; }
trap run_cleanups EXIT

# lock FILE WHAT: take an exclusive flock on FILE for the rest of this process
lock() {
  local file=$1 what=$2 fd
  mkdir -p "$(dirname "$file")"
  exec {fd}>>"$file"
  if ! flock -n "$fd"; then
    log "waiting for another $SCRIPT_NAME ($what, lock $file)"
    flock "$fd"
  fi
}

# ---------------------------------------------------------------------------------------------
# packages

# Every apt-get goes through tests/packages.sh, which holds one lock for all the installers of
# the tests: test binaries run side by side and apt refuses a second apt-get.
APT_UPDATED=0
apt_update_once() {
  [[ $APT_UPDATED -eq 1 ]] && return 0
  mkdir -p "$CACHE_ROOT"
  log "apt-get update"
  bash "$REPO_ROOT/tests/packages.sh" --update >>"$APT_LOG" 2>&1 || { tail_file "$APT_LOG"; die "apt-get update failed (log: $APT_LOG)"; }
  APT_UPDATED=1
}

ensure_packages() { # ensure_packages PKG...
  bash "$REPO_ROOT/tests/packages.sh" "$@" || die "installing the Debian packages $* failed"
}

# Enable deb-src for bookworm main unless some configured source already provides it.
# shellcheck disable=SC2016 # $(...) below are apt-get indextargets format fields
ensure_deb_src() {
  local have
  have=$(apt-get indextargets --no-release-info --format '$(RELEASE) $(COMPONENT)' 'Created-By: Sources' 2>/dev/null \
    | awk '$1 == "bookworm" && $2 == "main"' | head -n1)
  if [[ -z $have ]]; then
    local mirror file=/etc/apt/sources.list.d/mcp-gitops-deb-src.sources
    mirror=$(apt-get indextargets --no-release-info --format '$(RELEASE) $(COMPONENT) $(REPO_URI)' 'Created-By: Packages' 2>/dev/null \
      | awk '$1 == "bookworm" && $2 == "main" { print $3; exit }')
    mirror=${mirror:-http://deb.debian.org/debian/}
    log "enabling deb-src for bookworm main ($mirror) in $file"
    as_root tee "$file" >/dev/null <<EOF
# Added by mcp-gitops tests/cluster.sh: Debian source packages (apt-get source kubernetes).
Types: deb-src
URIs: $mirror
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    APT_UPDATED=0
    apt_update_once
  elif ! apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Version:'; then
    APT_UPDATED=0
    apt_update_once
  fi
  apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Version:' \
    || die "the Debian source package 'kubernetes' is not available (is deb-src for bookworm main enabled?)"
}

# ---------------------------------------------------------------------------------------------
# build kube-apiserver (+ kubectl of the same version) once, cache by version

build_apiserver() {
  [[ -x $APISERVER_BIN ]] && return 0
  mkdir -p "$BIN_DIR"
  lock "$BIN_DIR/.build.lock" "building kube-apiserver $KUBE_VERSION"
  if [[ -x $APISERVER_BIN ]]; then log "kube-apiserver was built by another run"; return 0; fi

  log "building kube-apiserver $KUBE_VERSION from Debian's kubernetes source package (once; several minutes)"
  log "build log: $BUILD_LOG"
  local start=$SECONDS
  ensure_packages golang-go rsync make gcc libc6-dev dpkg-dev jq \
    golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev
  ensure_deb_src

  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/mcp-gitops-kube-build.XXXXXX")
  CLEANUPS+=("rm -rf '$work'")
  chmod 755 "$work" # apt-get source downloads as the _apt user
  : >"$BUILD_LOG"
  # run in the background and wait: `if ! (subshell)` would disable set -e inside it
  (build_in "$work") >>"$BUILD_LOG" 2>&1 &
  if ! wait $!; then
    tail_file "$BUILD_LOG" 60
    die "building kube-apiserver failed (full log: $BUILD_LOG)"
  fi
  log "built kube-apiserver $KUBE_VERSION in $((SECONDS - start)) s: $APISERVER_BIN"
}

build_in() { # runs in a subshell, output goes to the build log
  set -euxo pipefail
  local work=$1 dsc version real src
  cd "$work"
  apt-get source --download-only kubernetes
  dsc=$(ls ./*.dsc)
  version=$(sed -n 's/^Version: //p' "$dsc" | head -n1)
  # Debian's 1.20.5+really1.20.2 is upstream 1.20.2
  if [[ $version =~ really([0-9]+\.[0-9]+\.[0-9]+) ]]; then real=${BASH_REMATCH[1]}
  else real=${version%%[-+~]*}; real=${real#*:}
  fi
  [[ $real == "$KUBE_MINOR".* ]] || { echo "Debian's kubernetes source is $version (upstream $real), need $KUBE_MINOR.x" >&2; exit 1; }
  [[ v$real == "$KUBE_VERSION" ]] || echo "WARNING: Debian's kubernetes source is upstream $real, not $KUBE_VERSION"
  dpkg-source -x "$dsc" src
  src=$work/src
  # Go >= 1.18 crashes the vendored reflect2 1.0.1 (SIGSEGV in mapiterinit on the first CRD
  # write): use Debian's reflect2 1.0.2 and json-iterator 1.1.12 package sources instead.
  local pkg from to
  for pkg in github.com/modern-go/reflect2 github.com/json-iterator/go; do
    from=/usr/share/gocode/src/$pkg to=$src/vendor/$pkg
    [[ -d $from ]] || { echo "missing $from" >&2; exit 1; }
    rm -rf "$to"; mkdir -p "$to"
    find "$from" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' -o -name 'LICENSE*' \) ! -name '*_test.go' \
      -exec cp -t "$to" {} +
  done
  cd "$src"
  # The tarball is a `git archive` of v1.20.2: hack/lib/version.sh already yields gitVersion
  # v1.20.2; the Kubernetes 1.20 build runs in GOPATH mode (GO111MODULE=off) from vendor/.
  unset GOFLAGS GOPATH GOROOT GO111MODULE
  export HOME=$work/home GOPROXY=off KUBE_VERBOSE=1
  mkdir -p "$HOME"
  go version
  make WHAT="cmd/kube-apiserver cmd/kubectl"
  local out=$src/_output/bin
  "$out/kube-apiserver" --version
  "$out/kube-apiserver" --version | grep -qx "Kubernetes $KUBE_VERSION" \
    || echo "WARNING: built kube-apiserver reports $("$out/kube-apiserver" --version)"
  install -m 0755 "$out/kubectl" "$CACHED_KUBECTL.tmp"
  mv -f "$CACHED_KUBECTL.tmp" "$CACHED_KUBECTL"
  install -m 0755 "$out/kube-apiserver" "$APISERVER_BIN.tmp"
  printf 'debian-source=%s\nupstream=%s\n%s\nbuilt=%s\n' "$version" "$real" "$(go version)" "$(date -u +%FT%TZ)" >"$BIN_DIR/VERSION"
  mv -f "$APISERVER_BIN.tmp" "$APISERVER_BIN" # last: its presence means "cache complete"
}

# ---------------------------------------------------------------------------------------------
# processes

# ours PID: PID is alive (not a zombie) and runs with an argument inside our state dir
ours() {
  local pid=$1 state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/stat ]] || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ $state != Z ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$STATE_DIR/" || return 1
}

read_pid() { if [[ -s $STATE_DIR/$1.pid ]]; then cat "$STATE_DIR/$1.pid"; fi; }

stop_proc() { # stop_proc NAME: SIGTERM, wait up to 15 s, then SIGKILL
  local name=$1
  stop_pid "$name" "$(read_pid "$name")"
  rm -f "$STATE_DIR/$name.pid"
}

stop_pid() { # stop_pid NAME PID: stop PID if it is ours
  local name=$1 pid=$2 i
  [[ -n $pid ]] || return 0
  if ours "$pid"; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do ours "$pid" || break; sleep 0.1; done
    if ours "$pid"; then
      warn "$name (pid $pid) did not stop after 15 s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do ours "$pid" || break; sleep 0.1; done
    fi
  fi
}

# start_proc NAME CMD...: start detached (own session, survives this script, inherits no fd
# but stdio: in particular not our lock fds), record the pid
start_proc() {
  local name=$1; shift
  # (no redirection on the loop: bash would park stderr on a high fd that the loop then closes)
  # shellcheck disable=SC2016
  setsid bash -c 'for f in /proc/$$/fd/*; do f=${f##*/}; [ "$f" -gt 2 ] && eval "exec $f>&-"; done
    echo $$ >"$0"; exec "$@"' "$STATE_DIR/$name.pid" "$@" </dev/null >"$STATE_DIR/$name.log" 2>&1 &
  local i
  # (up to 10 s: a loaded machine may take seconds to run it)
  for ((i = 0; i < 500; i++)); do [[ -s $STATE_DIR/$name.pid ]] && break; sleep 0.02; done
}

# pick_ports N: print N distinct free TCP ports (not bound in this network namespace, outside
# the ephemeral range)
pick_ports() {
  local n=$1 lo hi h p tries=0
  local -A used=()
  read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || { lo=32768; hi=60999; }
  while read -r h; do [[ -n $h ]] && used[$((16#$h))]=1; done \
    < <(awk 'FNR > 1 { split($2, a, ":"); print a[2] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  local base span
  if ((lo > 21000)); then base=20000 span=$((lo - 20000)); else base=$((hi + 1)) span=$((65535 - hi)); fi
  ((span >= 100)) || { base=20000 span=10000; }
  while ((n > 0)); do
    ((tries++ < 10000)) || die "could not find a free port"
    p=$((base + (RANDOM * 32768 + RANDOM) % span))
    [[ -z ${used[$p]:-} ]] || continue
    used[$p]=1
    echo "$p"
    n=$((n - 1))
  done
}

addr_in_use() { grep -qiE 'address already in use|bind: address' "$1" 2>/dev/null; }

# launch_etcd CLIENT PEER: start etcd on these ports with the data dir of the state dir (an
# existing data dir is reused: its content survives a stop), wait until it is healthy
launch_etcd() {
  local client=$1 peer=$2 i
  log "starting etcd on 127.0.0.1:$client (peer $peer)"
  start_proc etcd etcd --name mcp-gitops --data-dir "$STATE_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "mcp-gitops=http://127.0.0.1:$peer" --initial-cluster-state new \
    --initial-cluster-token "mcp-gitops-$$" --logger zap --log-outputs stderr --log-level warn \
    --quota-backend-bytes $((4 * 1024 * 1024 * 1024))
  for ((i = 0; i < 300; i++)); do
    if curl -fsS --max-time 2 "http://127.0.0.1:$client/health" 2>/dev/null | grep -q '"health":"true"'; then
      echo "$client" >"$STATE_DIR/etcd.port"
      echo "$peer" >"$STATE_DIR/etcd.peer-port"
      return 0
    fi
    ours "$(read_pid etcd)" || break
    sleep 0.1
  done
  return 1
}

start_etcd() {
  local attempt ports
  for attempt in 1 2 3; do
    mapfile -t ports < <(pick_ports 2)
    [[ ${#ports[@]} -eq 2 ]] || die "could not pick free ports"
    launch_etcd "${ports[0]}" "${ports[1]}" && return 0
    stop_proc etcd
    if addr_in_use "$STATE_DIR/etcd.log" && [[ $attempt -lt 3 ]]; then
      warn "etcd port taken, retrying with other ports"; rm -rf "$STATE_DIR/etcd"; continue
    fi
    tail_file "$STATE_DIR/etcd.log"
    die "etcd did not become healthy (log: $STATE_DIR/etcd.log)"
  done
}

gen_pki() {
  local pki=$STATE_DIR/pki old_umask admin restricted
  mkdir -p "$pki"
  old_umask=$(umask)
  umask 077
  # A serving CA + certificate, placed where --cert-dir looks (apiserver.crt/.key), so that
  # clients verify the server with ca.crt (SANs: 127.0.0.1, localhost, the in-cluster names).
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 3650 -subj "/CN=mcp-gitops-test-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    >/dev/null 2>&1 || die "openssl: generating the CA failed"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" -subj "/CN=kube-apiserver" \
    >/dev/null 2>&1 || die "openssl: generating the serving key failed"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1" \
    >"$pki/apiserver.ext"
  openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt" \
    >/dev/null 2>&1 || die "openssl: signing the serving certificate failed"
  # service-account token signing key pair
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key" \
    >/dev/null 2>&1 || die "openssl: generating the service-account key failed"
  openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" >/dev/null 2>&1 \
    || die "openssl: extracting the service-account public key failed"
  # bearer tokens: admin (system:masters) and restricted (no groups, no RBAC bindings)
  admin=$(openssl rand -hex 16) restricted=$(openssl rand -hex 16)
  printf '%s\n' "$admin" >"$STATE_DIR/admin.token"
  printf '%s\n' "$restricted" >"$STATE_DIR/restricted.token"
  printf '%s,admin,admin-uid,"system:masters"\n%s,restricted,restricted-uid\n' "$admin" "$restricted" \
    >"$STATE_DIR/tokens.csv"
  umask "$old_umask"
  chmod 644 "$pki/ca.crt" "$pki/apiserver.crt" "$pki/sa.pub"
}

start_apiserver() {
  local etcd_port attempt port i code
  etcd_port=$(cat "$STATE_DIR/etcd.port")
  local token
  token=$(cat "$STATE_DIR/admin.token")
  for attempt in 1 2 3; do
    # a restart keeps the port when it is free again, as a real control plane does
    if [[ $attempt -eq 1 && -n ${REUSE_PORT:-} ]]; then port=$REUSE_PORT; else port=$(pick_ports 1); fi
    log "starting kube-apiserver $KUBE_VERSION on https://127.0.0.1:$port"
    start_proc kube-apiserver "$APISERVER_BIN" \
      --bind-address=127.0.0.1 --secure-port="$port" --advertise-address=127.0.0.1 \
      --endpoint-reconciler-type=none \
      --cert-dir="$STATE_DIR/pki" \
      --etcd-servers="http://127.0.0.1:$etcd_port" \
      --token-auth-file="$STATE_DIR/tokens.csv" \
      --authorization-mode=RBAC \
      --service-account-key-file="$STATE_DIR/pki/sa.pub" \
      --service-account-signing-key-file="$STATE_DIR/pki/sa.key" \
      --service-account-issuer=https://kubernetes.default.svc \
      --api-audiences=https://kubernetes.default.svc \
      --service-cluster-ip-range=10.0.0.0/24 \
      --allow-privileged=false \
      --profiling=false \
      "${EXTRA_APISERVER_ARGS[@]}"
    for ((i = 0; i < READY_TIMEOUT * 5; i++)); do
      code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$STATE_DIR/pki/ca.crt" \
        -H "Authorization: Bearer $token" "https://127.0.0.1:$port/readyz" 2>/dev/null) || true
      if [[ $code == 200 ]]; then
        echo "$port" >"$STATE_DIR/kube-apiserver.port"
        return 0
      fi
      ours "$(read_pid kube-apiserver)" || break
      sleep 0.2
    done
    stop_proc kube-apiserver
    if addr_in_use "$STATE_DIR/kube-apiserver.log" && [[ $attempt -lt 3 ]]; then
      warn "kube-apiserver port taken, retrying with another port"; continue
    fi
    tail_file "$STATE_DIR/kube-apiserver.log" 60
    die "kube-apiserver did not become ready within ${READY_TIMEOUT} s (log: $STATE_DIR/kube-apiserver.log)"
  done
}

write_kubeconfig() { # write_kubeconfig FILE CONTEXT USER TOKENFILE
  local file=$1 context=$2 user=$3 token ca port
  token=$(cat "$4")
  port=$(cat "$STATE_DIR/kube-apiserver.port")
  ca=$(base64 -w0 <"$STATE_DIR/pki/ca.crt")
  (
    umask 077
    cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: mcp-gitops-test
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $ca
users:
- name: $user
  user:
    token: $token
contexts:
- name: $context
  context:
    cluster: mcp-gitops-test
    user: $user
    namespace: default
current-context: $context
EOF
  )
}

# ---------------------------------------------------------------------------------------------
# cluster content

KUBECTL=
find_kubectl() {
  if [[ -n ${MCP_GITOPS_KUBECTL:-} ]]; then KUBECTL=$MCP_GITOPS_KUBECTL
  elif command -v kubectl >/dev/null 2>&1; then KUBECTL=$(command -v kubectl)
  else
    build_apiserver # builds kubectl $KUBE_VERSION alongside the server
    [[ -x $CACHED_KUBECTL ]] \
      || die "no kubectl on PATH and none in $BIN_DIR (delete that dir to build both again, or set MCP_GITOPS_KUBECTL)"
    KUBECTL=$CACHED_KUBECTL
  fi
}

k() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

create_namespaces() {
  local ns
  log "creating namespaces ${NAMESPACES[*]}"
  for ns in "${NAMESPACES[@]}"; do printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$ns"; done \
    | k apply --server-side --field-manager=mcp-gitops-cluster-sh -f - >&2 \
    || die "creating the namespaces failed"
}

install_crds() {
  local files=() f
  if [[ -d $CRD_DIR ]]; then
    for f in "$CRD_DIR"/*.yaml "$CRD_DIR"/*.yml; do [[ -f $f ]] && files+=("$f"); done
  fi
  if [[ ${#files[@]} -eq 0 ]]; then
    warn "no CRDs in $CRD_DIR (*.yaml): skipping CRD installation"
    return 0
  fi
  log "installing CRDs: ${files[*]##*/}"
  local args=() ; for f in "${files[@]}"; do args+=(-f "$f"); done
  k apply --server-side --force-conflicts --field-manager=mcp-gitops-cluster-sh "${args[@]}" >&2 \
    || die "installing the CRDs from $CRD_DIR failed"
  k wait --for condition=established --timeout=60s "${args[@]}" >&2 \
    || die "the CRDs from $CRD_DIR did not become Established"
}

# ---------------------------------------------------------------------------------------------
# commands

healthy() {
  [[ -f $MARKER && -s $ADMIN_KUBECONFIG && -s $STATE_DIR/kube-apiserver.port ]] || return 1
  ours "$(read_pid etcd)" && ours "$(read_pid kube-apiserver)" || return 1
  local port token
  port=$(cat "$STATE_DIR/kube-apiserver.port") token=$(cat "$STATE_DIR/admin.token")
  [[ $(curl -sS --max-time 3 --cacert "$STATE_DIR/pki/ca.crt" -H "Authorization: Bearer $token" \
    "https://127.0.0.1:$port/readyz" 2>/dev/null) == ok ]]
}

# remove the state dir, refusing anything that this script did not create
remove_state_dir() {
  [[ -e $STATE_DIR ]] || return 0
  if [[ -f $MARKER ]] || [[ -d $STATE_DIR && -z $(ls -A "$STATE_DIR") ]]; then
    rm -rf -- "$STATE_DIR"
  else
    die "$STATE_DIR exists but was not created by $SCRIPT_NAME; refusing to remove it"
  fi
}

stop_all() { stop_proc kube-apiserver; stop_proc etcd; }

# ---------------------------------------------------------------------------------------------
# the reaper of an `up --until-unused` cluster

# start_reaper: a detached `reap` of this state dir (its dir on the command line, so that `ours`
# and people can tell it apart), told what it watches now: the dir may be gone before it looks
start_reaper() {
  start_proc reaper env MCP_GITOPS_CLUSTER_DIR="$STATE_DIR" MCP_GITOPS_CLUSTER_IDLE="$IDLE" \
    MCP_GITOPS_REAP_MARKER="$(cat "$MARKER")" MCP_GITOPS_REAP_PIDS="$(read_pid kube-apiserver) $(read_pid etcd)" \
    bash "$SCRIPT_DIR/$SCRIPT_NAME" reap "$STATE_DIR/"
  log "the cluster stops itself once no process has held $USERS_LOCK for $IDLE s"
}

# Polls each second whether it can take the users lock exclusively: a user holds it shared. After
# IDLE s without users it stops the cluster, still holding the lock, so that a user arriving
# meanwhile waits and then starts a new cluster instead of finding this one half stopped. It
# also ends when the cluster was stopped by other means (the marker is gone or another's), then
# stops what is left of the processes it was told of (a state dir deleted under a running cluster).
cmd_reap() {
  local marker=${MCP_GITOPS_REAP_MARKER:-} pids idle=0 fd pid
  read -r -a pids <<<"${MCP_GITOPS_REAP_PIDS:-}"
  if [[ -d ${USERS_LOCK%/*} ]] && exec {fd}>>"$USERS_LOCK"; then
    while [[ $(cat "$MARKER" 2>/dev/null) == "$marker" ]]; do
      sleep 1
      if flock -n -x "$fd"; then
        idle=$((idle + 1))
        if ((idle >= IDLE)); then
          log "no user for $IDLE s: stopping the cluster in $STATE_DIR"
          cmd_down
          return 0
        fi
        flock -u "$fd"
      else
        idle=0
      fi
    done
  fi
  for pid in "${pids[@]}"; do stop_pid "a process of the cluster" "$pid"; done
}

cmd_up() { # cmd_up [--until-unused]
  local start=$SECONDS until_unused=0
  case ${1:-} in
    --until-unused) until_unused=1 ;;
    "") ;;
    *) echo "$SCRIPT_NAME: unknown option for up: '$1'" >&2; usage >&2; exit 2 ;;
  esac
  lock "$STATE_LOCK" "cluster in $STATE_DIR"
  if healthy; then
    # whoever started it stops it: its reaper, or the one who ran a plain `up`
    log "cluster already running in $STATE_DIR"
    echo "$ADMIN_KUBECONFIG"
    return 0
  fi
  if [[ -e $STATE_DIR ]]; then
    [[ -f $MARKER ]] || [[ -d $STATE_DIR && -z $(ls -A "$STATE_DIR") ]] \
      || die "$STATE_DIR exists but was not created by $SCRIPT_NAME (set MCP_GITOPS_CLUSTER_DIR)"
    log "removing stale cluster state in $STATE_DIR"
    stop_all
    remove_state_dir
  fi

  ensure_packages etcd-server openssl curl
  build_apiserver
  find_kubectl

  mkdir -p "$STATE_DIR"
  chmod 700 "$STATE_DIR"
  echo "created by $SCRIPT_NAME up, pid $$, $(date -u +%FT%TZ)" >"$MARKER"
  CLEANUPS+=("cleanup_failed_up")
  UP_OK=0

  start_etcd
  gen_pki
  start_apiserver
  write_kubeconfig "$ADMIN_KUBECONFIG" mcp-gitops-test admin "$STATE_DIR/admin.token"
  write_kubeconfig "$RESTRICTED_KUBECONFIG" mcp-gitops-restricted restricted "$STATE_DIR/restricted.token"
  create_namespaces
  install_crds
  if ((until_unused)); then start_reaper; fi
  UP_OK=1
  log "cluster up in $((SECONDS - start)) s: https://127.0.0.1:$(cat "$STATE_DIR/kube-apiserver.port") (state: $STATE_DIR)"
  log "admin: $ADMIN_KUBECONFIG, restricted: $RESTRICTED_KUBECONFIG; stop with: $0 down"
  echo "$ADMIN_KUBECONFIG"
}

UP_OK=1
cleanup_failed_up() {
  [[ $UP_OK -eq 1 ]] && return 0
  warn "up failed: stopping what was started (logs kept in $STATE_DIR)"
  stop_all
}

cmd_down() {
  lock "$STATE_LOCK" "cluster in $STATE_DIR"
  if [[ ! -e $STATE_DIR ]]; then
    log "no cluster in $STATE_DIR"
  else
    [[ -f $MARKER ]] || [[ -d $STATE_DIR && -z $(ls -A "$STATE_DIR") ]] \
      || die "$STATE_DIR exists but was not created by $SCRIPT_NAME; not touching it"
    stop_all
    # the reaper ends by itself once the marker is gone; it is the one calling down, or it is stopped here
    [[ $(read_pid reaper) == "$$" ]] || stop_proc reaper
    remove_state_dir
    log "cluster in $STATE_DIR stopped and removed"
  fi
}

# restart kube-apiserver alone, on the same etcd (fault tests: the API server dies mid-apply)
cmd_restart_apiserver() {
  lock "$STATE_LOCK" "cluster in $STATE_DIR"
  [[ -f $MARKER && -s $STATE_DIR/etcd.port ]] || die "no cluster in $STATE_DIR (run: $0 up)"
  ours "$(read_pid etcd)" || die "etcd in $STATE_DIR is not running; use down + up"
  find_kubectl
  REUSE_PORT=$(cat "$STATE_DIR/kube-apiserver.port" 2>/dev/null || true)
  stop_proc kube-apiserver
  start_apiserver
  write_kubeconfig "$ADMIN_KUBECONFIG" mcp-gitops-test admin "$STATE_DIR/admin.token"
  write_kubeconfig "$RESTRICTED_KUBECONFIG" mcp-gitops-restricted restricted "$STATE_DIR/restricted.token"
  log "kube-apiserver restarted on https://127.0.0.1:$(cat "$STATE_DIR/kube-apiserver.port") (same etcd, data kept)"
  echo "$ADMIN_KUBECONFIG"
}

# stop etcd alone; kube-apiserver keeps running without its store (fault tests: etcd dies
# mid-apply). The data and the ports are kept for start-etcd.
cmd_stop_etcd() {
  lock "$STATE_LOCK" "cluster in $STATE_DIR"
  [[ -f $MARKER && -s $STATE_DIR/etcd.port ]] || die "no cluster in $STATE_DIR (run: $0 up)"
  stop_proc etcd
  log "etcd stopped (data kept in $STATE_DIR/etcd); start it again with: $0 start-etcd"
}

# start etcd again on its old ports and data, so that the running kube-apiserver finds it
cmd_start_etcd() {
  lock "$STATE_LOCK" "cluster in $STATE_DIR"
  [[ -f $MARKER && -s $STATE_DIR/etcd.port && -d $STATE_DIR/etcd ]] || die "no cluster in $STATE_DIR (run: $0 up)"
  if ours "$(read_pid etcd)"; then log "etcd is already running"; return 0; fi
  local client peer
  client=$(cat "$STATE_DIR/etcd.port")
  peer=$(cat "$STATE_DIR/etcd.peer-port" 2>/dev/null || pick_ports 1)
  if ! launch_etcd "$client" "$peer"; then
    stop_proc etcd
    tail_file "$STATE_DIR/etcd.log"
    die "etcd did not become healthy again on 127.0.0.1:$client (log: $STATE_DIR/etcd.log)"
  fi
  log "etcd running again on 127.0.0.1:$client (data kept)"
}

cmd_env() {
  healthy || warn "no healthy cluster in $STATE_DIR (run: $0 up)"
  printf 'export KUBECONFIG=%q\n' "$ADMIN_KUBECONFIG"
  printf 'export MCP_GITOPS_ADMIN_KUBECONFIG=%q\n' "$ADMIN_KUBECONFIG"
  printf 'export MCP_GITOPS_RESTRICTED_KUBECONFIG=%q\n' "$RESTRICTED_KUBECONFIG"
}

cmd_status() {
  if healthy; then
    echo "running: https://127.0.0.1:$(cat "$STATE_DIR/kube-apiserver.port") (etcd 127.0.0.1:$(cat "$STATE_DIR/etcd.port"), pids $(read_pid kube-apiserver) $(read_pid etcd))"
    echo "$ADMIN_KUBECONFIG"
  else
    echo "not running ($STATE_DIR)"
    return 1
  fi
}

cmd_crds() {
  healthy || die "no healthy cluster in $STATE_DIR (run: $0 up)"
  find_kubectl
  install_crds
}

cmd_kubectl() {
  find_kubectl
  echo "$KUBECTL"
}

cmd_build() {
  build_apiserver
  log "cached: $APISERVER_BIN ($("$APISERVER_BIN" --version))"
}

usage() {
  cat <<EOF
Usage: $SCRIPT_NAME COMMAND

A real kube-apiserver $KUBE_VERSION + etcd on free loopback ports, for mcp-gitops integration
tests and benchmarks. Not a product component.

Commands:
  up       Start the cluster (build kube-apiserver once from Debian's kubernetes source package
           if not cached; install missing Debian packages), create the namespaces
           ${NAMESPACES[*]}, install schema/crds/*.yaml and wait until they are
           Established. Prints the admin kubeconfig path as the last line on stdout.
           If the cluster is already running and healthy, just prints the path again.
  up --until-unused
           The same, and a cluster it starts stops itself once no process has held a shared
           flock on <state dir>.users for MCP_GITOPS_CLUSTER_IDLE s (the tests hold one).
  down     Stop the etcd and kube-apiserver this script started and delete the state dir.
  env      Print export lines: KUBECONFIG (admin), MCP_GITOPS_ADMIN_KUBECONFIG,
           MCP_GITOPS_RESTRICTED_KUBECONFIG.   Use: eval "\$($0 env)"
  status   Print the server URL and admin kubeconfig path; exit 1 if not running.
  crds     Re-apply schema/crds/*.yaml to the running cluster.
  build    Only build (or check) the cached kube-apiserver binary.
  kubectl  Print the kubectl this script and the tests use (building it when there is none).
  restart-apiserver
           Restart kube-apiserver alone on the same etcd (data kept; the same port when it
           is free, else another one: the kubeconfigs are rewritten). For fault tests.
  stop-etcd
           Stop etcd alone (data and ports kept); kube-apiserver keeps running without its
           store. For fault tests.
  start-etcd
           Start etcd again on the same port and data, after stop-etcd.

Kubeconfigs (in the state dir): admin.kubeconfig (user "admin", group system:masters, context
mcp-gitops-test) and restricted.kubeconfig (user "restricted", no RBAC bindings, context
mcp-gitops-restricted). Token auth; the server certificate is verified with an embedded CA.

Environment:
  MCP_GITOPS_CLUSTER_DIR  state dir (default /tmp/mcp-gitops-cluster; one cluster per dir)
  MCP_GITOPS_CACHE        binary cache (default \$HOME/.cache/mcp-gitops); the server is cached
                          as \$MCP_GITOPS_CACHE/kube-apiserver-$KUBE_VERSION/kube-apiserver
  MCP_GITOPS_CRD_DIR      CRD directory (default <repo>/schema/crds)
  MCP_GITOPS_KUBECTL      kubectl used by this script (default: kubectl on PATH, else the
                          cached kubectl $KUBE_VERSION built alongside the server)
  MCP_GITOPS_CLUSTER_IDLE seconds without users before an "up --until-unused" cluster stops
                          (default 15)
  MCP_GITOPS_READY_TIMEOUT  seconds to wait for kube-apiserver readiness (default 60)
  MCP_GITOPS_APISERVER_ARGS extra kube-apiserver flags for up and restart-apiserver, split on
                          whitespace (e.g. "--max-mutating-requests-inflight=1")

See docs/test-cluster.md.
EOF
}

main() {
  case ${1:-} in
    up) cmd_up "${@:2}" ;;
    reap) cmd_reap ;;
    kubectl) cmd_kubectl ;;
    down) cmd_down ;;
    env) cmd_env ;;
    status) cmd_status ;;
    crds) cmd_crds ;;
    build) cmd_build ;;
    restart-apiserver) cmd_restart_apiserver ;;
    stop-etcd) cmd_stop_etcd ;;
    start-etcd) cmd_start_etcd ;;
    -h | --help | help) usage ;;
    "") usage >&2; exit 2 ;;
    *) echo "$SCRIPT_NAME: unknown command '$1'" >&2; usage >&2; exit 2 ;;
  esac
}

main "$@"
