//! One cluster's slice of a repository (`clusters:` in `mcp-gitops.yaml`, docs/fleet.md): which
//! files apply to it, and the configuration it sees (its `clusterName` and default namespace).
//! Takes the repository's configuration, gives back what to load; reads nothing.

use super::{Loaded, RawDocument};
use crate::model::{CONFIG_FILE, Code, DesiredState, Diagnostic, Pos, RepoConfig, spelling};
use globset::{Glob, GlobSet, GlobSetBuilder};
use std::collections::{BTreeMap, HashSet};

/// The files of one cluster's slice.
pub enum Slice {
    /// Every file: no `paths:`.
    Every,
    /// The files that match one of the cluster's `paths`.
    Matching(GlobSet),
    /// None: the cluster named is not in `clusters:` (an error says so).
    Nothing,
}

impl Slice {
    /// Whether the file `path` applies to the cluster; `mcp-gitops.yaml` always does.
    pub fn holds(&self, path: &str) -> bool {
        match self {
            Slice::Every => true,
            Slice::Matching(globs) => path == CONFIG_FILE || globs.is_match(path),
            Slice::Nothing => path == CONFIG_FILE,
        }
    }
}

/// The slice of the cluster `name`, with `config` made what that cluster sees: its `clusterName`
/// (default: its name) and default namespace (default: the top-level one). A name that is not
/// in `clusters:` is an error, with the closest name when one is near.
pub fn select(config: &mut RepoConfig, name: &str, diagnostics: &mut Vec<Diagnostic>) -> Slice {
    let Some(cluster) = config.cluster(name).cloned() else {
        diagnostics.push(unknown(config, name));
        return Slice::Nothing;
    };
    config.cluster_name = Some(cluster.cluster_name.unwrap_or_else(|| cluster.name.clone()));
    // The approval rules for this cluster become rules for every change of its slice; those for others go.
    config.owners.approvals.retain_mut(|rule| {
        let applies =
            rule.clusters.is_empty() || rule.clusters.iter().any(|glob| Glob::new(glob).is_ok_and(|g| g.compile_matcher().is_match(name)));
        rule.clusters.clear();
        applies
    });
    if cluster.default_namespace.is_some() {
        config.default_namespace = cluster.default_namespace;
    }
    if cluster.paths.is_empty() {
        return Slice::Every;
    }
    let mut builder = GlobSetBuilder::new();
    // A glob that does not compile is reported by `check` and matches nothing here.
    cluster.paths.iter().filter_map(|glob| Glob::new(glob).ok()).for_each(|glob| {
        builder.add(glob);
    });
    builder.build().map_or(Slice::Nothing, Slice::Matching)
}

/// The error for a cluster `name` that `clusters:` does not declare.
pub fn unknown(config: &RepoConfig, name: &str) -> Diagnostic {
    let names = || config.clusters.iter().map(|c| c.name.as_str());
    let (message, hint) = match config.clusters.is_empty() {
        true => (
            format!("no cluster named {name:?}: mcp-gitops.yaml declares no clusters"),
            "add clusters: to mcp-gitops.yaml (docs/fleet.md), or leave out --cluster".to_string(),
        ),
        false => (
            format!("no cluster named {name:?} in clusters:{}", spelling::did_you_mean(name, names())),
            format!("the clusters are {}", names().collect::<Vec<_>>().join(", ")),
        ),
    };
    Diagnostic::error(Code::SchemaViolation, CONFIG_FILE, Pos { line: 1, column: 1 }, message).path("clusters").hint(hint)
}

