#!/usr/bin/env bash
# tests/bench-verify.sh [N]: the time to verify N (default 1,000) signed commits with
# `mcp-gitops verify`, next to git's own check of the same commits in the same run
# (`git log --format=%G?`, which starts ssh-keygen or gpg once per commit). Two runs: SSH
# (an ed25519 key from ssh-keygen, gpg.format=ssh) and OpenPGP (an ed25519 key from gpg).
# Commits are made by the git CLI.
set -euo pipefail
n=${1:-1000}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MCP_GITOPS_BIN:-$root/target/release/mcp-gitops}
[[ -x $bin ]] || (cd "$root" && cargo build --release --quiet --bin mcp-gitops)
work=$(mktemp -d)
export GNUPGHOME=$work/gnupg
trap 'gpgconf --kill gpg-agent 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -m 700 "$GNUPGHOME"

ssh-keygen -q -t ed25519 -N "" -C bench -f "$work/key"
echo "bench@fernhill.io $(cut -d' ' -f1,2 "$work/key.pub")" >"$work/allowed_signers"
gpg --batch --passphrase '' --quick-gen-key 'Bench <bench@fernhill.io>' ed25519 sign 0 2>/dev/null
gpg --armor --export bench@fernhill.io >"$work/bench.asc"

seconds() { local start end; start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N); echo "$end - $start" | bc; }

# bench FORMAT SIGNING_KEY TRUST_FLAG TRUST_FILE: signs N commits in a new repository, then times both checks.
bench() {
  local format=$1 key=$2 flag=$3 file=$4 repo=$work/repo-$1
  git_() { git -C "$repo" -c user.name=Bench -c user.email=bench@fernhill.io -c "gpg.format=$format" \
    -c "user.signingkey=$key" -c "gpg.ssh.allowedSignersFile=$work/allowed_signers" "$@"; }
  git init -q -b main "$repo"
  git_ commit -q --allow-empty -m base
  local base ours theirs good
  base=$(git_ rev-parse HEAD)
  echo "signing $n commits ($format)..." >&2
  for i in $(seq "$n"); do git_ commit -q --allow-empty -S -m "change $i"; done
  ours=$(seconds "$bin" verify "$repo" "$flag" "$file" --from "$base")
  theirs=$(seconds git_ log --format=%G? "$base..HEAD")
  good=$(git_ log --format=%G? "$base..HEAD" | grep -c '^G' || true)
  [[ $good == "$n" ]] || { echo "git verified $good of $n $format commits" >&2; exit 1; }
  "$bin" verify "$repo" "$flag" "$file" --from "$base" >/dev/null || { echo "mcp-gitops refused a $format commit" >&2; exit 1; }
  printf 'verify %d %s-signed commits: mcp-gitops %.3f s, git log --format=%%G? %.3f s (%.1fx)\n' \
    "$n" "$format" "$ours" "$theirs" "$(echo "$theirs / $ours" | bc -l)"
}

bench ssh "$work/key" --allowed-signers "$work/allowed_signers"
bench openpgp bench@fernhill.io --pgp-keys "$work/bench.asc"
