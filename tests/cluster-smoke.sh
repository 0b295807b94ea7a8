#!/usr/bin/env bash
# tests/cluster-smoke.sh: proves the CRDs in schema/crds/ enforce what mcp-gitops validates, on the
# real test cluster (tests/cluster.sh up must have run): the example grants and sessions are
# accepted by a server-side dry run, and a grant mcp-gitops flags as a schema violation is refused.
set -euo pipefail
cd "$(dirname "$0")/.."
export KUBECONFIG=${KUBECONFIG:-$(bash tests/cluster.sh up | tail -n 1)}
KUBECTL=${KUBECTL:-$(bash tests/cluster.sh kubectl)}
kubectl() { command "$KUBECTL" "$@"; }

for kind in mcpservers mcpaccessgrants mcpagentsessions; do
  kubectl get crd "$kind.mcpruntime.org" -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' | grep -qx True \
    || { echo "cluster-smoke: CRD $kind.mcpruntime.org is not established" >&2; exit 1; }
done

passed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
accepted=0
while IFS= read -r file; do
  kubectl apply --server-side --dry-run=server --field-manager=mcp-gitops-smoke -f "$file" >/dev/null
  accepted=$((accepted + 1))
done < <(find examples/platform/teams -path '*/.mcp' -prune -o -name '*.yaml' -print | sort)
echo "cluster-smoke: the API server accepts all $accepted example grant and session files"
passed=$((passed + 1))

# The first document of the schema-violation fixture (maxTrust: ultra), moved to a namespace that exists.
invalid=$(sed -n '1,/^---/p' tests/fixtures/schema-violation/grants/invalid.yaml | sed '/^---/d; s/namespace: mcp-team-a$/namespace: mcp-team-payments/')
grep -q 'maxTrust: ultra' <<<"$invalid" || { echo "cluster-smoke: fixture changed; update this script" >&2; exit 1; }
if kubectl apply --server-side --dry-run=server -f - <<<"$invalid" >"$out" 2>&1; then
  echo "cluster-smoke: the API server accepted a grant that mcp-gitops reports as a schema violation" >&2
  exit 1
fi
grep -q 'Unsupported value: "ultra"' "$out" \
  || { echo "cluster-smoke: unexpected refusal:" >&2; cat "$out" >&2; exit 1; }
echo "cluster-smoke: the API server refuses maxTrust: ultra, as mcp-gitops validate does"
passed=$((passed + 1))
echo "cluster-smoke: $passed checks passed"
