//! The signing rules of `trust:` in `mcp-gitops.yaml` (identity binding, scoped signers), read at
//! the trusted base of a range: a commit never judges itself by rules it brings. A signer rule
//! guards files by path, and objects by what they are (namespace, server, kind) wherever they are
//! written: a grant for a guarded namespace put in an unguarded folder is still guarded.

use super::TrustError;
use super::signers::{list_matches, principal_matches};
use crate::model::{IdentityBinding, Kind, ObjectId, Severity, TrustSettings};
use git2::{Oid, Repository};
use globset::{Glob, GlobSet, GlobSetBuilder};
use std::path::Path;

/// What a signer must be beyond holding an allowed key.
#[derive(Debug, Default)]
pub struct Rules {
    pub identity: IdentityBinding,
    pub signers: Vec<SignerScope>,
    /// The text of `mcp-gitops.yaml` the rules were read from: the objects of a commit are loaded
    /// as the repository declares them (its default namespace).
    pub config: String,
    /// Where `mcp-gitops.yaml` sits in the repository (`""` or `"platform/"`): the rules' globs
    /// are relative to it, and files outside it match none.
    pub root: String,
    /// Where the rules were read, for messages (`mcp-gitops.yaml at 1a2b3c4`).
    pub read_at: String,
}

/// A signer whose identity binding fails: the allowed_signers lines of its key do not name the
/// committer's (or author's) email.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the key is allowed for {}, the {role} is {email:?} (trust.identity in {read_at})", .allowed.join(","))]
pub struct IdentityMismatch {
    /// The principals of the lines that hold the key.
    pub allowed: Vec<String>,
    /// `committer` or `author`.
    pub role: &'static str,
    pub email: String,
    /// Where the rules were read (`mcp-gitops.yaml at 1a2b3c4`).
    pub read_at: String,
}

/// Whom a verified signature stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principals {
    /// The principals of the allowed_signers lines that hold the key, one list per line:
    /// patterns the trust file's owner wrote (`*@fernhill.io` is anyone at fernhill.io).
    Patterns(Vec<Vec<String>>),
    /// Names the key or its certificate states (a certificate's principals, an OpenPGP key's
    /// user-ID emails): each stands for itself alone, whatever characters it holds, since
    /// whoever has the certificate issued or makes the key chooses them.
    Names(Vec<String>),
}

impl Principals {
    fn all(&self) -> Vec<String> {
        match self {
            // A negated pattern stands for nobody.
            Principals::Patterns(lines) => lines.iter().flatten().filter(|p| !p.starts_with('!')).cloned().collect(),
            Principals::Names(names) => names.clone(),
        }
    }

    /// Whether they stand for `email`: a pattern matching it, or a name equal to it.
    fn include(&self, email: &str) -> bool {
        match self {
            Principals::Patterns(lines) => lines.iter().any(|patterns| list_matches(patterns, email)),
            Principals::Names(names) => names.iter().any(|name| name == email),
        }
    }
}

/// One rule of `trust.signers`: what it guards, and who may change that.
#[derive(Debug)]
pub struct SignerScope {
    /// `trust.signers[N]`, for messages.
    pub at: String,
    pub paths: GlobSet,
    pub namespaces: GlobSet,
    pub servers: GlobSet,
    pub kinds: Vec<Kind>,
    pub principals: Vec<String>,
}

/// An object a commit adds, changes or removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedObject {
    pub id: ObjectId,
    /// `NAMESPACE/NAME` of the server it is, or targets.
    pub server: Option<String>,
    /// Where it is written (a path in the repository).
    pub file: String,
}

impl SignerScope {
    /// Whether the rule scopes objects at all (else only paths).
    pub fn scopes_objects(&self) -> bool {
        !self.namespaces.is_empty() || !self.servers.is_empty() || !self.kinds.is_empty()
    }

    fn guards(&self, object: &ChangedObject) -> bool {
        let kind = self.kinds.is_empty() || self.kinds.contains(&object.id.kind);
        let anywhere = self.namespaces.is_empty() && self.servers.is_empty();
        let server = object.server.as_deref().is_some_and(|s| self.servers.is_match(s));
        self.scopes_objects() && kind && (anywhere || self.namespaces.is_match(&object.id.namespace) || server)
    }
}