/// What the schema cannot say of `clusters:`: names are unique, and `paths` are globs.
pub fn check(config: &RepoConfig, position: impl Fn(&str) -> Option<Pos>) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    for (i, cluster) in config.clusters.iter().enumerate() {
        if !seen.insert(cluster.name.as_str()) {
            let pos = position(&format!("/clusters/{i}/name")).unwrap_or_default();
            found.push(
                Diagnostic::error(Code::SchemaViolation, CONFIG_FILE, pos, format!("cluster {:?} is declared twice", cluster.name))
                    .path(format!("clusters[{i}].name"))
                    .hint("give each cluster its own name; the first one declared applies"),
            );
        }
        for (j, glob) in cluster.paths.iter().enumerate() {
            if let Err(e) = Glob::new(glob) {
                let pos = position(&format!("/clusters/{i}/paths/{j}")).unwrap_or_default();
                found.push(
                    Diagnostic::error(Code::SchemaViolation, CONFIG_FILE, pos, format!("path pattern {glob:?} is not a valid glob: {e}"))
                        .path(format!("clusters[{i}].paths[{j}]"))
                        .hint("use globs such as \"base/**\" or \"clusters/prod/**\""),
                );
            }
        }
    }
    found
}

/// The slice of the cluster `name` taken from `whole`, the repository loaded without a cluster:
/// what loading the snapshot with `cluster: name` makes, without parsing a file again. `None`
/// when the cluster has a default namespace of its own (a document without one becomes another
/// object there: load the snapshot again).
pub fn of(whole: &Loaded, name: &str) -> Option<Loaded> {
    let mut config = whole.state.config.clone();
    let mut diagnostics = Vec::new();
    let slice = select(&mut config, name, &mut diagnostics);
    if config.default_namespace() != whole.state.config.default_namespace() {
        return None;
    }
    let documents = |documents: &[RawDocument]| documents.iter().filter(|d| slice.holds(&d.file)).cloned().collect();
    diagnostics.extend(whole.state.diagnostics.iter().filter(|d| d.file == CONFIG_FILE || slice.holds(&d.file)).cloned());
    let state = DesiredState {
        source: whole.state.source.clone(),
        revision: whole.state.revision.clone(),
        config,
        objects: whole.state.objects.iter().filter(|o| slice.holds(&o.origin.file)).cloned().collect(),
        sources: whole.state.sources.iter().filter(|(path, _)| slice.holds(path)).map(|(p, t)| (p.clone(), t.clone())).collect(),
        diagnostics,
    };
    Some(Loaded {
        state,
        metadata: documents(&whole.metadata),
        others: documents(&whole.others),
        policies: documents(&whole.policies),
        keys: whole.keys.iter().filter(|(path, _)| slice.holds(path)).map(|(p, k)| (p.clone(), *k)).collect(),
    })
}

/// What no cluster sees in `whole`, the repository loaded without a cluster: a
/// `file_in_no_cluster` warning for each file that declares objects, servers or policies that no
/// cluster's `paths` take (a folder misspelt in `paths:` leaves its grants applied nowhere), and
/// the problems loading found in the files no cluster takes, which no cluster's validation reports.
/// Empty without `clusters:`.
pub fn outside(whole: &Loaded) -> Vec<Diagnostic> {
    let slices: Vec<Slice> =
        names(&whole.state.config).iter().map(|name| select(&mut whole.state.config.clone(), name, &mut Vec::new())).collect();
    let taken = |file: &str| slices.is_empty() || slices.iter().any(|slice| slice.holds(file));
    let mut declared: BTreeMap<&str, usize> = BTreeMap::new();
    let files = whole.state.objects.iter().map(|o| o.origin.file.as_str());
    let documents = whole.metadata.iter().chain(&whole.policies).map(|d| d.file.as_str());
    for file in files.chain(documents).filter(|file| !taken(file)) {
        *declared.entry(file).or_default() += 1;
    }
    let mut found: Vec<Diagnostic> = whole.state.diagnostics.iter().filter(|d| !taken(&d.file)).cloned().collect();
    found.extend(declared.into_iter().map(|(file, count)| {
        let message = format!("{file} declares {count} document(s) that no cluster applies: no cluster's paths: take this file");
        Diagnostic::warning(Code::FileInNoCluster, file, Pos { line: 1, column: 1 }, message)
            .hint("add a glob that takes it to a cluster's paths: in mcp-gitops.yaml, or move the file to a folder a cluster takes")
    }));
    found
}

