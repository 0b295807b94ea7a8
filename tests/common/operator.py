#!/usr/bin/env python3
"""The rendering half of the operator double: mcp-runtime's gateway policy, written apart from
mcp-gitops.

It follows DOMAIN.md, not mcp-gitops' code: §1.3 (the defaulting the operator re-applies in
memory), §4.6 (which grants and sessions a server's policy takes, and how each field is mapped),
§4.7 (the document's field order and omitempty rules) and §4.8 (the revision: sha256 of the
document as Go's encoding/json.Marshal writes it, with revision and generated_at blank). Standard
library only, so that the tests need nothing but `python3`.

Protocol: one JSON request per line on stdin, one JSON answer per line on stdout, until stdin
closes. A request is

    {"cluster": "local", "now": "2026-11-25T00:00:00Z" (optional, the clock otherwise),
     "servers": [MCPServer...], "grants": [MCPAccessGrant...], "sessions": [MCPAgentSession...],
     "stored": {"<namespace>/<server>": "<policy.json of its ConfigMap>"}}

with objects as the API server returns them, grants and sessions in the order the operator's cache
would list them. The answer has one entry per server, in request order:

    {"namespace", "name", "action": "write" | "keep" | "delete",
     "revision", "canonical" (the hashed bytes), "payload" (policy.json to write, for "write")}

"keep" is the operator keeping the stored payload byte for byte (same revision, and the stored
document's own revision still matches it); "delete" is a server whose gateway is disabled.

A request {"document": "<policy.json>"} is answered [{"canonical", "revision"}]: the revision
the operator and the gateway recompute for a stored document (parsed, then marshalled again).
"""

import datetime
import hashlib
import json
import sys

# §4.7: each struct's fields in Go declaration order, as (json name, shape, omitempty).
# A shape is "string", "bool", "strings" (a slice), "labels" (a map, keys sorted), a struct
# (a list of fields), ("pointer", struct) or ("slice", struct).
SERVER = [("name", "string", False), ("namespace", "string", False), ("team_id", "string", True), ("cluster", "string", True)]
AUTH = [
    ("mode", "string", True),
    ("human_id_header", "string", True),
    ("agent_id_header", "string", True),
    ("team_id_header", "string", True),
    ("session_id_header", "string", True),
    ("token_header", "string", True),
    ("issuer_url", "string", True),
    ("audience", "string", True),
    ("trust_domain", "string", True),
]
POLICY = [("mode", "string", True), ("default_decision", "string", True), ("enforce_on", "string", True), ("policy_version", "string", True)]
SESSION_CONFIG = [
    ("required", "bool", True),
    ("store", "string", True),
    ("header_name", "string", True),
    ("max_lifetime", "string", True),
    ("idle_timeout", "string", True),
    ("upstream_token_header", "string", True),
]
TOOL = [
    ("name", "string", False),
    ("description", "string", True),
    ("required_trust", "string", True),
    ("side_effect", "string", True),
    ("risk_level", "string", True),
    ("labels", "labels", True),
]
RULE = [("name", "string", False), ("decision", "string", True), ("required_trust", "string", True)]
GRANT = [
    ("name", "string", False),
    ("namespace", "string", True),
    ("human_id", "string", True),
    ("agent_id", "string", True),
    ("team_id", "string", True),
    ("max_trust", "string", True),
    ("allowed_side_effects", "strings", True),
    ("policy_version", "string", True),
    ("disabled", "bool", True),
    ("tool_rules", ("slice", RULE), True),
]
SESSION = [
    ("name", "string", False),
    ("namespace", "string", True),
    ("human_id", "string", True),
    ("agent_id", "string", True),
    ("team_id", "string", True),
    ("consented_trust", "string", True),
    ("revoked", "bool", True),
    ("expires_at", "string", True),
    ("policy_version", "string", True),
    ("upstream_token_ref", "string", True),
]
DOCUMENT = [
    ("schema_version", "string", False),
    ("revision", "string", False),
    ("generated_at", "string", True),
    ("server", SERVER, False),
    ("auth", ("pointer", AUTH), True),
    ("policy", ("pointer", POLICY), True),
    ("session", ("pointer", SESSION_CONFIG), True),
    ("tools", ("slice", TOOL), True),
    ("grants", ("slice", GRANT), True),
    ("sessions", ("slice", SESSION), True),
]


class Malformed(Exception):
    """A stored document Go's json.Unmarshal would refuse (a field of the wrong type)."""


