//! `cargo xtask dist` (#27), run as a release is made: the archive, SHA256SUMS and the CycloneDX
//! SBOM of this build's binary, checked as a user checks them (`sha256sum -c`, `tar`, the
//! unpacked binary run, check-jsonschema against CycloneDX's own schema), and the image archive's
//! refusals. The release build itself is .ci/run's dist stage; here `--binary` packs the test build.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn xtask_dist(args: &[&str]) -> Output {
    Command::new(env!("CARGO"))
        .current_dir(common::root())
        .args(["run", "--quiet", "--locked", "--package", "xtask", "--", "dist", "--binary", env!("CARGO_BIN_EXE_mcp-gitops")])
        .args(args)
        .output()
        .expect("cargo runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One `cargo xtask dist --no-image` for the tests that only read its artifacts, in a directory
/// of the target directory that each run of the tests empties first.
fn dist() -> &'static (PathBuf, String) {
    static DIST: OnceLock<(PathBuf, String)> = OnceLock::new();
    DIST.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dist");
        if out.exists() {
            std::fs::remove_dir_all(&out).expect("remove the last run's artifacts");
        }
        let run = xtask_dist(&["--out", out.to_str().expect("UTF-8 path"), "--no-image"]);
        assert!(run.status.success(), "cargo xtask dist failed:\n{}", text(&run.stderr));
        (out, text(&run.stdout))
    })
}

/// `mcp-gitops-VERSION-TARGET`, the target being rustc's host.
fn stem() -> String {
    let rustc = Command::new("rustc").arg("-vV").output().expect("rustc runs");
    let target = text(&rustc.stdout).lines().find_map(|l| l.strip_prefix("host: ").map(str::to_string)).expect("host");
    format!("mcp-gitops-{}-{target}", env!("CARGO_PKG_VERSION"))
}

fn sha256sum_check(dir: &Path) -> Output {
    Command::new("sha256sum").args(["-c", "SHA256SUMS"]).current_dir(dir).output().expect("sha256sum runs")
}

#[test]
fn dist_lists_its_artifacts_and_sha256sum_checks_them_and_catches_a_changed_byte() {
    let (out, stdout) = dist();
    let stem = stem();
    for artifact in [format!("{stem}.tar.gz"), format!("{stem}.cdx.json"), "SHA256SUMS".to_string()] {
        assert!(stdout.contains(&format!("  {artifact} ")), "{artifact} not listed:\n{stdout}");
    }
    assert!(stdout.contains("Image archive skipped: --no-image"), "{stdout}");

    let check = sha256sum_check(out);
    assert!(check.status.success(), "sha256sum -c failed:\n{}{}", text(&check.stdout), text(&check.stderr));
    assert_eq!(text(&check.stdout), format!("{stem}.tar.gz: OK\n{stem}.cdx.json: OK\n"));

    // The attack: one byte of the archive changed after the sums were written.
    let copy = tempfile::tempdir().expect("tempdir");
    for name in [format!("{stem}.tar.gz"), format!("{stem}.cdx.json"), "SHA256SUMS".to_string()] {
        std::fs::copy(out.join(&name), copy.path().join(&name)).expect("copy");
    }
    let archive = copy.path().join(format!("{stem}.tar.gz"));
    let mut bytes = std::fs::read(&archive).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&archive, bytes).expect("write");
    let check = sha256sum_check(copy.path());
    assert!(!check.status.success());
    assert!(text(&check.stdout).contains(&format!("{stem}.tar.gz: FAILED")), "{}", text(&check.stdout));
}

