//! `.mcp/servers.yaml` metadata -> MCPServer documents, as mcp-runtime's `server generate`
//! converts them (DOMAIN.md §3.2-3.5): loader defaults, scope -> namespace, image pull-host
//! rewrite, `servicePort: 80`, no webhook defaults. Works on JSON values so that a wrongly typed
//! field still converts (the schema stage reports it against the metadata file).

use serde_json::{Map, Value, json};

/// Registry hosts used when an image is defaulted or rewritten (DOMAIN.md §3.4, no env set).
pub const PUSH_HOST: &str = "registry.local";
pub const PULL_HOST: &str = "registry.registry.svc.cluster.local:5000";

/// Converts one entry of `servers:` to an MCPServer manifest.
pub fn server_to_manifest(entry: &Map<String, Value>) -> Value {
    let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::trim).unwrap_or_default().to_string();
    let name = entry.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let scope = text("scope").to_lowercase();
    let namespace = match entry.get("namespace").and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() => ns.to_string(),
        _ => scope_namespace(&scope).to_string(),
    };

    let mut spec = Map::new();
    copy(entry, &mut spec, "teamID");
    copy(entry, &mut spec, "description");
    let image = match entry.get("image").and_then(Value::as_str) {
        Some(image) if !image.is_empty() => image.to_string(),
        _ => default_image(&name, &scope),
    };
    spec.insert("image".into(), Value::String(rewrite_pull_host(&image)));
    set_or_default(entry, &mut spec, "imageTag", json!("latest"));
    copy(entry, &mut spec, "registryOverride");
    copy(entry, &mut spec, "useProvisionedRegistry");
    copy(entry, &mut spec, "imagePullSecrets");
    set_or_default(entry, &mut spec, "replicas", json!(1));
    set_or_default(entry, &mut spec, "port", json!(8088));
    spec.insert("servicePort".into(), json!(80));
    let route = match entry.get("route").and_then(Value::as_str) {
        Some(route) if !route.is_empty() => route.to_string(),
        _ => format!("/{name}/mcp"),
    };
    let route = if route.starts_with('/') { route } else { format!("/{route}") };
    spec.insert("ingressPath".into(), Value::String(route));
    copy(entry, &mut spec, "ingressHost");
    copy(entry, &mut spec, "publicPathPrefix");
    copy(entry, &mut spec, "resources");
    copy(entry, &mut spec, "envVars");
    copy(entry, &mut spec, "secretEnvVars");
    if let Some(Value::Array(tools)) = entry.get("tools") {
        let tools = tools
            .iter()
            .map(|tool| match tool {
                Value::Object(t) => {
                    let mut t = t.clone();
                    default_blank(&mut t, "requiredTrust", "low");
                    Value::Object(t)
                }
                other => other.clone(),
            })
            .collect();
        spec.insert("tools".into(), Value::Array(tools));
    } else {
        copy(entry, &mut spec, "tools");
    }
    copy(entry, &mut spec, "prompts");
    copy(entry, &mut spec, "mcpResources");
    copy(entry, &mut spec, "tasks");
    let port = spec.get("port").cloned().unwrap_or(json!(8088));
    with_defaults(entry, &mut spec, "auth", |auth| {
        for (key, default) in [
            ("mode", "header"),
            ("humanIDHeader", "X-MCP-Human-ID"),
            ("agentIDHeader", "X-MCP-Agent-ID"),
            ("teamIDHeader", "X-MCP-Team-ID"),
            ("sessionIDHeader", "X-MCP-Agent-Session"),
            ("tokenHeader", "Authorization"),
        ] {
            default_blank(auth, key, default);
        }
    });
    with_defaults(entry, &mut spec, "policy", |policy| {
        for (key, default) in [("mode", "allow-list"), ("defaultDecision", "deny"), ("enforceOn", "call_tool"), ("policyVersion", "v1")] {
            default_blank(policy, key, default);
        }
    });
    with_defaults(entry, &mut spec, "session", |session| {
        for (key, default) in [
            ("store", "kubernetes"),
            ("headerName", "X-MCP-Agent-Session"),
            ("maxLifetime", "24h"),
            ("idleTimeout", "1h"),
            ("upstreamTokenHeader", "Authorization"),
        ] {
            default_blank(session, key, default);
        }
    });
    with_defaults(entry, &mut spec, "gateway", |gateway| {
        if gateway.get("enabled") == Some(&Value::Bool(true)) {
            if gateway.get("port").is_none_or(|p| p == &json!(0)) {
                gateway.insert("port".into(), json!(8091));
            }
            let upstream = format!("http://127.0.0.1:{}", port_text(&port));
            default_blank(gateway, "upstreamURL", &upstream);
        }
    });
    let source = format!("{name}-gateway");
    with_defaults(entry, &mut spec, "analytics", |analytics| {
        if analytics.get("disabled") != Some(&Value::Bool(true)) {
            default_blank(analytics, "source", &source);
            default_blank(analytics, "eventType", "mcp.request");
        }
    });
    with_defaults(entry, &mut spec, "rollout", |rollout| {
        for (key, default) in [("strategy", "RollingUpdate"), ("maxUnavailable", "25%"), ("maxSurge", "25%")] {
            default_blank(rollout, key, default);
        }
    });

    let mut metadata = Map::new();
    metadata.insert("name".into(), Value::String(name));
    metadata.insert("namespace".into(), Value::String(namespace));
    if !scope.is_empty() {
        metadata.insert("labels".into(), json!({"mcpruntime.org/scope": scope}));
    }
    json!({
        "apiVersion": crate::model::object::API_VERSION,
        "kind": "MCPServer",
        "metadata": metadata,
        "spec": spec,
    })
}

