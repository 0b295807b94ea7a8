#!/usr/bin/env bash
# tests/image.sh: the daemon image (deploy/Dockerfile) built and run as a pod runs it. CI runs
# `build` then `check` after the release build (.ci/run). No registry is reachable here, so the
# runtime base is a stand-in made from Debian's packages (see `standin`).
#
#   tests/image.sh standin  localhost/distroless-cc-standin:nonroot: the files of
#                           gcr.io/distroless/cc-debian12:nonroot from the same Debian packages
#   tests/image.sh build    localhost/mcp-gitops:test from the release binary (cargo build
#                           --release --locked; $MCP_GITOPS_BINARY overrides the path,
#                           $MCP_GITOPS_IMAGE the name)
#   tests/image.sh run ARG...  podman run ARG... as containers run on these machines (below)
#   tests/image.sh check    the image's facts, then the daemon in containers against the test
#                           API server (tests/cluster.sh up) with a pod's in-cluster
#                           configuration; the last line is `image: N checks passed`
#
# Containers run as Debian's podman runs on these machines: runc (crun refuses the hybrid
# cgroups), cgroupfs, ulimits no higher than the shell's, the host network (the test API server
# and the test repository's daemon listen on loopback).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly REPO_ROOT=${SCRIPT_DIR%/*}
readonly IMAGE=${MCP_GITOPS_IMAGE:-localhost/mcp-gitops:test}
readonly STANDIN=localhost/distroless-cc-standin:nonroot
# What distroless documents for cc-debian12 (static: base-files, netbase, tzdata, ca-certificates;
# base: libc6, libssl3; cc: libgcc-s1, libgomp1, libstdc++6), plus its nonroot user.
readonly STANDIN_PACKAGES=(base-files netbase tzdata ca-certificates libc6 libssl3 libgcc-s1 libgomp1 libstdc++6)
# The only shared libraries the binary may need: glibc's and libgcc_s (Rust's unwinder). zlib,
# OpenSSL and libssh2 are linked in (reconciler/Cargo.toml), so the binary would run on any base
# with glibc 2.36 and libgcc_s: the cc base is the smallest distroless one with libgcc_s.
readonly ALLOWED_LIBS='^(libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|ld-linux-x86-64\.so\.2|libgcc_s\.so\.1)$'
# The goal of #27: under 50 MB (47.0 MB with the release profile's opt-level "z" and panic "abort").
readonly MAX_IMAGE_MB=50

log() { printf 'image.sh: %s\n' "$*" >&2; }
die() { printf 'image.sh: error: %s\n' "$*" >&2; exit 1; }

# Everything this script makes is undone on exit, failure included: the commands here run last first.
CLEANUPS=()
cleanup() { local i; for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUPS[i]}" || true; done; }
trap cleanup EXIT
scratch() { local made; made=$(mktemp -d); CLEANUPS+=("rm -rf '$made'"); printf -v "$1" %s "$made"; } # scratch VAR: a temporary directory

ensure_podman() { bash "$REPO_ROOT/tests/packages.sh" podman runc; }

podman_run() {
  # runc may not raise nproc to the shell's own limit (EPERM here at 96367): 4096 at most.
  local files procs
  files=$(ulimit -Sn) procs=$(ulimit -Su)
  [[ $files == unlimited ]] && files=65536
  [[ $procs == unlimited || $procs -gt 4096 ]] && procs=4096
  podman --runtime runc --cgroup-manager cgroupfs run --ulimit "nofile=$files:$files" --ulimit "nproc=$procs:$procs" "$@"
}