/// The names of the clusters `clusters:` declares, each once, in order.
pub fn names(config: &RepoConfig) -> Vec<String> {
    let mut seen = HashSet::new();
    config.clusters.iter().filter(|c| seen.insert(c.name.as_str())).map(|c| c.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use crate::model::Code;
    use crate::source::{Snapshot, SourceFile};

    const CONFIG: &str = "defaultNamespace: team\nclusters:\n  - name: dev\n    paths: [base/**, dev/**]\n  - name: prod\n    paths: [base/**, prod/**]\n    clusterName: prod-eu-1\n    defaultNamespace: team-prod\n";

    fn repository(cluster: Option<&str>, config: &str) -> Snapshot {
        let grant =
            |name: &str| format!("kind: MCPAccessGrant\napiVersion: mcpruntime.org/v1alpha1\nmetadata: {{name: {name}}}\nspec: {{}}\n");
        let files =
            [("mcp-gitops.yaml", config.to_string()), ("base/a.yaml", grant("a")), ("dev/d.yaml", grant("d")), ("prod/p.yaml", grant("p"))];
        Snapshot {
            files: files.into_iter().map(|(path, text)| SourceFile { path: path.into(), bytes: text.into_bytes() }).collect(),
            cluster: cluster.map(str::to_string),
            ..Snapshot::default()
        }
    }

    fn ids(cluster: Option<&str>) -> Vec<String> {
        crate::load::load(repository(cluster, CONFIG)).state.objects.iter().map(|o| o.id.to_string()).collect()
    }

    #[test]
    fn a_cluster_loads_its_paths_with_its_own_defaults() {
        assert_eq!(ids(None), ["MCPAccessGrant/team/a", "MCPAccessGrant/team/d", "MCPAccessGrant/team/p"]);
        assert_eq!(ids(Some("dev")), ["MCPAccessGrant/team/a", "MCPAccessGrant/team/d"]);
        assert_eq!(ids(Some("prod")), ["MCPAccessGrant/team-prod/a", "MCPAccessGrant/team-prod/p"]);
        let prod = crate::load::load(repository(Some("prod"), CONFIG)).state;
        assert_eq!(prod.config.cluster_name(), "prod-eu-1");
        assert_eq!(crate::load::load(repository(Some("dev"), CONFIG)).state.config.cluster_name(), "dev");
    }

    #[test]
    fn a_slice_taken_from_the_whole_repository_is_the_slice_loaded() {
        let whole = crate::load::load(repository(None, CONFIG));
        let taken = super::of(&whole, "dev").map(|loaded| format!("{:?}", (loaded.state.objects, loaded.state.config)));
        let loaded = crate::load::load(repository(Some("dev"), CONFIG)).state;
        assert_eq!(taken, Some(format!("{:?}", (loaded.objects, loaded.config))));
        assert!(super::of(&whole, "prod").is_none(), "prod has a default namespace of its own");
    }

    #[test]
    fn an_unknown_cluster_is_an_error_with_the_closest_name() {
        let state = crate::load::load(repository(Some("prd"), CONFIG)).state;
        assert!(state.objects.is_empty());
        let found: Vec<(Code, &str, &str)> = state.diagnostics.iter().map(|d| (d.code, d.file.as_str(), d.message.as_str())).collect();
        assert_eq!(found, [(Code::SchemaViolation, "mcp-gitops.yaml", "no cluster named \"prd\" in clusters:; did you mean prod?")]);
    }

    #[test]
    fn names_are_unique_labels_and_paths_are_globs() {
        let found = |config: &str| -> Vec<(usize, usize, String)> {
            let state = crate::load::load(repository(None, config)).state;
            state.diagnostics.iter().map(|d| (d.line, d.column, d.path.clone())).collect()
        };
        let twice = "clusters:\n  - name: dev\n  - name: dev\n    paths: ['a/{b']\n";
        assert_eq!(found(twice), [(3, 11, "clusters[1].name".into()), (4, 13, "clusters[1].paths[0]".into())]);
        assert_eq!(found("clusters:\n  - name: Prod_1\n"), [(2, 11, "clusters[0].name".into())]);
    }
}
