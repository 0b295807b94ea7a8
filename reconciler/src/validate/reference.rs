//! Cross-reference against the gateway metadata: the mistakes that otherwise only show up at
//! runtime as the gateway's own reason codes (`tool_side_effect_unknown`,
//! `side_effect_not_allowed`, `session_not_found`, `trust_too_low`...).

use crate::gateway::authorize::{Identity, side_effect, subject_matches, trust_name, trust_rank};
use crate::gateway::{PolicyDocument, render_unstamped};
use crate::model::spec::{ServerRef, ServerSpec, target_namespace};
use crate::model::{Code, DesiredState, Diagnostic, Kind, Object, ObjectId, spelling};
use jiff::Timestamp;
use std::collections::HashMap;

type Servers<'a> = HashMap<(&'a str, &'a str), (&'a Object, &'a ServerSpec)>;

pub fn check(state: &DesiredState, now: Timestamp, diagnostics: &mut Vec<Diagnostic>) {
    let servers: Servers =
        state.of_kind(Kind::Server).filter_map(|o| Some(((o.id.namespace.as_str(), o.id.name.as_str()), (o, o.server()?)))).collect();
    for (object, spec) in servers.values() {
        check_tools(object, spec, diagnostics);
    }
    for object in state.objects.iter() {
        if let Some(grant) = object.grant() {
            if let Some(server) = find_server(&servers, object, &grant.server_ref, diagnostics) {
                check_grant(object, server, diagnostics);
            }
        } else if let Some(session) = object.session() {
            find_server(&servers, object, &session.server_ref, diagnostics);
            if session.subject.is_empty() {
                diagnostics.push(
                    Diagnostic::error(
                        Code::SubjectNeverMatches,
                        &object.origin.file,
                        object.pos("/spec/subject"),
                        "session subject has no humanID, agentID or teamID",
                    )
                    .object(&object.id)
                    .path("spec.subject")
                    .hint("the admission webhook rejects it (sessions may not be wildcards): name the human, agent or team it binds"),
                );
            }
            check_expiry(object, &session.expires_at, now, diagnostics);
        }
        check_namespace(state, object, diagnostics);
    }
    let sessions: HashMap<&ObjectId, &Object> = state.of_kind(Kind::Session).map(|o| (&o.id, o)).collect();
    for (server, document) in render_unstamped(state, |_| true) {
        check_session_trust(&sessions, &server, &document, diagnostics);
    }
}

fn find_server<'a>(
    servers: &Servers<'a>,
    object: &Object,
    server_ref: &ServerRef,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(&'a Object, &'a ServerSpec)> {
    let namespace = target_namespace(server_ref, &object.id.namespace);
    if let Some(found) = servers.get(&(namespace, server_ref.name.as_str())) {
        return Some(*found);
    }
    // No serverRef (or no name in it) is the schema's `schema_violation`, at the right node.
    object.body.pointer("/spec/serverRef/name")?;
    let message = format!("serverRef {namespace}/{} matches no server declared in the repository", server_ref.name);
    // Sorted: the map's order changes from run to run, and so would the hint.
    let mut elsewhere: Vec<&str> = servers.keys().filter(|(_, name)| *name == server_ref.name).map(|(ns, _)| *ns).collect();
    elsewhere.sort();
    let diagnostic = if elsewhere.is_empty() {
        let names: Vec<&str> = servers.keys().filter(|(ns, _)| *ns == namespace).map(|(_, name)| *name).collect();
        let hint = match spelling::closest(&server_ref.name, names) {
            Some(close) => format!("did you mean {close}? (a server of {namespace})"),
            None => "declare the server in a .mcp/servers.yaml (or an MCPServer manifest), or fix serverRef.name".to_string(),
        };
        Diagnostic::error(Code::UnknownServer, &object.origin.file, object.pos("/spec/serverRef/name"), message)
            .path("spec.serverRef.name")
            .hint(hint)
    } else {
        // The name is right and the namespace wrong (or left to default to the object's own).
        let pointer = if server_ref.namespace.trim().is_empty() { "/spec/serverRef" } else { "/spec/serverRef/namespace" };
        let hint = match elsewhere.as_slice() {
            [one] => format!("{} is in {one}: set serverRef.namespace: {one}", server_ref.name),
            several => format!("servers of that name are in {}: set serverRef.namespace to one of them", several.join(", ")),
        };
        Diagnostic::error(Code::UnknownServer, &object.origin.file, object.pos(pointer), message)
            .path("spec.serverRef.namespace")
            .hint(hint)
    };
    diagnostics.push(diagnostic.object(&object.id));
    None
}