#[test]
fn the_archive_holds_the_binary_that_runs_its_completions_man_pages_licence_and_readme() {
    let (out, _) = dist();
    let stem = stem();
    let archive = out.join(format!("{stem}.tar.gz"));
    let list = Command::new("tar").arg("-tzvf").arg(&archive).output().expect("tar runs");
    assert!(list.status.success(), "{}", text(&list.stderr));
    let list = text(&list.stdout);
    for file in [
        "mcp-gitops",
        "completions/mcp-gitops.bash",
        "completions/_mcp-gitops",
        "completions/mcp-gitops.fish",
        "completions/_mcp-gitops.ps1",
        "completions/mcp-gitops.elv",
        "man/man1/mcp-gitops.1",
        "man/man1/mcp-gitops-plan.1",
        "man/man1/mcp-gitops-access-explain.1",
        "LICENSE",
        "README.md",
    ] {
        assert!(list.lines().any(|l| l.ends_with(&format!(" {stem}/{file}"))), "{file} not in the archive:\n{list}");
    }
    assert!(list.lines().any(|l| l.starts_with("-rwxr-xr-x root/root") && l.ends_with(&format!(" {stem}/mcp-gitops"))), "{list}");

    let unpacked = tempfile::tempdir().expect("tempdir");
    let untar = Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(unpacked.path()).output().expect("tar runs");
    assert!(untar.status.success(), "{}", text(&untar.stderr));
    let dir = unpacked.path().join(&stem);
    let version = Command::new(dir.join("mcp-gitops")).arg("--version").output().expect("the unpacked binary runs");
    assert_eq!(text(&version.stdout), format!("mcp-gitops {}\n", env!("CARGO_PKG_VERSION")));
    assert_eq!(
        std::fs::read(dir.join("mcp-gitops")).expect("read"),
        std::fs::read(env!("CARGO_BIN_EXE_mcp-gitops")).expect("read"),
        "the archive holds another binary"
    );
    // The completions are what the binary prints.
    let bash = Command::new(env!("CARGO_BIN_EXE_mcp-gitops")).args(["completion", "bash"]).output().expect("runs");
    assert_eq!(std::fs::read(dir.join("completions/mcp-gitops.bash")).expect("read"), bash.stdout);
    let licence = std::fs::read_to_string(dir.join("LICENSE")).expect("read");
    assert!(licence.contains("Apache License") && licence.contains("Version 2.0, January 2004"), "{licence}");
    let page = std::fs::read_to_string(dir.join("man/man1/mcp-gitops-plan.1")).expect("read");
    assert!(page.starts_with(".ie"), "not a roff page: {page}");
    assert!(page.contains("mcp\\-gitops\\-plan"), "{page}");
}

/// Cargo.lock's checksum of `name@version`.
fn lock_checksum(name: &str, version: &str) -> Option<String> {
    let lock = std::fs::read_to_string(common::root().join("Cargo.lock")).expect("Cargo.lock");
    let entry = format!("name = \"{name}\"\nversion = \"{version}\"\n");
    let rest = &lock[lock.find(&entry)? + entry.len()..];
    let block = &rest[..rest.find("\n\n").unwrap_or(rest.len())];
    block.lines().find_map(|l| l.strip_prefix("checksum = \"")).map(|c| c.trim_end_matches('"').to_string())
}