def shaped(value, shape):
    """`value` (parsed JSON) as Go would hold it in a field of `shape`: the zero value when absent;
    None stands for a nil pointer, slice or map."""
    if isinstance(shape, list):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise Malformed(shape)
        return {name: shaped(value.get(name), inner) for name, inner, _ in shape}
    if shape == "string":
        if value is None:
            return ""
        if not isinstance(value, str):
            raise Malformed(shape)
        return value
    if shape == "bool":
        if value is None:
            return False
        if not isinstance(value, bool):
            raise Malformed(shape)
        return value
    if shape == "strings":
        if value is None:
            return None
        if not isinstance(value, list):
            raise Malformed(shape)
        return [shaped(v, "string") for v in value]
    if shape == "labels":
        if value is None:
            return None
        if not isinstance(value, dict):
            raise Malformed(shape)
        return {k: shaped(v, "string") for k, v in value.items()}
    kind, inner = shape
    if value is None:
        return None
    if kind == "pointer":
        return shaped(value, inner)
    if not isinstance(value, list):
        raise Malformed(shape)
    return [shaped(v, inner) for v in value]


def is_empty(value, shape):
    """encoding/json's omitempty: false, "", and nil or empty slices and maps; a struct is never
    empty, a pointer only when nil."""
    if value is None:
        return True
    if shape in ("string", "strings", "labels") or (isinstance(shape, tuple) and shape[0] == "slice"):
        return len(value) == 0
    if shape == "bool":
        return value is False
    return False


def go_string(text):
    """A JSON string as Go's encoding/json writes it (HTMLEscape on, Go 1.19): `"` and `\\`
    escaped, \\n \\r \\t short, other control bytes and < > & as \\u00XX, U+2028 and U+2029
    escaped, everything else raw UTF-8; an unpaired surrogate (invalid UTF-8 to Go) is U+FFFD."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or ch in "<>&":
            out.append("\\u00%02x" % code)
        elif code in (0x2028, 0x2029):
            out.append("\\u%04x" % code)
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_json(value, shape, indent=None, depth=0):
    """Go's json.Marshal (indent None) or json.MarshalIndent(v, "", indent) of a value of `shape`."""
    if shape == "string":
        return go_string(value)
    if shape == "bool":
        return "true" if value else "false"
    if value is None:
        return "null"
    if shape == "strings":
        return container("[", "]", [go_string(v) for v in value], indent, depth)
    if shape == "labels":
        keys = sorted(value, key=lambda k: k.encode("utf-8", "surrogatepass"))
        return container("{", "}", [go_string(k) + colon(indent) + go_string(value[k]) for k in keys], indent, depth)
    if isinstance(shape, tuple):
        kind, inner = shape
        if kind == "pointer":
            return go_json(value, inner, indent, depth)
        return container("[", "]", [go_json(v, inner, indent, depth + 1) for v in value], indent, depth)
    members = [
        go_string(name) + colon(indent) + go_json(value[name], inner, indent, depth + 1)
        for name, inner, omitempty in shape
        if not (omitempty and is_empty(value[name], inner))
    ]
    return container("{", "}", members, indent, depth)


def colon(indent):
    return ":" if indent is None else ": "


def container(open_, close, members, indent, depth):
    if indent is None:
        return open_ + ",".join(members) + close
    if not members:
        return open_ + close
    inside = "\n" + indent * (depth + 1)
    return open_ + inside + ("," + inside).join(members) + "\n" + indent * depth + close


def revision(document):
    """§4.8: the canonical bytes (revision and generated_at blank) and "sha256:" + their digest."""
    blank = dict(document, revision="", generated_at="")
    canonical = go_json(blank, DOCUMENT)
    return canonical, "sha256:" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def text(obj, *path):
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj if isinstance(obj, str) else ""


def flag(obj, *path):
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj is True


def default(value, fallback):
    return value if value != "" else fallback


def targets(obj, server):
    """§4.6: serverRef.name is the server's, and serverRef.namespace (trimmed; the object's own
    namespace when blank) is the server's namespace."""
    namespace = text(obj, "spec", "serverRef", "namespace").strip() or text(obj, "metadata", "namespace")
    return text(obj, "spec", "serverRef", "name") == text(server, "metadata", "name") and namespace == text(server, "metadata", "namespace")