impl Rules {
    /// The rules of `mcp-gitops.yaml` in `root` at `commit` (none when there is no such file).
    /// A file with errors is refused rather than read as no rules: rules must not fail open.
    pub fn at(repo: &Repository, commit: Oid, root: &str) -> Result<Rules, TrustError> {
        let path = format!("{root}{}", crate::load::CONFIG_FILE);
        let read_at = format!("{path} at {}", super::short(commit));
        let git = |source: git2::Error| TrustError::ReadRules { at: read_at.clone(), source };
        let tree = repo.find_commit(commit).and_then(|c| c.tree()).map_err(git)?;
        let Ok(entry) = tree.get_path(Path::new(&path)) else { return Ok(Rules { root: root.to_string(), read_at, ..Rules::default() }) };
        let blob = entry.to_object(repo).and_then(|o| o.peel_to_blob()).map_err(git)?;
        let text = std::str::from_utf8(blob.content()).map_err(|_| TrustError::RulesNotUtf8 { at: read_at.clone() })?;
        let (config, problems) = crate::load::config(text);
        if let Some(problem) = problems.into_iter().find(|d| d.severity == Severity::Error) {
            return Err(TrustError::InvalidRules {
                file: path,
                line: problem.line,
                column: problem.column,
                commit: super::short(commit),
                message: problem.message,
            });
        }
        Ok(Rules { config: text.to_string(), ..Rules::new(&config.trust, root, read_at)? })
    }

    pub fn new(settings: &TrustSettings, root: &str, read_at: String) -> Result<Rules, TrustError> {
        let mut signers = Vec::new();
        for (i, rule) in settings.signers.iter().enumerate() {
            let at = format!("trust.signers[{i}]");
            let set = |globs: &[String]| {
                let mut set = GlobSetBuilder::new();
                for glob in globs {
                    let invalid = |source| TrustError::InvalidGlob { at: read_at.clone(), rule: at.clone(), glob: glob.clone(), source };
                    set.add(Glob::new(glob).map_err(invalid)?);
                }
                set.build().map_err(|source| TrustError::Globs { at: read_at.clone(), rule: at.clone(), source })
            };
            let (paths, namespaces, servers) = (set(&rule.paths)?, set(&rule.namespaces)?, set(&rule.servers)?);
            signers.push(SignerScope { paths, namespaces, servers, kinds: rule.kinds.clone(), principals: rule.principals.clone(), at });
        }
        Ok(Rules { identity: settings.identity, signers, root: root.to_string(), read_at, config: String::new() })
    }

    /// Whether a rule scopes objects: a commit's objects must then be read.
    pub fn scopes_objects(&self) -> bool {
        self.signers.iter().any(SignerScope::scopes_objects)
    }

    /// The principals a signer stands for. Without identity binding, every principal of the
    /// allowed_signers lines that hold the key (or every name of its certificate or OpenPGP
    /// key); with it, the committer's (or author's) email, when a line's pattern matches it or
    /// a name is it.
    pub fn principals(&self, signed: &Principals, committer: &str, author: &str) -> Result<Vec<String>, IdentityMismatch> {
        let (role, email) = match self.identity {
            IdentityBinding::None => return Ok(signed.all()),
            IdentityBinding::Committer => ("committer", committer),
            IdentityBinding::Author => ("author", author),
        };
        if signed.include(email) {
            return Ok(vec![email.to_string()]);
        }
        Err(IdentityMismatch { allowed: signed.all(), role, email: email.to_string(), read_at: self.read_at.clone() })
    }

