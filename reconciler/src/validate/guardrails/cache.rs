//! What the guardrails remember so as not to work twice: the cache key of what the policies
//! that read neither `now` nor `servers` (the cacheable ones) find on an object, so that an
//! unchanged object is not evaluated again by them; and, within a run, the regexes that CEL's
//! `matches` compiles. Takes the policies, the objects and the `servers` index; gives back one key
//! per object. Reads and writes no cache entry itself (`check` does).

use super::{Part, Policy, server_key};
use crate::cache::{Key, Pack};
use crate::load::Loaded;
use crate::model::Object;
use kube_cel::cel;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The cache key of what the cacheable policies find on each object: the policies (all of them:
/// an index names one), the object's file (path and text), where it starts there, the default
/// namespace (which a document without one takes) and its server's index entry. None with the
/// cache off or no cacheable policy.
pub(super) fn cache_keys(
    loaded: &Loaded,
    policies: &[Policy],
    servers: &Map<String, Value>,
    objects: &[&Object],
    cache: &Pack,
) -> Vec<Option<Key>> {
    if !cache.is_on() || !policies.iter().any(|p| p.cacheable) {
        return vec![None; objects.len()];
    }
    let described: Vec<String> = policies
        .iter()
        .map(|p| {
            let message: Vec<(bool, &str)> = p
                .message
                .iter()
                .map(|part| match part {
                    Part::Text(text) => (false, text.as_str()),
                    Part::Expression(_, source) => (true, source.as_str()),
                })
                .collect();
            format!(
                "{:?}",
                (
                    &p.name,
                    &p.kinds,
                    &p.expression,
                    &p.expression_pos,
                    message,
                    p.severity,
                    &p.field,
                    &p.params,
                    &p.file,
                    &p.pos,
                    p.cacheable
                )
            )
        })
        .collect();
    // Hashed once: the policies' text is kilobytes, and there is a key per object.
    let policies = Key::of(&[described.join("\n").as_bytes()]).bytes();
    let namespace = loaded.state.config.default_namespace();
    let entries: HashMap<&str, Vec<u8>> =
        servers.iter().filter_map(|(key, entry)| Some((key.as_str(), serde_json::to_vec(entry).ok()?))).collect();
    crate::parallel::ordered_map(objects, 1024, |object| {
        let file = loaded.keys.get(&object.origin.file)?;
        let server = entries.get(server_key(object).as_str()).map_or(&b"null"[..], Vec::as_slice);
        Some(Key::of(&[
            b"findings",
            &policies,
            &file.bytes(),
            &object.origin.line.to_le_bytes(),
            object.origin.prefix.as_bytes(),
            namespace.as_bytes(),
            server,
        ]))
    })
}

/// CEL's `matches`, with each pattern compiled once rather than on every call (the same regex
/// crate and the same error text as the built-in one; compiling was 5% of a validate).
pub(super) fn matches_with_cache()
-> impl Fn(&cel::FunctionContext, cel::extractors::This<Arc<String>>, Arc<String>) -> Result<bool, cel::ExecutionError> + Send + Sync + 'static
{
    let compiled: Mutex<HashMap<String, Result<regex::Regex, String>>> = Mutex::default();
    move |ftx: &cel::FunctionContext, cel::extractors::This(text): cel::extractors::This<Arc<String>>, pattern: Arc<String>| {
        let regex = {
            let mut compiled = compiled.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            compiled.entry(pattern.to_string()).or_insert_with(|| regex::Regex::new(&pattern).map_err(|e| e.to_string())).clone()
        };
        match regex {
            Ok(regex) => Ok(regex.is_match(&text)),
            Err(error) => Err(ftx.error(format!("'{pattern}' not a valid regex:\n{error}"))),
        }
    }
}
