//! Object identity: the same object declared twice, and grant or session names that collide
//! across namespaces on one server (the operator's render then fails, DOMAIN.md P10/P12).

use crate::model::{Code, DesiredState, Diagnostic, Kind, Object, ObjectId};
use std::collections::HashMap;

pub fn check(state: &DesiredState, diagnostics: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&ObjectId, &Object> = HashMap::new();
    for object in state.objects.iter().filter(|o| !o.id.name.is_empty()) {
        match seen.get(&object.id) {
            Some(first) => diagnostics.push(
                Diagnostic::error(
                    Code::DuplicateObject,
                    &object.origin.file,
                    object.pos("/metadata/name"),
                    format!("{} is declared twice (first in {}:{})", object.id, first.origin.file, first.pos("/metadata/name").line),
                )
                .object(&object.id)
                .path("metadata.name")
                .hint("keep one declaration; the later one would silently overwrite the first"),
            ),
            None => {
                seen.insert(&object.id, object);
            }
        }
    }

    // (kind, server namespace, server name, object name) -> first object with that name.
    let mut names: HashMap<(Kind, &str, &str, &str), &Object> = HashMap::new();
    for object in state.objects.iter().filter(|o| !o.id.name.is_empty()) {
        let Some((namespace, server)) = crate::gateway::render::targets(object) else { continue };
        let key = (object.id.kind, namespace, server, object.id.name.as_str());
        match names.get(&key) {
            Some(first) if first.id.namespace != object.id.namespace => {
                let what = if object.id.kind == Kind::Grant { "grant" } else { "session" };
                diagnostics.push(
                    Diagnostic::error(
                        Code::DuplicateNameForServer,
                        &object.origin.file,
                        object.pos("/metadata/name"),
                        format!(
                            "{what} name {:?} is also used by {} ({}) for server {}/{}: the operator refuses to render the policy and the server goes to Error",
                            object.id.name, first.id, first.origin.file, key.1, key.2
                        ),
                    )
                    .object(&object.id)
                    .path("metadata.name")
                    .hint(format!("give one of the two {what}s another name; policy names must be unique per server, whatever their namespace")),
                );
            }
            Some(_) => {}
            None => {
                names.insert(key, object);
            }
        }
    }
}