/// One mistake, one diagnostic: a serverRef that matches no server is the cause of what other
/// checks find at `spec.serverRef` of the same object (a namespace outside `allowedNamespaces`, a
/// guardrail policy on the reference), whose fixes would contradict its own ("move the grant" when
/// the reference is misspelled). Those are dropped; the `unknown_server` error stays, and they are
/// found again once the reference is fixed. The daemon's `--allowed-namespaces` fence is not
/// a diagnostic of this check and is never dropped.
pub fn one_cause_per_reference(diagnostics: &mut Vec<Diagnostic>) {
    let unknown: std::collections::HashSet<String> =
        diagnostics.iter().filter(|d| d.code == Code::UnknownServer).map(|d| d.object.clone()).collect();
    if unknown.is_empty() {
        return;
    }
    diagnostics.retain(|d| {
        !(matches!(d.code, Code::NamespaceNotAllowed | Code::PolicyViolation)
            && d.path.starts_with("spec.serverRef")
            && unknown.contains(&d.object))
    });
}

fn check_tools(object: &Object, spec: &ServerSpec, diagnostics: &mut Vec<Diagnostic>) {
    for (i, tool) in spec.tools.iter().enumerate() {
        if tool.name.is_empty() || !side_effect(&tool.side_effect).is_empty() && tool.side_effect == side_effect(&tool.side_effect) {
            continue;
        }
        let what = if tool.side_effect.is_empty() {
            "declares no sideEffect".to_string()
        } else {
            format!("has sideEffect {:?}", tool.side_effect)
        };
        let pointer = if tool.side_effect.is_empty() { format!("/spec/tools/{i}") } else { format!("/spec/tools/{i}/sideEffect") };
        // The CRD requires a valid sideEffect, so the server is never stored; were it, every call
        // to the tool would be denied with tool_side_effect_unknown.
        let consequence = "the API server rejects the MCPServer (sideEffect is required: read, write or destructive)";
        diagnostics.push(
            Diagnostic::error(
                Code::ToolSideEffectUnknown,
                &object.origin.file,
                object.pos(&pointer),
                format!("tool {:?} {what}: {consequence}", tool.name),
            )
            .object(&object.id)
            .path(format!("spec.tools[{i}].sideEffect"))
            .hint("set sideEffect to read, write or destructive"),
        );
    }
}

fn check_grant(object: &Object, (server_object, server): (&Object, &ServerSpec), diagnostics: &mut Vec<Diagnostic>) {
    let Some(grant) = object.grant() else { return };
    let allowed: Vec<String> = grant.allowed_side_effects.iter().map(|e| side_effect(e)).collect();
    let push = |diagnostics: &mut Vec<Diagnostic>, d: Diagnostic, path: String| diagnostics.push(d.object(&object.id).path(path));
    for (i, rule) in grant.tool_rules.iter().enumerate() {
        if rule.decision.trim().eq_ignore_ascii_case("deny") {
            continue;
        }
        let pointer = format!("/spec/toolRules/{i}/name");
        match server.tool(&rule.name) {
            None => {
                let known: Vec<&str> = server.tools.iter().map(|t| t.name.as_str()).collect();
                push(
                    diagnostics,
                    Diagnostic::error(
                        Code::ToolSideEffectUnknown,
                        &object.origin.file,
                        object.pos(&pointer),
                        format!(
                            "tool {:?} is not declared by server {}: calls are denied with tool_side_effect_unknown",
                            rule.name, server_object.id.name
                        ),
                    )
                    .hint(format!("declare the tool in the server's metadata, or use one of: {}", known.join(", "))),
                    format!("spec.toolRules[{i}].name"),
                );
            }
            Some(tool) => {
                let effect = side_effect(&tool.side_effect);
                if !effect.is_empty() && !allowed.contains(&effect) {
                    push(
                        diagnostics,
                        Diagnostic::warning(
                            Code::SideEffectNotAllowed,
                            &object.origin.file,
                            object.pos(&pointer),
                            format!("rule allows {:?} ({effect}) but allowedSideEffects does not include {effect}: calls are denied with side_effect_not_allowed", rule.name),
                        )
                        .hint(format!("add {effect} to spec.allowedSideEffects, or remove the rule")),
                        format!("spec.toolRules[{i}].name"),
                    );
                }
            }
        }
    }
    if grant.tool_rules.is_empty() {
        let denied: Vec<String> = server
            .tools
            .iter()
            .filter(|t| {
                let effect = side_effect(&t.side_effect);
                !effect.is_empty() && !allowed.contains(&effect)
            })
            .map(|t| format!("{} ({})", t.name, side_effect(&t.side_effect)))
            .collect();
        if !denied.is_empty() {
            let pointer = "/spec/allowedSideEffects";
            let message = if grant.allowed_side_effects.is_empty() {
                "allowedSideEffects is empty: every call through this grant is denied with side_effect_not_allowed".to_string()
            } else {
                format!("the grant covers every tool, but these are denied with side_effect_not_allowed: {}", denied.join(", "))
            };
            push(
                diagnostics,
                Diagnostic::warning(Code::SideEffectNotAllowed, &object.origin.file, object.pos(pointer), message)
                    .hint("list the side effects the grant is meant to allow, or add toolRules for the tools it should reach"),
                "spec.allowedSideEffects".into(),
            );
        }
    }
    if grant.subject.is_empty() && server.team_id.trim().is_empty() {
        push(
            diagnostics,
            Diagnostic::warning(
                Code::SubjectNeverMatches,
                &object.origin.file,
                object.pos("/spec/subject"),
                format!("grant subject is empty and server {} has no teamID: the gateway never matches it", server_object.id.name),
            )
            .hint("name a humanID, agentID or teamID; an empty subject only works as a team-wide grant on a server with a teamID"),
            "spec.subject".into(),
        );
    }
}

