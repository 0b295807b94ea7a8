//! "Did you mean …": the known name closest to a misspelled one, so that a name the repository
//! does not know gets an answer rather than silence.

/// The candidate closest to `wanted` in edit distance (transpositions count as one edit, case is
/// ignored), when it is close enough to be a slip of the keyboard: at most one edit in four
/// characters, and at least one. `None` when nothing is that close, or `wanted` itself is known.
pub fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let folded = wanted.trim().to_lowercase();
    let limit = (folded.chars().count() / 4).max(1);
    candidates
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(&folded, &candidate.to_lowercase()), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .filter(|(distance, candidate)| *distance > 0 || *candidate != wanted)
        .map(|(_, candidate)| candidate)
}

/// `; did you mean NAME?`, or nothing when no known name is close.
pub fn did_you_mean<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(wanted, candidates).map(|name| format!("; did you mean {name}?")).unwrap_or_default()
}

/// A handle or team name as the forges compare them: GitHub and GitLab logins and team slugs
/// are case-insensitive, and a mention's `@` is not part of the name. So `Dana.Whitfield`,
/// ` dana.whitfield ` and `@dana.whitfield` are one person.
pub fn identity(name: &str) -> String {
    let name = name.trim();
    name.strip_prefix('@').unwrap_or(name).trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slip_of_the_keyboard_finds_the_name_and_a_stranger_finds_nothing() {
        let tools = ["issue_refund", "list_invoices", "get_invoice"];
        assert_eq!(closest("issue_refnd", tools), Some("issue_refund"));
        assert_eq!(closest("MCPAccesGrant", ["MCPAccessGrant", "MCPAgentSession"]), Some("MCPAccessGrant"));
        assert_eq!(closest("mian", ["main", "lead"]), Some("main"));
        assert_eq!(closest("Issue_Refund", tools), Some("issue_refund"), "another case is the same name");
        assert_eq!(closest("delete_everything", tools), None);
        assert_eq!(closest("ab", ["xy"]), None);
        assert_eq!(did_you_mean("get_invoce", tools), "; did you mean get_invoice?");
        assert_eq!(did_you_mean("zzz", tools), "");
    }
}
