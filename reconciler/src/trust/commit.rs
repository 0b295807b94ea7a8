//! A raw commit object split the way git splits it for signature checks: the signature is the
//! value of the `gpgsig` header (continuation lines unfolded), and the signed payload is the
//! commit without the `gpgsig` and `gpgsig-sha256` header fields, of the header block only. A
//! signature block that sits in the message is part of the message, so such a commit is
//! unsigned, as git says.

/// The parts of a commit a signature check needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedParts {
    /// The bytes the signature signs.
    pub payload: Vec<u8>,
    /// The armored signature; `None` for an unsigned commit.
    pub signature: Option<String>,
    /// The committer's email and time (seconds since the epoch), from the header.
    pub committer_email: String,
    pub committer_time: i64,
    pub author_email: String,
}

/// Splits the raw bytes of a commit object (as read from the object database).
pub fn split(raw: &[u8]) -> SignedParts {
    // The header ends at the first empty line, which may be the very first (no header at all).
    let header_end = match raw.first() {
        Some(b'\n') => 0,
        _ => raw.windows(2).position(|w| w == b"\n\n").map(|i| i + 1).unwrap_or(raw.len()),
    };
    let (header, rest) = raw.split_at(header_end);
    let mut payload = Vec::with_capacity(raw.len());
    let mut signature: Option<String> = None;
    let mut committer = ("".to_string(), 0i64);
    let mut author = String::new();
    // Each field is a line plus the continuation lines (starting with a space) that follow it.
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    for (i, line) in lines_with_ends(header) {
        if i != 0 && !line.starts_with(b" ") {
            fields.push(&header[start..i]);
            start = i;
        }
    }
    if start < header.len() {
        fields.push(&header[start..]);
    }
    for field in fields {
        let name_end = field.iter().position(|b| *b == b' ' || *b == b'\n').unwrap_or(field.len());
        match &field[..name_end] {
            // Several gpgsig fields make one signature, as in git.
            b"gpgsig" => signature.get_or_insert_with(String::new).push_str(&unfold(&field[(name_end + 1).min(field.len())..])),
            // Another hash's signature (gpgsig-sha256): neither payload nor signature.
            name if name.starts_with(b"gpgsig") => {}
            name => {
                let value = &field[(name_end + 1).min(field.len())..];
                match name {
                    b"committer" => committer = parse_ident(value),
                    b"author" => author = parse_ident(value).0,
                    _ => {}
                }
                payload.extend_from_slice(field);
            }
        }
    }
    payload.extend_from_slice(rest);
    SignedParts { payload, signature, committer_email: committer.0, committer_time: committer.1, author_email: author }
}

/// Lines of `bytes` with the offset each starts at (line ends included in the line).
fn lines_with_ends(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut offset = 0;
    std::iter::from_fn(move || {
        if offset >= bytes.len() {
            return None;
        }
        let end = bytes[offset..].iter().position(|b| *b == b'\n').map(|i| offset + i + 1).unwrap_or(bytes.len());
        let line = (offset, &bytes[offset..end]);
        offset = end;
        Some(line)
    })
}

/// A multi-line header value: continuation lines lose their leading space.
fn unfold(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut out = String::new();
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(if i == 0 { line } else { line.strip_prefix(' ').unwrap_or(line) });
    }
    out.trim_end_matches('\n').to_string() + "\n"
}

/// `Name <email> 1700000000 +0100` -> (email, seconds).
fn parse_ident(value: &[u8]) -> (String, i64) {
    let text = String::from_utf8_lossy(value);
    let email = text.split_once('<').and_then(|(_, rest)| rest.split_once('>')).map(|(email, _)| email.to_string()).unwrap_or_default();
    let time = text.rsplit_once('>').and_then(|(_, rest)| rest.split_whitespace().next()).and_then(|t| t.parse().ok()).unwrap_or(0);
    (email, time)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNED: &str = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@x.io> 1700000000 +0000\ncommitter C <c@x.io> 1700000001 +0000\ngpgsig -----BEGIN SSH SIGNATURE-----\n AAAA\n BBBB\n -----END SSH SIGNATURE-----\n\nmessage\n";

    #[test]
    fn the_signature_header_is_taken_out_of_the_payload() {
        let parts = split(SIGNED.as_bytes());
        assert_eq!(parts.signature.as_deref(), Some("-----BEGIN SSH SIGNATURE-----\nAAAA\nBBBB\n-----END SSH SIGNATURE-----\n"));
        assert_eq!(
            String::from_utf8_lossy(&parts.payload),
            "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@x.io> 1700000000 +0000\ncommitter C <c@x.io> 1700000001 +0000\n\nmessage\n"
        );
        assert_eq!((parts.committer_email.as_str(), parts.committer_time), ("c@x.io", 1700000001));
        assert_eq!(parts.author_email, "a@x.io");
    }

    #[test]
    fn an_extra_sha256_signature_header_is_left_out_of_the_payload_too() {
        let extra =
            SIGNED.replace("\n\nmessage", "\ngpgsig-sha256 -----BEGIN SSH SIGNATURE-----\n CCCC\n -----END SSH SIGNATURE-----\n\nmessage");
        assert_eq!(split(extra.as_bytes()).payload, split(SIGNED.as_bytes()).payload);
    }

    #[test]
    fn an_empty_first_line_leaves_no_header() {
        // Found by the commit_signature fuzz target: the payload of a commit whose message holds
        // a gpgsig line must not yield that line as a signature when split again.
        let raw = b"\nmessage\ngpgsig -----BEGIN SSH SIGNATURE-----\n";
        let parts = split(raw);
        assert_eq!((parts.signature, parts.payload), (None, raw.to_vec()));
    }

    #[test]
    fn a_signature_block_in_the_message_is_not_a_signature() {
        let moved = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ncommitter C <c@x.io> 1700000001 +0000\n\nmessage\ngpgsig -----BEGIN SSH SIGNATURE-----\n AAAA\n";
        let parts = split(moved.as_bytes());
        assert_eq!(parts.signature, None);
        assert_eq!(parts.payload, moved.as_bytes());
    }
}
