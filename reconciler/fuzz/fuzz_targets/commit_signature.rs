//! Feeds a raw commit object to the signature check of `mcp-gitops verify` (`trust::commit::split`,
//! then `trust::check` against one allowed SSH signer and one OpenPGP key), and the same bytes to
//! the `allowed_signers` parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gitops::trust::{self, commit, signers};

/// The one allowed signer; `corpus/commit_signature/seed-ssh-signed` is a commit git signed with
/// its private key, which is not kept.
const ALLOWED_SIGNERS: &str =
    "fuzz@mcp-gitops.io ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAPpxyoUefyWeSJ+cR3ymrVNbP1yoXMKBOyl62rFanWG fuzz\n";

/// The one OpenPGP key (a certification-only primary and a signing subkey);
/// `corpus/commit_signature/seed-openpgp-signed` is the same commit signed by gpg with its
/// subkey, whose private half is not kept either.
const PGP_KEY: &[u8] = include_bytes!("../keys/fuzz.asc");

/// What both signatures sign: the commit without its `gpgsig` header.
const SIGNED_PAYLOAD: &[u8] = b"tree aaff74984cccd156a469afa7d9ab10e4777beb24\n\
author Fuzz <fuzz@mcp-gitops.io> 1700000000 +0000\n\
committer Fuzz <fuzz@mcp-gitops.io> 1700000000 +0000\n\
\n\
signed seed\n";

/// The time of verification: after the fuzz OpenPGP key was made (2026-12-02; it never expires).
const VERIFIED_AT: i64 = 1_796_400_000;

fuzz_target!(|data: &[u8]| {
    let keys = trust::Keys {
        ssh: signers::parse(ALLOWED_SIGNERS, "allowed_signers").expect("the fuzz signer parses"),
        pgp: trust::openpgp::parse(PGP_KEY, "fuzz.asc").expect("the fuzz key parses"),
    };
    let parts = commit::split(data);
    // The payload has no signature header left: splitting it again takes nothing out.
    let again = commit::split(&parts.payload);
    assert_eq!(again.signature, None, "a signature left in the payload");
    assert_eq!(again.payload, parts.payload, "the payload is not a fixed point");
    // Without the private keys, nothing verifies but the very bytes they signed (judged at a fixed
    // time inside the fuzz keys' validity, so that a forgery would show).
    if trust::check(&parts, &keys, &trust::rules::Rules::default(), (&[], &[]), VERIFIED_AT).is_ok() {
        assert_eq!(parts.payload, SIGNED_PAYLOAD, "a commit verified that the key never signed");
    }
    // The same bytes as an allowed_signers file: an error or signers, never a panic.
    let _ = signers::parse(&String::from_utf8_lossy(data), "fuzz");
});
