//! `cargo xtask dist`: the release artifacts of mcp-gitops, in one directory (default
//! `target/dist`):
//!
//! - `mcp-gitops-VERSION-TARGET.tar.gz`: the release binary, its shell completions (as the
//!   binary itself prints them), its man pages (man.rs), LICENSE and README.md;
//! - `mcp-gitops-VERSION-TARGET.cdx.json`: the CycloneDX SBOM of the crates in the binary (sbom.rs);
//! - `mcp-gitops-VERSION-TARGET.oci.tar`: the daemon image (deploy/Dockerfile, built by
//!   tests/image.sh) as an OCI archive, when podman and the image are there;
//! - `SHA256SUMS` of those, as `sha256sum -c` checks them.
//!
//! Progress goes to stderr, the list of artifacts to stdout.

use anyhow::{Context, bail};
use cargo_metadata::{Metadata, MetadataCommand};
use clap::ValueEnum;
use clap_complete::{Generator, Shell};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The image tests/image.sh builds (and .ci/run checks).
const IMAGE: &str = "localhost/mcp-gitops:test";

#[derive(clap::Args)]
pub struct DistArgs {
    /// Where the artifacts go [default: target/dist in cargo's target directory]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Package this binary as it is [default: the release build, built when it is not up to date]
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
    /// Save this image as the OCI archive [default: localhost/mcp-gitops:test when it exists]
    #[arg(long, value_name = "NAME", conflicts_with = "no_image")]
    image: Option<String>,
    /// Build the image first from the packaged binary (tests/image.sh build)
    #[arg(long, conflicts_with = "no_image")]
    build_image: bool,
    /// No image archive
    #[arg(long)]
    no_image: bool,
}

pub fn run(args: &DistArgs) -> anyhow::Result<()> {
    let target = host_target()?;
    // Only the target's dependencies in the resolve: the SBOM walks it.
    let metadata = MetadataCommand::new()
        .other_options(vec!["--filter-platform".into(), target.clone(), "--locked".into()])
        .exec()
        .context("cargo metadata failed")?;
    let root =
        metadata.workspace_packages().into_iter().find(|p| p.name == "mcp-gitops").context("no mcp-gitops package in the workspace")?;
    let workspace = metadata.workspace_root.as_std_path();
    let out = match &args.out {
        Some(out) => out.clone(),
        None => metadata.target_directory.join("dist").into_std_path_buf(),
    };
    let binary = match &args.binary {
        Some(binary) => binary.clone(),
        None => release_binary(&metadata)?,
    };
    let version = run_captured(Command::new(&binary).arg("--version"))?;
    if version.trim() != format!("mcp-gitops {}", root.version) {
        bail!("{} says {:?}, not mcp-gitops {}", binary.display(), version.trim(), root.version);
    }
    let stem = format!("mcp-gitops-{}-{target}", root.version);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot make {}", out.display()))?;
    // The sums of an earlier run would not match what this run writes: a run that fails leaves none.
    let sums_file = out.join("SHA256SUMS");
    if sums_file.exists() {
        std::fs::remove_file(&sums_file).with_context(|| format!("cannot remove {}", sums_file.display()))?;
    }

    progress(&format!("archive {stem}.tar.gz: {}, completions, man pages, LICENSE, README.md", binary.display()));
    let mut artifacts = vec![write(&out, &format!("{stem}.tar.gz"), &archive(&stem, &binary, workspace)?)?];
    progress(&format!("SBOM {stem}.cdx.json: the crates in the binary for {target}"));
    let checksums = crate::sbom::lock_checksums(&workspace.join("Cargo.lock"))?;
    artifacts.push(write(&out, &format!("{stem}.cdx.json"), &crate::sbom::json(&metadata, root, &target, &checksums)?)?);
    let image = image(args, &binary, workspace, &out.join(format!("{stem}.oci.tar")))?;
    if let Image::Saved(path) = &image {
        artifacts.push(path.clone());
    }
    let sums = sha256sums(&artifacts)?;
    artifacts.push(write(&out, "SHA256SUMS", sums.as_bytes())?);

    println!("Release artifacts in {}:", out.display());
    for artifact in &artifacts {
        let size = std::fs::metadata(artifact)?.len();
        println!("  {:<56} {:>10}", file_name(artifact), human_size(size));
    }
    if let Image::Skipped(why) = image {
        println!("Image archive skipped: {why}");
    }
    println!("Verify: (cd {} && sha256sum -c SHA256SUMS)", out.display());
    Ok(())
}

/// The target the binary is built for: rustc's host (no cross-compilation here).
fn host_target() -> anyhow::Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let info = run_captured(Command::new(rustc).arg("-vV"))?;
    info.lines().find_map(|line| line.strip_prefix("host: ")).map(str::to_string).context("rustc -vV names no host")
}

