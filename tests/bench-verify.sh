#!/usr/bin/env bash
# tests/bench-verify.sh [N]: the time to verify N (default 1,000) SSH-signed commits with
# `mcp-gitops verify`, next to git's own check of the same commits in the same run
# (`git log --format=%G?` with gpg.ssh.allowedSignersFile, which runs ssh-keygen per commit).
# Commits are made by the git CLI with an ed25519 key from ssh-keygen.
set -euo pipefail
n=${1:-1000}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MCP_GITOPS_BIN:-$root/target/release/mcp-gitops}
[[ -x $bin ]] || (cd "$root" && cargo build --release --quiet --bin mcp-gitops)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ssh-keygen -q -t ed25519 -N "" -C bench -f "$work/key"
echo "bench@fernhill.io $(cut -d' ' -f1,2 "$work/key.pub")" >"$work/allowed_signers"
git_() { git -C "$work/repo" -c user.name=Bench -c user.email=bench@fernhill.io -c gpg.format=ssh \
  -c "user.signingkey=$work/key" -c "gpg.ssh.allowedSignersFile=$work/allowed_signers" "$@"; }
git init -q -b main "$work/repo"
git_ commit -q --allow-empty -m base
base=$(git_ rev-parse HEAD)
echo "signing $n commits..." >&2
for i in $(seq "$n"); do git_ commit -q --allow-empty -S -m "change $i"; done
seconds() { local start end; start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N); echo "$end - $start" | bc; }
ours=$(seconds "$bin" verify "$work/repo" --allowed-signers "$work/allowed_signers" --from "$base")
theirs=$(seconds git_ log --format=%G? "$base..HEAD")
good=$(git_ log --format=%G? "$base..HEAD" | grep -c '^G' || true)
[[ $good == "$n" ]] || { echo "git verified $good of $n commits" >&2; exit 1; }
printf 'verify %d signed commits: mcp-gitops %.3f s, git log --format=%%G? %.3f s (%.1fx)\n' "$n" "$ours" "$theirs" "$(echo "$theirs / $ours" | bc -l)"
