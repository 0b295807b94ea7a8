//! The CycloneDX SBOM (spec 1.5, JSON) of the crates in the mcp-gitops binary: the package and
//! what its normal dependencies reach for the target, from cargo metadata's resolve. Build
//! dependencies and dev-dependencies are not in the binary, nor are proc-macros (they run in the
//! compiler) and what only they depend on. Each crate has its purl (`pkg:cargo/NAME@VERSION`),
//! its licence expression and, for registry crates, Cargo.lock's SHA-256 of the downloaded crate.
//!
//! cargo metadata resolves features for the whole workspace, dev-dependencies included (a test's
//! reqwest feature brings quinn, rmcp's test server schemars): what `cargo build -p mcp-gitops`
//! leaves out is dropped by `cargo tree`, which resolves features as that build does.

use anyhow::{Context, anyhow, bail};
use cargo_metadata::{DependencyKind, Metadata, Package, PackageId};
use cyclonedx_bom::models::bom::{Bom, SpecVersion};
use cyclonedx_bom::models::component::{Classification, Component, Components};
use cyclonedx_bom::models::dependency::{Dependencies, Dependency};
use cyclonedx_bom::models::hash::{Hash, HashAlgorithm, HashValue, Hashes};
use cyclonedx_bom::models::license::{LicenseChoice, Licenses};
use cyclonedx_bom::models::metadata::Metadata as BomMetadata;
use cyclonedx_bom::models::property::{Properties, Property};
use cyclonedx_bom::models::tool::{Tool, Tools};
use cyclonedx_bom::prelude::{NormalizedString, Purl, SpdxExpression, Validate};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The SBOM as JSON. `metadata` must come from `cargo metadata --filter-platform TARGET`, so that
/// the resolve holds only the dependencies of that target; `checksums` maps `name@version` to
/// Cargo.lock's checksum.
pub fn json(metadata: &Metadata, root: &Package, target: &str, checksums: &HashMap<String, String>) -> anyhow::Result<Vec<u8>> {
    let built = built_crates(metadata, root, target)?;
    let (packages, edges) = crates_in_binary(metadata, &root.id, &built)?;
    let to_component = |package: &Package, classification| component(package, classification, checksums);
    let bom = Bom {
        spec_version: SpecVersion::V1_5,
        metadata: Some(BomMetadata {
            tools: Some(Tools::List(vec![Tool::new("mcp-gitops", "cargo xtask dist", env!("CARGO_PKG_VERSION"))])),
            component: Some(to_component(root, Classification::Application)?),
            properties: Some(Properties(vec![Property::new("cdx:rust:target", target)])),
            ..BomMetadata::new()?
        }),
        components: Some(Components(
            packages
                .values()
                .filter(|p| p.id != root.id)
                .map(|p| to_component(p, Classification::Library))
                .collect::<anyhow::Result<_>>()?,
        )),
        dependencies: Some(Dependencies(
            edges
                .iter()
                .map(|(from, to)| Dependency {
                    dependency_ref: purl_text(packages[from]),
                    dependencies: to.iter().map(|id| purl_text(packages[id])).collect(),
                })
                .collect(),
        )),
        ..Bom::default()
    };
    let validation = bom.validate_version(SpecVersion::V1_5);
    if validation.has_errors() {
        return Err(anyhow!("the SBOM does not validate as CycloneDX 1.5: {validation:?}"));
    }
    let mut out = Vec::new();
    bom.output_as_json_v1_5(&mut out).context("cannot serialize the SBOM")?;
    Ok(out)
}

/// The packages linked into the binary of `root` (itself included), sorted by name and version,
/// and each one's dependencies among them.
type Crates<'m> = (BTreeMap<&'m PackageId, &'m Package>, BTreeMap<&'m PackageId, BTreeSet<&'m PackageId>>);