cmd_standin() {
  ensure_podman
  if podman image exists "$STANDIN"; then return 0; fi
  log "building $STANDIN from Debian's ${STANDIN_PACKAGES[*]}"
  local work root deb
  scratch work
  root=$work/root
  mkdir -p "$work/debs" "$root"
  (cd "$work/debs" && apt-get download "${STANDIN_PACKAGES[@]}" >/dev/null 2>&1) \
    || { bash "$REPO_ROOT/tests/packages.sh" --update && (cd "$work/debs" && apt-get download "${STANDIN_PACKAGES[@]}" >/dev/null); } \
    || die "apt-get download ${STANDIN_PACKAGES[*]} failed"
  for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done
  # What the packages' maintainer scripts would make, and distroless makes too.
  mkdir -p "$root/etc/ssl/certs" "$root/root" "$root/home/nonroot" "$root/tmp"
  cat "$root"/usr/share/ca-certificates/mozilla/*.crt >"$root/etc/ssl/certs/ca-certificates.crt"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' >"$root/etc/group"
  chmod 1777 "$root/tmp"
  chmod 700 "$root/root" "$root/home/nonroot"
  chown 65532:65532 "$root/home/nonroot"
  [[ ! -e $root/bin/sh && ! -e $root/usr/bin/sh ]] || die "the stand-in has a shell: distroless has none"
  tar -C "$root" --numeric-owner -c . | podman import \
    --change 'USER 65532:65532' --change 'WORKDIR /home/nonroot' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' - "$STANDIN" >/dev/null
}

binary() { echo "${MCP_GITOPS_BINARY:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/mcp-gitops}"; }

cmd_build() {
  local bin context start
  bin=$(binary)
  if [[ -z ${MCP_GITOPS_BINARY:-} ]]; then (cd "$REPO_ROOT" && cargo build --release --locked --bin mcp-gitops); fi
  [[ -x $bin ]] || die "no binary at $bin"
  cmd_standin
  scratch context
  cp "$bin" "$context/mcp-gitops"
  start=$SECONDS
  podman build --quiet -f "$REPO_ROOT/deploy/Dockerfile" --build-arg BINARY=prebuilt \
    --build-arg "RUNTIME_IMAGE=$STANDIN" -t "$IMAGE" "$context" >/dev/null
  log "built $IMAGE in $((SECONDS - start)) s ($(image_mb) MB)"
}

image_mb() { echo $(($(podman image inspect --format '{{.Size}}' "$IMAGE") / 1000000)); }


# ---------------------------------------------------------------------------------------------
# check

PASSED=0
pass() { PASSED=$((PASSED + 1)); log "ok $PASSED: $*"; }
fail() {
  local name
  for name in "${CONTAINERS[@]}"; do
    printf -- '----- last 30 lines of container %s -----\n' "$name" >&2
    podman logs --tail 30 "$name" 2>&1 | cat >&2 || true
  done
  die "$*"
}
# wait_for SECONDS WHAT CMD...: CMD succeeds within SECONDS, polled every 0.1 s
wait_for() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "gave up after $limit s waiting for $what"
    sleep 0.1
  done
}
now_ms() { date +%s%3N; }

k() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# The image's own facts: what it holds and how it starts.
check_image() {
  podman image exists "$IMAGE" || die "no $IMAGE: run $0 build first"
  local dir container needed mb user
  scratch dir
  container=$(podman create "$IMAGE")
  CLEANUPS+=("podman rm -f '$container' >/dev/null 2>&1")
  podman cp "$container:/usr/local/bin/mcp-gitops" "$dir/mcp-gitops" >/dev/null
  needed=$(readelf -d "$dir/mcp-gitops" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  [[ -n $needed ]] || fail "readelf found no NEEDED entries in the image's binary"
  ! grep -vE "$ALLOWED_LIBS" <<<"$needed" >/dev/null || fail "the binary needs libraries other than glibc's and libgcc_s: $(grep -vE "$ALLOWED_LIBS" <<<"$needed" | tr '\n' ' ')"
  pass "the binary needs only $(tr '\n' ' ' <<<"$needed")"
  mb=$(image_mb)
  ((mb < MAX_IMAGE_MB)) || fail "the image is $mb MB, over $MAX_IMAGE_MB MB"
  pass "the image is $mb MB"
  user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
  [[ $user == 65532:65532 ]] || fail "the image runs as '$user', not 65532:65532"
  pass "the image runs as $user"
  local out rc=0
  out=$(podman_run --rm --pull=never --entrypoint /bin/sh "$IMAGE" -c true 2>&1) || rc=$?
  if ((rc == 0)) || ! grep -q '/bin/sh.*no such file' <<<"$out"; then fail "/bin/sh in the image: exit code $rc, $out"; fi
  pass "the image has no shell"
  local version expected
  expected=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO_ROOT/reconciler/Cargo.toml" | head -1)
  version=$(podman_run --rm --pull=never --read-only --cap-drop ALL "$IMAGE" --version) || fail "podman run $IMAGE --version failed"
  grep -qF "$expected" <<<"$version" || fail "version printed '$version', not $expected"
  pass "podman run --read-only $IMAGE --version: $(head -1 <<<"$version")"
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The namespace manifests of deploy/ moved into namespace $NS (cluster-wide names too), keeping
# the fixed names the daemon uses (as tests/daemon_deploy.rs does).
manifest() {
  sed -e 's/mcp-gitops-inventory/@INVENTORY@/g; s/mcp-gitops-leader/@LEADER@/g' -e "s/mcp-gitops/$NS/g" \
    -e 's/@INVENTORY@/mcp-gitops-inventory/g; s/@LEADER@/mcp-gitops-leader/g' "$REPO_ROOT/deploy/$1"
}

# platform TOOLS...: the test repository's one server, `docs` in $TEAM, with these read tools,
# committed and pushed; prints the commit
platform() {
  local tools
  tools=$(printf '{name: %s, sideEffect: read}, ' "$@")
  printf 'servers:\n  - name: docs\n    namespace: %s\n    gateway: {enabled: true}\n    tools: [%s]\n' "$TEAM" "${tools%, }" \
    >"$WORK/.mcp/servers.yaml"
  { git -C "$WORK" add -A && git -C "$WORK" commit -qm "tools: $*" && git -C "$WORK" push -q --receive-pack="git -c safe.directory='*' receive-pack" origin HEAD:main; } >/dev/null 2>&1 \
    || fail "committing and pushing to the test repository failed"
  git -C "$WORK" rev-parse HEAD
}

live_tools() { k get mcpserver docs -n "$TEAM" -o 'jsonpath={.spec.tools[*].name}' 2>/dev/null; }
tools_are() { [[ $(live_tools) == "$1" ]]; }
status() { curl -fsS --max-time 2 "http://127.0.0.1:$1/status"; }
status_is() { # status_is PORT JQ-EXPR
  status "$1" | python3 -c 'import json, sys; s = json.load(sys.stdin); sys.exit(0 if eval(sys.argv[1]) else 1)' "$2"
}
lease_holder() { k get lease mcp-gitops-leader -n "$NS" -o 'jsonpath={.spec.holderIdentity}' 2>/dev/null; }

# start_daemon NAME PORT: the daemon as deploy/daemon.yaml runs it, in a container with what a
# pod gets: the ServiceAccount's files, the service environment, a read-only root, no capabilities
start_daemon() {
  local name=$1 port=$2
  CONTAINERS+=("$name")
  CLEANUPS+=("podman rm -f -t 0 '$name' >/dev/null 2>&1")
  podman_run -d --pull=never --name "$name" --network host --read-only --cap-drop ALL \
    --security-opt no-new-privileges --tmpfs /var/cache/mcp-gitops:rw,mode=1777 \
    -v "$SA:/var/run/secrets/kubernetes.io/serviceaccount:ro" -v "$SECRETS:/etc/mcp-gitops/webhook:ro" \
    -v "$BARE:/srv/platform.git:ro" \
    -e KUBERNETES_SERVICE_HOST=127.0.0.1 -e "KUBERNETES_SERVICE_PORT=$API_PORT" -e "POD_NAME=$name" \
    "$IMAGE" daemon --repo /srv/platform.git --branch main --interval 1h --listen "127.0.0.1:$port" \
    --webhook-secret-file /etc/mcp-gitops/webhook/secret --inventory-namespace "$NS" --leader-elect \
    --drift correct --max-deletes 10 --log-format json --mirror-dir /var/cache/mcp-gitops/repository >/dev/null
}

hook() { # hook PORT [SECRET]: a GitHub push event, signed with SECRET when given; prints the status code
  local body='{"ref":"refs/heads/main"}' signature=()
  [[ -n ${2:-} ]] && signature=(-H "X-Hub-Signature-256: sha256=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$2" | sed 's/.*= //')")
  curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -X POST -H 'X-GitHub-Event: push' \
    -H 'Content-Type: application/json' "${signature[@]}" --data "$body" "http://127.0.0.1:$1/hook"
}

check_pod() {
  KUBECONFIG_ADMIN=$(bash "$REPO_ROOT/tests/cluster.sh" up | tail -1)
  local server
  server=$(k config view --raw -o 'jsonpath={.clusters[0].cluster.server}')
  API_PORT=${server##*:}
  NS=mcp-gitops-image-$$ TEAM=image-team-$$
  CLEANUPS+=("k delete clusterrole,clusterrolebinding '$NS' >/dev/null 2>&1")
  k create namespace "$TEAM" >/dev/null
  manifest namespace.yaml | k apply -f - >/dev/null
  manifest rbac.yaml | k apply -f - >/dev/null

  # What the kubelet mounts for the ServiceAccount: a TokenRequest token, the cluster's CA, the namespace.
  scratch SA && scratch SECRETS
  k create token "$NS" -n "$NS" --duration 1h >"$SA/token"
  k config view --raw -o 'jsonpath={.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$SA/ca.crt"
  printf '%s' "$NS" >"$SA/namespace"
  local secret=image-check-secret-$RANDOM$RANDOM
  printf '%s\n' "$secret" >"$SECRETS/secret"
  chmod 755 "$SA" "$SECRETS" && chmod 644 "$SA"/* "$SECRETS"/*

  # The repository: read by uid 65532 in the container (libgit2 opens only repositories of its
  # own user), pushed to by root on the host (receive-pack told it is safe).
  local repos
  scratch repos
  BARE=$repos/platform.git WORK=$repos/work
  git init -q --bare -b main "$BARE"
  git init -q -b main "$WORK" && mkdir "$WORK/.mcp"
  git -C "$WORK" config user.name 'Image Check' && git -C "$WORK" config user.email image@example.org
  git -C "$WORK" remote add origin "$BARE"
  local first second third
  first=$(platform search)
  chown -R 65532:65532 "$BARE"

  local one=image-daemon-one-$$ two=image-daemon-two-$$ port_one port_two started ready
  port_one=$(free_port) port_two=$(free_port)
  started=$(now_ms)
  start_daemon "$one" "$port_one"
  wait_for 60 "the container's /readyz" curl -fsS --max-time 1 "http://127.0.0.1:$port_one/readyz"
  ready=$(($(now_ms) - started))
  wait_for 30 "the first revision to be applied" \
    status_is "$port_one" "s['role'] == 'leader' and s['last_result'] == 'applied' and s['revision'] == '$first'"
  [[ $(live_tools) == search ]] || fail "MCPServer docs has tools '$(live_tools)', not 'search'"
  pass "in-cluster configuration (ServiceAccount token, ca.crt, namespace, KUBERNETES_SERVICE_*): leader, $first applied, ready $ready ms after podman run"

  local code
  code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port_one/healthz")
  [[ $code == 200 ]] || fail "/healthz answered $code"
  local metrics
  metrics=$(curl -fsS "http://127.0.0.1:$port_one/metrics") || fail "/metrics did not answer"
  grep -q '^mcp_gitops_reconciles_total{result="applied"} [1-9]' <<<"$metrics" || fail "/metrics has no applied reconcile"
  pass "/healthz, /readyz and /metrics answer from outside the container"

  second=$(platform search fetch)
  chown -R 65532:65532 "$BARE"
  code=$(hook "$port_one")
  [[ $code == 401 ]] || fail "an unsigned webhook answered $code, not 401"
  code=$(hook "$port_one" "$secret")
  [[ $code == 202 ]] || fail "a signed webhook answered $code, not 202"
  wait_for 30 "the pushed commit to be applied" status_is "$port_one" "s['revision'] == '$second' and s['last_result'] in ('applied', 'unchanged')"
  [[ $(live_tools) == 'search fetch' ]] || fail "after the push MCPServer docs has tools '$(live_tools)'"
  pass "a push and a signed webhook are applied (an unsigned one is refused with 401)"

  k patch mcpserver docs -n "$TEAM" --type merge -p '{"spec":{"tools":[{"name":"search","sideEffect":"read"}]}}' >/dev/null
  wait_for 30 "the out-of-band edit to be reverted" tools_are 'search fetch'
  pass "an out-of-band edit is reverted"

  start_daemon "$two" "$port_two"
  wait_for 60 "the second container's /readyz" curl -fsS --max-time 1 "http://127.0.0.1:$port_two/readyz"
  status_is "$port_two" "s['role'] == 'standby'" || fail "the second container is not standby: $(status "$port_two")"
  status_is "$port_one" "s['role'] == 'leader'" || fail "the first container is no longer leader: $(status "$port_one")"
  [[ $(lease_holder) == "$one" ]] || fail "the Lease is held by '$(lease_holder)', not $one"
  pass "two containers elect one leader ($one; $two is standby)"

  # SIGTERM as the kubelet sends it, with the default grace period of 30 s.
  local stop_started stopped exit_code
  stop_started=$(now_ms)
  podman stop -t 30 "$one" >/dev/null
  stopped=$(($(now_ms) - stop_started))
  exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$one")
  [[ $exit_code == 0 ]] || fail "the leader exited with $exit_code after SIGTERM, not 0"
  ((stopped < 30000)) || fail "the leader took $stopped ms to stop: SIGKILL at the end of the grace period"
  pass "SIGTERM stops the leader in $stopped ms with exit code 0"

  # Released, not left to expire: the stopped leader's name is gone from the Lease at once.
  [[ $(lease_holder) != "$one" ]] || fail "the stopped leader still holds the Lease"
  local takeover
  takeover=$(now_ms)
  wait_for 30 "the standby to take the lead" status_is "$port_two" "s['role'] == 'leader'"
  takeover=$(($(now_ms) - takeover))
  [[ $(lease_holder) == "$two" ]] || fail "the Lease is held by '$(lease_holder)', not $two"
  third=$(platform fetch)
  chown -R 65532:65532 "$BARE"
  code=$(hook "$port_two" "$secret")
  [[ $code == 202 ]] || fail "a signed webhook to the new leader answered $code, not 202"
  wait_for 30 "the new leader to apply the push" status_is "$port_two" "s['revision'] == '$third' and s['last_result'] in ('applied', 'unchanged')"
  [[ $(live_tools) == fetch ]] || fail "after the new leader's reconcile MCPServer docs has tools '$(live_tools)'"
  pass "the stopped leader released its Lease; the standby led $takeover ms later and applies pushes"
}

check_all() {
  ensure_podman
  CONTAINERS=()
  check_image
  check_pod
  echo "image: $PASSED checks passed"
}

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

main() {
  case ${1:-} in
    standin) cmd_standin ;;
    build) cmd_build ;;
    run) shift; ensure_podman; podman_run "$@" ;;
    check) check_all ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 64 ;;
  esac
}

main "$@"
