//! `trust_scoped_by_path`: a `trust.signers` rule that guards folders by path alone while those
//! folders declare objects. Objects are found by content anywhere in the tree, so the same grant
//! written in another folder needs none of the rule's signers: the rule can be walked around.

use crate::load::CONFIG_FILE;
use crate::model::{Code, DesiredState, Diagnostic, Pos};
use globset::{Glob, GlobSetBuilder};
use std::collections::BTreeSet;

pub fn check(state: &DesiredState, diagnostics: &mut Vec<Diagnostic>) {
    for (i, rule) in state.config.trust.signers.iter().enumerate() {
        if rule.paths.is_empty() || !rule.namespaces.is_empty() || !rule.servers.is_empty() || !rule.kinds.is_empty() {
            continue;
        }
        // An invalid glob is the schema's and the verifier's to report.
        let mut globs = GlobSetBuilder::new();
        rule.paths.iter().filter_map(|glob| Glob::new(glob).ok()).for_each(|glob| {
            globs.add(glob);
        });
        let Ok(globs) = globs.build() else { continue };
        let namespaces: BTreeSet<&str> =
            state.objects.iter().filter(|o| globs.is_match(&o.origin.file)).map(|o| o.id.namespace.as_str()).collect();
        if namespaces.is_empty() {
            continue;
        }
        let namespaces: Vec<&str> = namespaces.into_iter().collect();
        diagnostics.push(
            Diagnostic::warning(
                Code::TrustScopedByPath,
                CONFIG_FILE,
                Pos { line: 1, column: 1 },
                format!(
                    "trust.signers[{i}] guards {} by path only, and files there declare objects of {}: the same objects written in another folder need none of its signers",
                    rule.paths.join(", "),
                    namespaces.join(", ")
                ),
            )
            .path(format!("trust.signers[{i}]"))
            .hint(format!("add namespaces: [{}] to the rule, so that these objects are guarded wherever they are written", namespaces.join(", "))),
        );
    }
}