fn check_expiry(object: &Object, expires_at: &str, now: Timestamp, diagnostics: &mut Vec<Diagnostic>) {
    let Ok(expires) = expires_at.parse::<Timestamp>() else { return };
    if now > expires {
        diagnostics.push(
            Diagnostic::warning(
                Code::SessionExpired,
                &object.origin.file,
                object.pos("/spec/expiresAt"),
                format!("session expired at {expires_at}: calls with it get session_expired (or it is ignored when sessions are optional)"),
            )
            .object(&object.id)
            .path("spec.expiresAt")
            .hint("move expiresAt into the future, or delete the session"),
        );
    }
}

fn check_namespace(state: &DesiredState, object: &Object, diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.extend(outside(object, &state.config.allowed_namespaces, "allowedNamespaces of mcp-gitops.yaml"));
}

/// `namespace_not_allowed` for each of `state`'s objects in a namespace (or targeting a server in
/// one) that `allowed` does not list: the fence of whoever runs mcp-gitops (the daemon's
/// `--allowed-namespaces`), which the repository cannot widen. Empty: no fence.
pub fn fence(state: &DesiredState, allowed: &[String]) -> Vec<Diagnostic> {
    state.objects.iter().flat_map(|object| outside(object, allowed, "the daemon's --allowed-namespaces")).collect()
}

/// The namespaces of `object` (its own, its server's) that `allowed` (named by `fence`) does not
/// list; none when `allowed` is empty.
fn outside(object: &Object, allowed: &[String], fence: &str) -> Vec<Diagnostic> {
    if allowed.is_empty() {
        return Vec::new();
    }
    let mut targets = vec![("/metadata/namespace", object.id.namespace.as_str())];
    if let Some(server_ref) = object.grant().map(|g| &g.server_ref).or(object.session().map(|s| &s.server_ref))
        && !server_ref.namespace.trim().is_empty()
    {
        targets.push(("/spec/serverRef/namespace", target_namespace(server_ref, &object.id.namespace)));
    }
    targets
        .into_iter()
        .filter(|(_, namespace)| !allowed.iter().any(|a| a == namespace))
        .map(|(pointer, namespace)| {
            Diagnostic::error(
                Code::NamespaceNotAllowed,
                &object.origin.file,
                object.pos(pointer),
                format!("namespace {namespace} is not in {fence}"),
            )
            .object(&object.id)
            .path(crate::model::object::pointer_to_path(pointer))
            .hint(format!("use one of: {}", allowed.join(", ")))
        })
        .collect()
}

/// `trust_capped`: a session consents to more than any enabled grant matching it allows.
fn check_session_trust(
    sessions: &HashMap<&ObjectId, &Object>,
    server: &ObjectId,
    document: &PolicyDocument,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for session in &document.sessions {
        let identity = Identity {
            human: session.human_id.clone(),
            agent: session.agent_id.clone(),
            team: session.team_id.clone(),
            session: session.name.clone(),
        };
        let ceiling =
            document.grants.iter().filter(|g| !g.disabled && subject_matches(*g, &identity)).map(|g| trust_rank(&g.max_trust)).max();
        let Some(ceiling) = ceiling else { continue };
        let consented = trust_rank(&session.consented_trust);
        if consented <= ceiling {
            continue;
        }
        let id = ObjectId { kind: Kind::Session, namespace: session.namespace.clone(), name: session.name.clone() };
        let Some(object) = sessions.get(&id) else { continue };
        diagnostics.push(
            Diagnostic::warning(
                Code::TrustCapped,
                &object.origin.file,
                object.pos("/spec/consentedTrust"),
                format!(
                    "session consents to {} trust but its grants on {}/{} allow at most {}: effective trust is capped at {}",
                    trust_name(consented),
                    server.namespace,
                    server.name,
                    trust_name(ceiling),
                    trust_name(ceiling)
                ),
            )
            .object(&object.id)
            .path("spec.consentedTrust")
            .hint("lower consentedTrust to what the grants allow, or raise a grant's maxTrust if that is intended"),
        );
    }
}