/// Default namespace of a scope when metadata sets none (DOMAIN.md §3.5).
fn scope_namespace(scope: &str) -> &'static str {
    match scope {
        "org" => "mcp-servers-org",
        "public" => "mcp-servers-public",
        _ => crate::model::DEFAULT_NAMESPACE,
    }
}

fn default_image(name: &str, scope: &str) -> String {
    match scope {
        "org" => format!("{PUSH_HOST}/org/{name}"),
        "public" => format!("{PUSH_HOST}/public/{name}"),
        _ => format!("{PUSH_HOST}/{name}"),
    }
}

/// Replaces the registry part of an image with the pull host (`server generate`, DOMAIN.md §3.4).
pub fn rewrite_pull_host(image: &str) -> String {
    match image.split_once('/') {
        None => format!("{PULL_HOST}/{image}"),
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => format!("{PULL_HOST}/{rest}"),
        Some(_) => image.to_string(),
    }
}

fn port_text(port: &Value) -> String {
    match port {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn copy(from: &Map<String, Value>, to: &mut Map<String, Value>, key: &str) {
    if let Some(value) = from.get(key) {
        to.insert(key.into(), value.clone());
    }
}

fn set_or_default(from: &Map<String, Value>, to: &mut Map<String, Value>, key: &str, default: Value) {
    let value = match from.get(key) {
        None | Some(Value::Null) => default,
        Some(Value::String(s)) if s.is_empty() => default,
        Some(Value::Number(n)) if n.as_i64() == Some(0) && key != "replicas" => default,
        Some(value) => value.clone(),
    };
    to.insert(key.into(), value);
}

fn default_blank(map: &mut Map<String, Value>, key: &str, default: &str) {
    let blank = match map.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(_) => false,
    };
    if blank {
        map.insert(key.into(), Value::String(default.into()));
    }
}

/// Copies an optional block and fills its defaults when it is present.
fn with_defaults(from: &Map<String, Value>, to: &mut Map<String, Value>, key: &str, fill: impl FnOnce(&mut Map<String, Value>)) {
    match from.get(key) {
        Some(Value::Object(block)) => {
            let mut block = block.clone();
            fill(&mut block);
            to.insert(key.into(), Value::Object(block));
        }
        Some(other) => {
            to.insert(key.into(), other.clone());
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_applies_loader_defaults_and_rewrites_the_registry() {
        let entry = json!({"name": "payments", "scope": " Org ", "tools": [{"name": "t", "sideEffect": "read"}],
                           "gateway": {"enabled": true}, "policy": {}, "extra": 1});
        let Value::Object(entry) = entry else { unreachable!() };
        let server = server_to_manifest(&entry);
        assert_eq!(
            server["metadata"],
            json!({"name": "payments", "namespace": "mcp-servers-org", "labels": {"mcpruntime.org/scope": "org"}})
        );
        assert_eq!(server["spec"]["image"], "registry.registry.svc.cluster.local:5000/org/payments");
        assert_eq!(server["spec"]["imageTag"], "latest");
        assert_eq!(server["spec"]["servicePort"], 80);
        assert_eq!(server["spec"]["ingressPath"], "/payments/mcp");
        assert_eq!(server["spec"]["tools"][0]["requiredTrust"], "low");
        assert_eq!(server["spec"]["gateway"], json!({"enabled": true, "port": 8091, "upstreamURL": "http://127.0.0.1:8088"}));
        assert_eq!(
            server["spec"]["policy"],
            json!({"mode": "allow-list", "defaultDecision": "deny", "enforceOn": "call_tool", "policyVersion": "v1"})
        );
        assert!(server["spec"].get("extra").is_none());
        assert!(server["spec"].get("auth").is_none(), "the loader does not create auth when the gateway is on");
    }

    #[test]
    fn pull_host_rewrite_follows_server_generate() {
        assert_eq!(rewrite_pull_host("foo"), format!("{PULL_HOST}/foo"));
        assert_eq!(rewrite_pull_host("registry.local/foo"), format!("{PULL_HOST}/foo"));
        assert_eq!(rewrite_pull_host("localhost/a/b"), format!("{PULL_HOST}/a/b"));
        assert_eq!(rewrite_pull_host("acme/foo"), "acme/foo");
    }
}