def utc_seconds(stamp):
    """metav1.Time as the operator formats it: UTC, RFC 3339, whole seconds."""
    parsed = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00").replace("z", "+00:00"))
    return parsed.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def render(server, grants, sessions, cluster):
    """The policy document of one MCPServer (§4.6 with the defaulting of §1.3), unstamped; None
    when its gateway is disabled."""
    spec = server.get("spec") or {}
    if not flag(spec, "gateway", "enabled"):
        return None
    team = text(spec, "teamID").strip()
    auth = spec.get("auth") or {}
    policy = spec.get("policy") or {}
    session = spec.get("session") or {}
    document = {
        "schema_version": "",
        "revision": "",
        "generated_at": "",
        "server": {"name": text(server, "metadata", "name"), "namespace": text(server, "metadata", "namespace"), "team_id": team, "cluster": cluster},
        "auth": {
            "mode": default(text(auth, "mode"), "header"),
            "human_id_header": default(text(auth, "humanIDHeader"), "X-MCP-Human-ID"),
            "agent_id_header": default(text(auth, "agentIDHeader"), "X-MCP-Agent-ID"),
            "team_id_header": default(text(auth, "teamIDHeader"), "X-MCP-Team-ID"),
            "session_id_header": default(text(auth, "sessionIDHeader"), "X-MCP-Agent-Session"),
            "token_header": default(text(auth, "tokenHeader"), "Authorization"),
            "issuer_url": text(auth, "issuerURL"),
            "audience": text(auth, "audience"),
            "trust_domain": text(auth, "trustDomain"),
        },
        "policy": {
            "mode": default(text(policy, "mode"), "allow-list"),
            "default_decision": default(text(policy, "defaultDecision"), "deny"),
            "enforce_on": default(text(policy, "enforceOn"), "call_tool"),
            "policy_version": default(text(policy, "policyVersion"), "v1"),
        },
        "session": {
            "required": flag(session, "required"),
            "store": default(text(session, "store"), "kubernetes"),
            "header_name": default(text(session, "headerName"), "X-MCP-Agent-Session"),
            "max_lifetime": default(text(session, "maxLifetime"), "24h"),
            "idle_timeout": default(text(session, "idleTimeout"), "1h"),
            "upstream_token_header": default(text(session, "upstreamTokenHeader"), "Authorization"),
        },
        "tools": [
            {
                "name": text(tool, "name"),
                "description": text(tool, "description"),
                "required_trust": default(text(tool, "requiredTrust"), "low"),
                "side_effect": text(tool, "sideEffect"),
                "risk_level": text(tool, "riskLevel"),
                "labels": tool.get("labels") or None,
            }
            for tool in spec.get("tools") or []
        ],
        "grants": [],
        "sessions": [],
    }
    for grant in grants:
        if not targets(grant, server):
            continue
        g = grant.get("spec") or {}
        document["grants"].append(
            {
                "name": text(grant, "metadata", "name"),
                "namespace": text(grant, "metadata", "namespace"),
                "human_id": text(g, "subject", "humanID"),
                "agent_id": text(g, "subject", "agentID"),
                "team_id": default(text(g, "subject", "teamID"), team),
                "max_trust": default(text(g, "maxTrust"), "low"),
                "allowed_side_effects": g.get("allowedSideEffects") or None,
                "policy_version": text(g, "policyVersion"),
                "disabled": flag(g, "disabled"),
                "tool_rules": [
                    {"name": text(rule, "name"), "decision": default(text(rule, "decision"), "allow"), "required_trust": default(text(rule, "requiredTrust"), "low")}
                    for rule in g.get("toolRules") or []
                ],
            }
        )
    for agent_session in sessions:
        if not targets(agent_session, server):
            continue
        s = agent_session.get("spec") or {}
        token = s.get("upstreamTokenSecretRef")
        document["sessions"].append(
            {
                "name": text(agent_session, "metadata", "name"),
                "namespace": text(agent_session, "metadata", "namespace"),
                "human_id": text(s, "subject", "humanID"),
                "agent_id": text(s, "subject", "agentID"),
                "team_id": default(text(s, "subject", "teamID"), team),
                "consented_trust": default(text(s, "consentedTrust"), "low"),
                "revoked": flag(s, "revoked"),
                "expires_at": utc_seconds(text(s, "expiresAt")) if text(s, "expiresAt") else "",
                "policy_version": text(s, "policyVersion"),
                "upstream_token_ref": text(token, "name") + "/" + text(token, "key") if isinstance(token, dict) else "",
            }
        )
    return document


def kept(stored_payload, new_revision):
    """§4.6: the stored payload stays when its revision is the new one and still its own."""
    if stored_payload is None:
        return False
    try:
        stored = shaped(json.loads(stored_payload), DOCUMENT)
    except (ValueError, Malformed):
        return False
    return stored["revision"] == new_revision and revision(stored)[1] == new_revision


def reconcile(request):
    now = request.get("now") or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    answers = []
    for server in request.get("servers") or []:
        answer = {"namespace": text(server, "metadata", "namespace"), "name": text(server, "metadata", "name")}
        document = render(server, request.get("grants") or [], request.get("sessions") or [], request.get("cluster", ""))
        if document is None:
            answers.append(dict(answer, action="delete"))
            continue
        document["schema_version"] = "v1"
        canonical, document["revision"] = revision(document)
        answer.update(revision=document["revision"], canonical=canonical)
        if kept((request.get("stored") or {}).get(answer["namespace"] + "/" + answer["name"]), document["revision"]):
            answers.append(dict(answer, action="keep"))
            continue
        document["generated_at"] = now
        answers.append(dict(answer, action="write", payload=go_json(document, DOCUMENT, indent="  ")))
    return answers


def recompute(payload):
    canonical, digest = revision(shaped(json.loads(payload), DOCUMENT))
    return [{"canonical": canonical, "revision": digest}]


def main():
    for line in sys.stdin:
        if line.strip():
            request = json.loads(line)
            answer = recompute(request["document"]) if "document" in request else reconcile(request)
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