fn crates_in_binary<'m>(metadata: &'m Metadata, root: &'m PackageId, built: &HashSet<String>) -> anyhow::Result<Crates<'m>> {
    let resolve = metadata.resolve.as_ref().context("cargo metadata gave no resolve")?;
    let nodes: HashMap<_, _> = resolve.nodes.iter().map(|node| (&node.id, node)).collect();
    let linked = |id: &PackageId| {
        let package = &metadata[id];
        built.contains(&format!("{} v{}", package.name, package.version)) && !package.targets.iter().any(|t| t.is_proc_macro())
    };
    let mut packages = BTreeMap::new();
    let mut edges = BTreeMap::new();
    let mut todo = vec![root];
    while let Some(id) = todo.pop() {
        if packages.insert(id, &metadata[id]).is_some() {
            continue;
        }
        let node = nodes.get(id).with_context(|| format!("{id} is not in cargo metadata's resolve"))?;
        let deps: BTreeSet<_> = node
            .deps
            .iter()
            .filter(|dep| dep.dep_kinds.iter().any(|k| k.kind == DependencyKind::Normal) && linked(&dep.pkg))
            .map(|dep| &dep.pkg)
            .collect();
        todo.extend(deps.iter().copied());
        edges.insert(id, deps);
    }
    Ok((packages, edges))
}

fn component(package: &Package, classification: Classification, checksums: &HashMap<String, String>) -> anyhow::Result<Component> {
    let purl = purl_text(package);
    let mut component = Component::new(classification, &package.name, &package.version.to_string(), Some(purl.clone()));
    component.purl = Some(Purl::new("cargo", &package.name, &package.version.to_string()).with_context(|| format!("no purl for {purl}"))?);
    component.description = package.description.as_deref().map(NormalizedString::new);
    // Crates that write `MIT/Apache-2.0` mean `MIT OR Apache-2.0` (SPDX's lax form); a licence
    // that is no SPDX expression at all is kept as a name.
    component.licenses = package.license.as_ref().map(|license| {
        Licenses(vec![match SpdxExpression::parse_lax(license.clone()) {
            Ok(expression) => LicenseChoice::Expression(expression),
            Err(_) => LicenseChoice::license(license),
        }])
    });
    component.hashes = checksums
        .get(&format!("{}@{}", package.name, package.version))
        .map(|sha256| Hashes(vec![Hash { alg: HashAlgorithm::SHA_256, content: HashValue(sha256.clone()) }]));
    Ok(component)
}

/// `NAME vVERSION` of every crate `cargo build -p mcp-gitops` compiles for `target` through
/// normal dependencies (proc-macros and their dependencies included; the walk leaves them out).
fn built_crates(metadata: &Metadata, root: &Package, target: &str) -> anyhow::Result<HashSet<String>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let tree = std::process::Command::new(cargo)
        .args(["tree", "--locked", "--edges", "normal", "--prefix", "none", "--format", "{p}", "--target", target, "--package"])
        .arg(format!("{}@{}", root.name, root.version))
        .current_dir(&metadata.workspace_root)
        .output()
        .context("cannot run cargo tree")?;
    if !tree.status.success() {
        bail!("cargo tree failed: {}", String::from_utf8_lossy(&tree.stderr).trim());
    }
    // Each line is `NAME vVERSION`, then ` (PATH)` for a path crate, ` (proc-macro)`, ` (*)`.
    Ok(String::from_utf8_lossy(&tree.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split(' ');
            Some(format!("{} {}", words.next()?, words.next()?))
        })
        .collect())
}

/// `pkg:cargo/NAME@VERSION`, also the component's bom-ref.
fn purl_text(package: &Package) -> String {
    format!("pkg:cargo/{}@{}", package.name, package.version)
}

/// Cargo.lock's checksums by `name@version` (registry crates only; path crates have none).
pub fn lock_checksums(lock_file: &std::path::Path) -> anyhow::Result<HashMap<String, String>> {
    let lock = cargo_lock::Lockfile::load(lock_file).with_context(|| format!("cannot read {}", lock_file.display()))?;
    Ok(lock.packages.into_iter().filter_map(|p| Some((format!("{}@{}", p.name, p.version), p.checksum?.to_string()))).collect())
}
