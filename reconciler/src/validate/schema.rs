//! JSON Schema checks: the three kinds against the strict schemas derived from the CRDs, and
//! `.mcp` metadata against `schema/servers.schema.json`.

use crate::load::{Loaded, RawDocument};
use crate::model::object::{pointer_segment, pointer_to_path};
use crate::model::{Code, Diagnostic, Kind, Object};
use crate::schema::{self, schemas};
use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};

pub fn check(loaded: &Loaded, diagnostics: &mut Vec<Diagnostic>) {
    for object in loaded.state.objects.iter().filter(|o| !o.origin.from_metadata) {
        check_object(object, schemas().for_kind(object.id.kind), diagnostics);
    }
    for document in &loaded.metadata {
        check_metadata(document, loaded, diagnostics);
    }
}

fn check_object(object: &Object, validator: &Validator, diagnostics: &mut Vec<Diagnostic>) {
    for error in validator.iter_errors(&object.body) {
        let (pointer, key) = location(&error);
        let pos = if key { object.origin.key_pos(&pointer) } else { object.origin.pos(&pointer) };
        let misplaced = if key { misplaced(object.id.kind, &pointer) } else { None };
        diagnostics.push(
            Diagnostic::error(Code::SchemaViolation, &object.origin.file, pos, message(&error))
                .object(&object.id)
                .path(pointer_to_path(&pointer))
                .hint(misplaced.unwrap_or_else(|| hint(&error, object.id.kind.as_str()))),
        );
    }
}

/// An unknown field at `pointer` that the schema has elsewhere nearby: a level or more up (the
/// line indented too far) or a level down (not indented far enough), said as a hint.
fn misplaced(kind: Kind, pointer: &str) -> Option<String> {
    let (parent, name) = pointer.rsplit_once('/')?;
    let mut up = parent;
    let mut levels = 0;
    while let Some((above, _)) = up.rsplit_once('/') {
        (up, levels) = (above, levels + 1);
        let meant = format!("{up}/{name}");
        if schema::field(kind, &meant).is_some() {
            let how_far = if levels == 1 { "one level up".to_string() } else { format!("{levels} levels up") };
            return Some(format!(
                "did you mean {}? it is {how_far}: indent this line as far as the fields of {}",
                pointer_to_path(&meant),
                if up.is_empty() { "the object".to_string() } else { pointer_to_path(up) }
            ));
        }
    }
    let fields = schema::field(kind, parent)?["properties"].as_object()?;
    let meant = fields
        .keys()
        .map(|child| format!("{parent}/{}/{name}", pointer_segment(child)))
        .find(|meant| schema::field(kind, meant).is_some())?;
    Some(format!(
        "did you mean {}? it is one level down: indent this line under {}",
        pointer_to_path(&meant),
        pointer_to_path(meant.rsplit_once('/')?.0)
    ))
}

fn check_metadata(document: &RawDocument, loaded: &Loaded, diagnostics: &mut Vec<Diagnostic>) {
    for error in schemas().metadata.iter_errors(&document.value) {
        let (pointer, key) = location(&error);
        let spans = if key { &document.spans.keys } else { &document.spans.values };
        let pos = nearest(&pointer, spans).or_else(|| nearest(&pointer, &document.spans.values)).unwrap_or_default();
        let server =
            loaded.state.objects.iter().find(|o| {
                o.origin.from_metadata && o.origin.file == document.file && pointer.starts_with(&format!("{}/", o.origin.prefix))
            });
        let mut diagnostic = Diagnostic::error(Code::SchemaViolation, &document.file, pos, message(&error))
            .path(pointer_to_path(&pointer))
            .hint(hint(&error, "server metadata"));
        if let Some(server) = server {
            diagnostic = diagnostic.object(&server.id);
        }
        diagnostics.push(diagnostic);
    }
}

fn nearest(pointer: &str, map: &std::collections::HashMap<String, crate::model::Pos>) -> Option<crate::model::Pos> {
    let mut current = pointer.to_string();
    loop {
        if let Some(pos) = map.get(&current) {
            return Some(*pos);
        }
        current.truncate(current.rfind('/')?);
    }
}

/// The pointer to report and whether it names a key (an unexpected property) rather than a value.
fn location(error: &ValidationError) -> (String, bool) {
    let pointer = error.instance_path().as_str().to_string();
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } if unexpected.len() == 1 => {
            (format!("{pointer}/{}", crate::model::object::pointer_segment(&unexpected[0])), true)
        }
        // A missing field is reported at the key of the object that lacks it.
        ValidationErrorKind::Required { .. } => (pointer, true),
        _ => (pointer, false),
    }
}

fn message(error: &ValidationError) -> String {
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            format!(
                "unknown field{} {}",
                if unexpected.len() == 1 { "" } else { "s" },
                unexpected.iter().map(|u| format!("{u:?}")).collect::<Vec<_>>().join(", ")
            )
        }
        ValidationErrorKind::Required { property } => format!("missing required field {property}"),
        _ => error.to_string(),
    }
}

fn hint(error: &ValidationError, what: &str) -> String {
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { .. } => {
            format!("check the spelling against the {what} schema; the API server would reject or silently drop this field")
        }
        ValidationErrorKind::Enum { options } => format!("use one of {options} (values are case-sensitive)"),
        ValidationErrorKind::Type { .. } => "quote strings and leave numbers and booleans unquoted".into(),
        ValidationErrorKind::Required { .. } => format!("add the field; see the {what} schema in schema/"),
        ValidationErrorKind::Format { format } if format == "date-time" => "write an RFC 3339 time, e.g. \"2030-01-01T00:00:00Z\"".into(),
        _ => format!("see the {what} schema in schema/"),
    }
}