/// target/release/mcp-gitops, built by cargo unless it is up to date (cargo decides, as for any build).
fn release_binary(metadata: &Metadata) -> anyhow::Result<PathBuf> {
    progress("release binary: cargo build --release --locked (nothing to do when it is up to date)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--package", "mcp-gitops", "--bin", "mcp-gitops"])
        .current_dir(&metadata.workspace_root)
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!("cargo build --release failed ({status})");
    }
    Ok(metadata.target_directory.join("release").join("mcp-gitops").into_std_path_buf())
}

/// The .tar.gz, its files under one directory named `stem`.
fn archive(stem: &str, binary: &Path, workspace: &Path) -> anyhow::Result<Vec<u8>> {
    let read = |path: &Path| std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    let mut files = vec![("mcp-gitops".to_string(), read(binary)?, 0o755)];
    for shell in Shell::value_variants() {
        let name = shell.to_possible_value().context("a shell without a name")?.get_name().to_string();
        let script = run_captured(Command::new(binary).args(["completion", &name]))?;
        files.push((format!("completions/{}", shell.file_name("mcp-gitops")), script.into_bytes(), 0o644));
    }
    for (name, page) in crate::man::pages()? {
        files.push((format!("man/man1/{name}"), page, 0o644));
    }
    for name in ["LICENSE", "README.md"] {
        files.push((name.to_string(), read(&workspace.join(name))?, 0o644));
    }
    // The archive's times are the build's (SOURCE_DATE_EPOCH when set, for reproducible builds).
    let mtime = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(epoch) => epoch.parse().context("SOURCE_DATE_EPOCH is not a number of seconds")?,
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs(),
    };
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    for (path, data, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("root")?;
        header.set_groupname("root")?;
        tar.append_data(&mut header, format!("{stem}/{path}"), data.as_slice())?;
    }
    Ok(tar.into_inner()?.finish()?)
}

enum Image {
    Saved(PathBuf),
    Skipped(String),
}

/// The image as an OCI archive at `path`. Asked for (`--image`, `--build-image`), a missing
/// podman or image is an error; by default it is a skip, said in the list.
fn image(args: &DistArgs, binary: &Path, workspace: &Path, path: &Path) -> anyhow::Result<Image> {
    // An archive left by an earlier run is not this run's artifact.
    if path.exists() {
        std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
    }
    if args.no_image {
        return Ok(Image::Skipped("--no-image".into()));
    }
    let asked = args.image.is_some() || args.build_image;
    let name = args.image.as_deref().unwrap_or(IMAGE);
    let skip_or_fail = |why: String| if asked { Err(anyhow::anyhow!(why)) } else { Ok(Image::Skipped(why)) };
    if Command::new("podman").arg("--version").output().is_err() {
        return skip_or_fail("podman is not installed".into());
    }
    if args.build_image {
        progress(&format!("image {name}: bash tests/image.sh build"));
        let binary = binary.canonicalize().with_context(|| format!("no {}", binary.display()))?;
        let status = Command::new("bash")
            .arg(workspace.join("tests/image.sh"))
            .arg("build")
            .env("MCP_GITOPS_BINARY", binary)
            .env("MCP_GITOPS_IMAGE", name)
            .status()
            .context("cannot run tests/image.sh")?;
        if !status.success() {
            bail!("tests/image.sh build failed ({status})");
        }
    }
    if !Command::new("podman").args(["image", "exists", name]).status()?.success() {
        return skip_or_fail(format!("no image {name} (--build-image builds it with tests/image.sh build)"));
    }
    progress(&format!("image {name}: podman save --format oci-archive"));
    let status = Command::new("podman")
        .args(["save", "--quiet", "--format", "oci-archive", "--output"])
        .arg(path)
        .arg(name)
        .status()
        .context("cannot run podman save")?;
    if !status.success() {
        bail!("podman save {name} failed ({status})");
    }
    Ok(Image::Saved(path.to_path_buf()))
}

/// `HASH  NAME` lines, as sha256sum writes them.
fn sha256sums(artifacts: &[PathBuf]) -> anyhow::Result<String> {
    let mut sums = String::new();
    for artifact in artifacts {
        let bytes = std::fs::read(artifact).with_context(|| format!("cannot read {}", artifact.display()))?;
        sums.push_str(&format!("{}  {}\n", hex::encode(Sha256::digest(bytes)), file_name(artifact)));
    }
    Ok(sums)
}

fn write(dir: &Path, name: &str, data: &[u8]) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(data).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The standard output of a command that must succeed.
fn run_captured(command: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{command:?}");
    let output = command.output().with_context(|| format!("cannot run {shown}"))?;
    if !output.status.success() {
        bail!("{shown} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
    }
    String::from_utf8(output.stdout).with_context(|| format!("{shown} printed no UTF-8"))
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn human_size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

fn progress(message: &str) {
    eprintln!("dist: {message}");
}
