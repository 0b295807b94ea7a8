//! The JSON Schemas every file is checked against, compiled once.
//!
//! The three kinds' schemas are derived from the CRD manifests in `schema/crds/` (the source of
//! truth, identical to mcp-runtime's), made strict: `additionalProperties: false` wherever the CRD
//! lists properties, because the 1.20 API server answers an unknown field in a server-side apply
//! with HTTP 500. `schema/kinds/*.schema.json` are these derived schemas written out for editors;
//! a test keeps them in step.

use crate::model::Kind;
use jsonschema::{Draft, Validator};
use serde_json::{Value, json};
use std::sync::OnceLock;

const SERVER_CRD: &str = include_str!("../../schema/crds/mcpruntime.org_mcpservers.yaml");
const GRANT_CRD: &str = include_str!("../../schema/crds/mcpruntime.org_mcpaccessgrants.yaml");
const SESSION_CRD: &str = include_str!("../../schema/crds/mcpruntime.org_mcpagentsessions.yaml");
const METADATA_SCHEMA: &str = include_str!("../../schema/servers.schema.json");
const CONFIG_SCHEMA: &str = include_str!("../../schema/mcp-gitops.schema.json");
const POLICY_SCHEMA: &str = include_str!("../../schema/policy.schema.json");

pub struct Schemas {
    pub server: Validator,
    pub grant: Validator,
    pub session: Validator,
    pub metadata: Validator,
    pub config: Validator,
    pub policy: Validator,
}

impl Schemas {
    pub fn for_kind(&self, kind: Kind) -> &Validator {
        match kind {
            Kind::Server => &self.server,
            Kind::Grant => &self.grant,
            Kind::Session => &self.session,
        }
    }
}

/// The compiled schemas. They are embedded in the binary, so failing to compile them is a bug.
pub fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| Schemas {
        server: compile(&kind_schema(Kind::Server)),
        grant: compile(&kind_schema(Kind::Grant)),
        session: compile(&kind_schema(Kind::Session)),
        metadata: compile(&embedded_json(METADATA_SCHEMA)),
        config: compile(&embedded_json(CONFIG_SCHEMA)),
        policy: compile(&embedded_json(POLICY_SCHEMA)),
    })
}

#[allow(clippy::expect_used)] // embedded at build time and covered by tests
fn compile(schema: &Value) -> Validator {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .should_ignore_unknown_formats(true)
        .build(schema)
        .expect("embedded schema compiles")
}

#[allow(clippy::expect_used)]
fn embedded_json(text: &str) -> Value {
    serde_json::from_str(text).expect("embedded schema is JSON")
}

/// The schema of the field at `pointer` (`/spec/maxTrust`; array indexes step into items) in
/// the schema of `kind`, if it has that field: what a misplaced field could have meant.
pub fn field(kind: Kind, pointer: &str) -> Option<&'static Value> {
    static KINDS: OnceLock<[Value; 3]> = OnceLock::new();
    let kinds = KINDS.get_or_init(|| [kind_schema(Kind::Server), kind_schema(Kind::Grant), kind_schema(Kind::Session)]);
    let mut node = &kinds[match kind {
        Kind::Server => 0,
        Kind::Grant => 1,
        Kind::Session => 2,
    }];
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        let item = node.get("items").filter(|_| segment.parse::<usize>().is_ok());
        node = node["properties"].get(&segment).or(item)?;
    }
    Some(node)
}

/// The CRD manifest of a kind, as JSON.
#[allow(clippy::expect_used)]
pub fn crd(kind: Kind) -> Value {
    let text = match kind {
        Kind::Server => SERVER_CRD,
        Kind::Grant => GRANT_CRD,
        Kind::Session => SESSION_CRD,
    };
    // Our own text, compiled in: read with the plain deserializer, not the loader of repositories.
    serde_saphyr::from_str(text).expect("embedded CRD parses")
}

/// The strict JSON Schema of one kind, derived from its CRD.
pub fn kind_schema(kind: Kind) -> Value {
    let mut schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
    close_objects(&mut schema);
    schema["properties"]["apiVersion"] = json!({"const": crate::model::object::API_VERSION});
    schema["properties"]["kind"] = json!({"const": kind.as_str()});
    schema["properties"]["metadata"] = json!({
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 253,
                     "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
            "namespace": {"type": "string", "minLength": 1, "maxLength": 63,
                          "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}}
        }
    });
    schema["required"] = json!(["apiVersion", "kind", "metadata", "spec"]);
    let mut root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("https://mcpruntime.org/schemas/mcp-gitops/kinds/{}.schema.json", kind.as_str()),
        "title": kind.as_str(),
    });
    if let (Value::Object(root_map), Value::Object(schema_map)) = (&mut root, schema) {
        root_map.extend(schema_map);
    }
    root
}

/// Adds `additionalProperties: false` to every object schema that lists its properties.
fn close_objects(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    let preserves = map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if map.contains_key("properties") && !map.contains_key("additionalProperties") && !preserves {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    for key in ["properties"] {
        if let Some(Value::Object(props)) = map.get_mut(key) {
            props.values_mut().for_each(close_objects);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = map.get_mut(key) {
            close_objects(child);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `schema/kinds/` holds the derived schemas for editors; regenerate with
    /// `UPDATE_SCHEMAS=1 cargo test -p mcp-gitops schema`.
    #[test]
    fn kind_schema_files_match_the_crds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/kinds");
        for kind in Kind::ALL {
            let path = dir.join(format!("{}.schema.json", kind.as_str()));
            let expected = format!("{}\n", serde_json::to_string_pretty(&kind_schema(kind)).unwrap_or_default());
            if std::env::var_os("UPDATE_SCHEMAS").is_some() {
                std::fs::create_dir_all(&dir).ok();
                std::fs::write(&path, &expected).ok();
            }
            let actual = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(actual == expected, "{} is stale: run UPDATE_SCHEMAS=1 cargo test", path.display());
        }
    }

    #[test]
    fn schemas_compile_and_reject_unknown_fields() {
        let grant = json!({"apiVersion": "mcpruntime.org/v1alpha1", "kind": "MCPAccessGrant",
            "metadata": {"name": "g", "namespace": "ns"},
            "spec": {"serverRef": {"name": "s"}, "subject": {"humanID": "h"}, "bogus": 1}});
        let errors: Vec<_> = schemas().grant.iter_errors(&grant).map(|e| e.instance_path().as_str().to_string()).collect();
        assert_eq!(errors, vec!["/spec".to_string()]);
    }
}