#[test]
fn the_sbom_names_the_crates_in_the_binary_with_purl_licence_and_lock_checksum() {
    let (out, _) = dist();
    let sbom: Value = serde_json::from_slice(&std::fs::read(out.join(format!("{}.cdx.json", stem()))).expect("read")).expect("JSON");
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["specVersion"], "1.5");
    let root = &sbom["metadata"]["component"];
    assert_eq!(root["name"], "mcp-gitops");
    assert_eq!(root["type"], "application");
    assert_eq!(root["purl"], format!("pkg:cargo/mcp-gitops@{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(root["licenses"][0]["expression"], "Apache-2.0");

    let components = sbom["components"].as_array().expect("components");
    let named = |name: &str| components.iter().find(|c| c["name"] == name);
    // Normal dependencies, direct and transitive, are there with their lock checksum.
    for name in ["kube-client", "serde_json", "tokio", "libgit2-sys", "aws-lc-rs"] {
        let component = named(name).unwrap_or_else(|| panic!("{name} is in the binary but not in the SBOM"));
        let version = component["version"].as_str().expect("version");
        assert_eq!(component["purl"], format!("pkg:cargo/{name}@{version}"));
        assert_eq!(component["bom-ref"], component["purl"]);
        assert_eq!(component["hashes"][0]["alg"], "SHA-256");
        assert_eq!(component["hashes"][0]["content"].as_str(), lock_checksum(name, version).as_deref(), "{name}");
        assert!(component["licenses"][0]["expression"].is_string(), "{name} has no licence: {component}");
    }
    // Not in the binary: dev-dependencies, build-only tools, proc-macros, the xtask's own crates,
    // and what only the tests' features of shared crates bring (quinn: reqwest's; schemars: rmcp's).
    for name in [
        "insta",
        "assert_cmd",
        "proptest",
        "cc",
        "pkg-config",
        "serde_derive",
        "thiserror-impl",
        "cyclonedx-bom",
        "clap_mangen",
        "quinn",
        "schemars",
    ] {
        assert!(named(name).is_none(), "{name} is not in the binary but the SBOM lists it");
    }
    // The dependency graph starts at the binary.
    let dependencies = sbom["dependencies"].as_array().expect("dependencies");
    let from_root = dependencies.iter().find(|d| d["ref"] == root["bom-ref"]).expect("the binary's dependencies");
    assert!(
        from_root["dependsOn"].as_array().expect("dependsOn").iter().any(|d| d.as_str().is_some_and(|d| d.starts_with("pkg:cargo/kube@")))
    );
}

#[test]
fn the_sbom_validates_against_the_cyclonedx_1_5_schema_and_a_broken_one_does_not() {
    let (out, _) = dist();
    // check-jsonschema, and the CycloneDX schemas as CycloneDX's Python library ships them (its
    // $refs to spdx and jsf are files beside it), in the tests' Python environment.
    let python = Command::new("bash")
        .arg(common::root().join("tests/packages.sh"))
        .args(["--pip", "check-jsonschema==0.39.0", "cyclonedx-python-lib==11.12.0"])
        .output()
        .expect("bash runs");
    assert!(python.status.success(), "{}", text(&python.stderr));
    let python = PathBuf::from(text(&python.stdout).trim());
    let schemas = Command::new(&python)
        .args(["-c", "import cyclonedx.schema._res as r, os; print(os.path.dirname(r.__file__))"])
        .output()
        .expect("python runs");
    let schema = PathBuf::from(text(&schemas.stdout).trim()).join("bom-1.5.SNAPSHOT.schema.json");
    let check = |file: &Path| {
        Command::new(python.with_file_name("check-jsonschema"))
            .arg("--schemafile")
            .arg(&schema)
            .arg(file)
            .output()
            .expect("check-jsonschema runs")
    };
    let sbom = out.join(format!("{}.cdx.json", stem()));
    let valid = check(&sbom);
    assert!(valid.status.success(), "{}{}", text(&valid.stdout), text(&valid.stderr));

    let mut broken: Value = serde_json::from_slice(&std::fs::read(&sbom).expect("read")).expect("JSON");
    broken["components"][0]["hashes"][0]["alg"] = "SHA-257".into();
    let broken_file = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(broken_file.path(), serde_json::to_vec(&broken).expect("JSON")).expect("write");
    let invalid = check(broken_file.path());
    assert!(!invalid.status.success(), "a hash algorithm CycloneDX does not know passed");
    assert!(text(&invalid.stdout).contains("SHA-257"), "{}", text(&invalid.stdout));
}

#[test]
fn an_image_asked_for_and_missing_fails_and_leaves_no_sums() {
    let out = tempfile::tempdir().expect("tempdir");
    // An earlier release's sums in the same directory must not vouch for this run's files.
    std::fs::write(out.path().join("SHA256SUMS"), "0000  mcp-gitops-old.tar.gz\n").expect("write");
    let run = xtask_dist(&["--out", out.path().to_str().expect("UTF-8"), "--image", "localhost/mcp-gitops:no-such-image"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    let stderr = text(&run.stderr);
    assert!(stderr.contains("no image localhost/mcp-gitops:no-such-image") || stderr.contains("podman is not installed"), "{stderr}");
    assert!(!out.path().join("SHA256SUMS").exists(), "sums written for an incomplete release");
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let run = xtask_dist(&["--sign"]);
    assert_eq!(run.status.code(), Some(64), "{}", text(&run.stderr));
    assert!(text(&run.stderr).contains("--sign"), "{}", text(&run.stderr));
}

#[test]
fn build_image_saves_the_image_of_the_packed_binary_as_an_oci_archive_in_the_sums() {
    const IMAGE: &str = "localhost/mcp-gitops:test-dist";
    let out = tempfile::tempdir().expect("tempdir");
    let run = xtask_dist(&["--out", out.path().to_str().expect("UTF-8"), "--build-image", "--image", IMAGE]);
    let removed = Command::new("podman").args(["rmi", "--force", IMAGE]).output();
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(removed.is_ok_and(|r| r.status.success()), "the image was not built");
    let stem = stem();
    assert!(text(&run.stdout).contains(&format!("  {stem}.oci.tar ")), "{}", text(&run.stdout));
    let check = sha256sum_check(out.path());
    assert!(check.status.success(), "{}", text(&check.stdout));
    assert!(text(&check.stdout).contains(&format!("{stem}.oci.tar: OK")), "{}", text(&check.stdout));
    // An OCI image layout whose index names the image.
    let index =
        Command::new("tar").arg("-xOf").arg(out.path().join(format!("{stem}.oci.tar"))).arg("index.json").output().expect("tar runs");
    let index: Value = serde_json::from_slice(&index.stdout).expect("index.json is JSON");
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], IMAGE, "{index}");
}