    /// Why `principals` may not make this change: the first changed file (paths in the
    /// repository), then the first changed object, under a rule that none of them matches.
    pub fn refusal(&self, changed: &[String], objects: &[ChangedObject], principals: &[String]) -> Option<String> {
        let signed = |rule: &SignerScope| principals.iter().any(|p| rule.principals.iter().any(|pattern| principal_matches(pattern, p)));
        let why = |what: String, rule: &SignerScope| {
            let signer = if principals.is_empty() { "nobody".to_string() } else { principals.join(",") };
            format!("{what} may be changed only by {} ({} in {}); signed as {signer}", rule.principals.join(", "), rule.at, self.read_at)
        };
        for file in changed {
            let Some(relative) = file.strip_prefix(&self.root) else { continue };
            if let Some(rule) = self.signers.iter().find(|rule| rule.paths.is_match(relative) && !signed(rule)) {
                return Some(why(file.clone(), rule));
            }
        }
        for object in objects {
            if let Some(rule) = self.signers.iter().find(|rule| rule.guards(object) && !signed(rule)) {
                return Some(why(format!("{} ({})", object.id, object.file), rule));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SignerRule;

    fn rules(identity: IdentityBinding) -> Rules {
        let settings = TrustSettings {
            identity,
            signers: vec![
                SignerRule { paths: vec!["teams/payments/**".into()], principals: vec!["*@fernhill.io".into()], ..SignerRule::default() },
                SignerRule {
                    paths: vec!["mcp-gitops.yaml".into()],
                    principals: vec!["security@fernhill.io".into()],
                    ..SignerRule::default()
                },
            ],
        };
        Rules::new(&settings, "platform/", "mcp-gitops.yaml at 1234567".into()).expect("valid rules")
    }

    #[test]
    fn every_rule_over_a_changed_file_must_be_met() {
        let rules = rules(IdentityBinding::None);
        let dana = ["dana@fernhill.io".to_string()];
        assert_eq!(rules.refusal(&["platform/teams/payments/grants.yaml".into()], &[], &dana), None);
        assert!(rules.refusal(&["platform/mcp-gitops.yaml".into()], &[], &dana).is_some_and(|why| why.contains("security@fernhill.io")));
        let eve = ["eve@evil.io".to_string()];
        let why = rules.refusal(&["platform/other.yaml".into(), "platform/teams/payments/a.yaml".into()], &[], &eve).expect("refused");
        assert!(why.starts_with("platform/teams/payments/a.yaml may be changed only by *@fernhill.io (trust.signers[0]"), "{why}");
        // Outside the directory of mcp-gitops.yaml no rule applies.
        assert_eq!(rules.refusal(&["teams/payments/a.yaml".into()], &[], &eve), None);
    }

    #[test]
    fn an_invalid_glob_names_the_rule_and_the_glob() {
        let settings = TrustSettings {
            signers: vec![SignerRule { paths: vec!["teams/[".into()], principals: vec!["*@fernhill.io".into()], ..SignerRule::default() }],
            ..TrustSettings::default()
        };
        let refused = Rules::new(&settings, "", "mcp-gitops.yaml at 1234567".into()).unwrap_err();
        assert!(matches!(&refused, TrustError::InvalidGlob { rule, glob, .. } if rule == "trust.signers[0]" && glob == "teams/["));
        let text = refused.to_string();
        assert!(text.starts_with("mcp-gitops.yaml at 1234567: trust.signers[0]: \"teams/[\" is not a valid glob: "), "{text}");
    }

    #[test]
    fn identity_binding_takes_the_email_the_key_line_names() {
        let line = ["dana@fernhill.io".to_string(), "*@ops.fernhill.io".to_string()];
        let lines = Principals::Patterns(vec![line.to_vec()]);
        assert_eq!(rules(IdentityBinding::None).principals(&lines, "x@y.io", "").unwrap(), line.to_vec());
        assert_eq!(rules(IdentityBinding::Committer).principals(&lines, "sam@ops.fernhill.io", "").unwrap(), ["sam@ops.fernhill.io"]);
        let mismatch = rules(IdentityBinding::Committer).principals(&lines, "eve@evil.io", "dana@fernhill.io").unwrap_err();
        assert_eq!((mismatch.role, mismatch.email.as_str()), ("committer", "eve@evil.io"));
        assert_eq!(
            mismatch.to_string(),
            "the key is allowed for dana@fernhill.io,*@ops.fernhill.io, the committer is \"eve@evil.io\" (trust.identity in mcp-gitops.yaml at 1234567)"
        );
        assert!(rules(IdentityBinding::Author).principals(&lines, "eve@evil.io", "dana@fernhill.io").is_ok());
    }

    #[test]
    fn a_certificate_or_key_names_its_principals_and_a_name_is_no_pattern() {
        let names = Principals::Names(vec!["*@fernhill.io".to_string(), "dana@fernhill.io".to_string()]);
        let committer = rules(IdentityBinding::Committer);
        assert!(committer.principals(&names, "security@fernhill.io", "").is_err(), "a name with a star is not a pattern");
        assert_eq!(committer.principals(&names, "dana@fernhill.io", "").unwrap(), ["dana@fernhill.io"]);
        assert_eq!(committer.principals(&names, "*@fernhill.io", "").unwrap(), ["*@fernhill.io"]);
        assert_eq!(rules(IdentityBinding::None).principals(&names, "x@y.io", "").unwrap(), ["*@fernhill.io", "dana@fernhill.io"]);
    }
}
