//! GnuPG for the tests: a home of its own, keys made by the gpg CLI, and commits git signs with
//! it (through a wrapper named by `gpg.program`, since git runs gpg with the caller's
//! environment).

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Gpg {
    pub home: PathBuf,
    program: PathBuf,
}

impl Gpg {
    /// A GnuPG home under `dir` (kept short: gpg-agent's socket path is limited).
    pub fn new(dir: &Path) -> Gpg {
        super::install(&["gpg", "gpg-agent"]);
        let home = dir.join("gnupg");
        std::fs::create_dir(&home).expect("mkdir");
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
        let program = dir.join("gpg-here");
        std::fs::write(&program, format!("#!/bin/sh\nGNUPGHOME='{}' exec gpg \"$@\"\n", home.display())).expect("write");
        std::fs::set_permissions(&program, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        Gpg { home, program }
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new(&self.program).args(["--batch", "--passphrase", ""]).args(args).output().expect("gpg runs");
        assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A new key for `uid` (`algorithm`, `usage` as gpg's --quick-gen-key takes them, with an
    /// optional faked creation time); returns the primary key's fingerprint.
    pub fn key(&self, uid: &str, algorithm: &str, usage: &str, faked_time: Option<&str>) -> String {
        let faked: Vec<&str> = faked_time.map(|t| vec!["--faked-system-time", t]).unwrap_or_default();
        self.run(&[&faked[..], &["--quick-gen-key", uid, algorithm, usage, "0"]].concat());
        let listing = self.run(&["--with-colons", "--list-keys", uid]);
        listing.lines().find_map(|l| l.strip_prefix("fpr:::::::::")).map(|f| f.trim_end_matches(':').to_string()).expect("a fingerprint")
    }

    /// The git configuration that signs with `fingerprint`'s key (or its signing subkey) as `email`.
    pub fn signing(&self, fingerprint: &str, email: &str) -> Vec<String> {
        vec![
            "gpg.format=openpgp".to_string(),
            format!("gpg.program={}", self.program.display()),
            format!("user.signingkey={fingerprint}"),
            format!("user.email={email}"),
        ]
    }

    /// `signing`, with gpg's clock set to `time` (`20190601T000000`): the signature claims that
    /// creation time, as anyone holding the key can make it claim.
    pub fn signing_at(&self, fingerprint: &str, email: &str, time: &str) -> Vec<String> {
        let program = self.program.with_file_name(format!("gpg-at-{time}"));
        std::fs::write(&program, format!("#!/bin/sh\nexec '{}' --faked-system-time {time} \"$@\"\n", self.program.display()))
            .expect("write");
        std::fs::set_permissions(&program, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        let mut config = self.signing(fingerprint, email);
        config[1] = format!("gpg.program={}", program.display());
        config
    }

    /// An empty commit in the work tree `dir`, signed by `fingerprint`'s key as `email`; returns its id.
    pub fn commit(&self, dir: &Path, message: &str, fingerprint: &str, email: &str) -> String {
        super::git(dir, &self.signing(fingerprint, email), &["commit", "-q", "--allow-empty", "-S", "-m", message]);
        super::git(dir, &[], &["rev-parse", "HEAD"])
    }

    /// The public key, armored, written to `dir/name`.
    pub fn export(&self, fingerprint: &str, dir: &Path, name: &str) {
        std::fs::write(dir.join(name), self.run(&["--armor", "--export", fingerprint])).expect("write");
    }

    /// Revokes the key with the revocation certificate gpg made with it (reason: none given).
    pub fn revoke(&self, fingerprint: &str) {
        let certificate = std::fs::read_to_string(self.home.join("openpgp-revocs.d").join(format!("{fingerprint}.rev"))).expect("rev");
        let file = self.home.join("revoke.asc");
        std::fs::write(&file, certificate.replace(":-----BEGIN", "-----BEGIN")).expect("write");
        self.run(&["--import", &file.to_string_lossy()]);
    }
}

/// Why a key is revoked, as gpg's `--gen-revoke` menu numbers the reasons.
#[derive(Clone, Copy)]
pub enum Reason {
    Compromised = 1,
    Superseded = 2,
    Retired = 3,
}

impl Gpg {
    /// Revokes the key with a certificate `gpg --gen-revoke` makes at `time` (`20210101T000000`)
    /// with `reason` and `text`, imported as a user would.
    pub fn revoke_for(&self, fingerprint: &str, reason: Reason, text: &str, time: &str) {
        use std::io::Write;
        let certificate = self.home.join(format!("{fingerprint}-{}.rev", reason as u8));
        let mut child = Command::new(&self.program)
            .args(["--no-tty", "--pinentry-mode", "loopback", "--passphrase", "", "--command-fd", "0", "--faked-system-time", time])
            .args(["--armor", "--output"])
            .arg(&certificate)
            .args(["--gen-revoke", fingerprint])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("gpg runs");
        // Create the certificate? The reason, its text (one line, then an empty one), and okay.
        let answers = format!("y\n{}\n{text}\n\ny\n", reason as u8);
        child.stdin.take().expect("stdin").write_all(answers.as_bytes()).expect("answer gpg");
        let out = child.wait_with_output().expect("gpg exits");
        assert!(out.status.success(), "gpg --gen-revoke: {}", String::from_utf8_lossy(&out.stderr));
        self.run(&["--import", &certificate.to_string_lossy()]);
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf").args(["--kill", "gpg-agent"]).env("GNUPGHOME", &self.home).status();
    }
}
