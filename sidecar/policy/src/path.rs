//! Request paths as path rules see them.
//!
//! A server may decode a path more than once, drop `;` parameters from
//! segments (`/v1/..;/admin` is `/admin` to some servers) and resolve dot
//! segments, so a prefix is compared with the path *after* all of that, and
//! anything that would make the two readings differ is refused: dot
//! segments at any decoding depth, encoded slashes and backslashes, control
//! bytes. A prefix ends at a segment boundary: `/v1` allows `/v1` and
//! `/v1/models`, not `/v1-admin` or `/v1.bak`.

/// Decoding rounds tried before a path that keeps changing is refused.
const MAX_DECODE_ROUNDS: usize = 4;

/// Why a path cannot be matched against path rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathProblem {
    /// `.` or `..` as a segment (after decoding and dropping `;` parameters).
    DotSegment,
    /// `%2f` or `%5c`, or a backslash: the server may read a separator there.
    EncodedSeparator,
    /// A NUL or another control byte after decoding.
    ControlByte,
    /// Still percent-encoded after several rounds of decoding.
    TooDeeplyEncoded,
}

impl PathProblem {
    /// Words for the agent.
    pub fn as_str(&self) -> &'static str {
        match self {
            PathProblem::DotSegment => "it has a dot segment",
            PathProblem::EncodedSeparator => "it has an encoded slash or a backslash",
            PathProblem::ControlByte => "it has a control byte",
            PathProblem::TooDeeplyEncoded => "it is percent-encoded too many times over",
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// One round of percent-decoding; invalid escapes stay as they are.
pub fn percent_decode_once(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// The path as the rules compare it: fully percent-decoded, `;` parameters
/// dropped from every segment. Refused when a server could read it
/// differently (see [`PathProblem`]).
pub fn rule_path(path: &str) -> Result<String, PathProblem> {
    let mut current = path.as_bytes().to_vec();
    let mut rounds = 0;
    loop {
        let lower = current.to_ascii_lowercase();
        if lower.windows(3).any(|w| w == b"%2f" || w == b"%5c") || current.contains(&b'\\') {
            return Err(PathProblem::EncodedSeparator);
        }
        let decoded = percent_decode_once(&current);
        if decoded == current {
            break;
        }
        rounds += 1;
        if rounds > MAX_DECODE_ROUNDS {
            return Err(PathProblem::TooDeeplyEncoded);
        }
        current = decoded;
    }
    if current.iter().any(|b| b.is_ascii_control()) {
        return Err(PathProblem::ControlByte);
    }
    let text = String::from_utf8_lossy(&current);
    let mut segments = Vec::new();
    for seg in text.split('/') {
        let bare = seg.split(';').next().unwrap_or("");
        if bare == "." || bare == ".." {
            return Err(PathProblem::DotSegment);
        }
        segments.push(bare);
    }
    Ok(segments.join("/"))
}

/// Whether `prefix` (a rule's path) covers the normalised `path`, ending at a
/// segment boundary.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix.ends_with('/') {
        return path.starts_with(prefix);
    }
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// Whether a rule's path prefix is acceptable: absolute, and already in the
/// form [`rule_path`] produces (no encoding, parameters or dot segments).
pub fn valid_prefix(prefix: &str) -> bool {
    prefix.starts_with('/')
        && !prefix
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b"?#%;\\".contains(&b))
        && rule_path(prefix).as_deref() == Ok(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(prefix: &str, path: &str) -> bool {
        rule_path(path).is_ok_and(|p| prefix_matches(prefix, &p))
    }

    #[test]
    fn prefixes_end_at_a_segment_boundary() {
        assert!(allowed("/v1", "/v1"));
        assert!(allowed("/v1", "/v1/models"));
        assert!(allowed("/v1/", "/v1/models"));
        assert!(!allowed("/v1/", "/v1"));
        for path in ["/v1-admin", "/v1.bak", "/v10", "/v2/v1"] {
            assert!(!allowed("/v1", path), "{path}");
        }
    }

    #[test]
    fn parameters_and_encodings_cannot_climb_out() {
        for (path, problem) in [
            ("/v1/..;/admin", PathProblem::DotSegment),
            ("/v1/.;/admin", PathProblem::DotSegment),
            ("/v1/%2e%2e/admin", PathProblem::DotSegment),
            ("/v1/%252e%252e/admin", PathProblem::DotSegment),
            ("/v1/%25252e%25252e/admin", PathProblem::DotSegment),
            ("/v1/..%3b/admin", PathProblem::DotSegment),
            ("/v1/../admin", PathProblem::DotSegment),
            ("/v1%2f..%2fadmin", PathProblem::EncodedSeparator),
            ("/v1/%252f", PathProblem::EncodedSeparator),
            ("/v1\\..\\admin", PathProblem::EncodedSeparator),
            ("/v1/%00", PathProblem::ControlByte),
            ("/v1/%2525252525252e", PathProblem::TooDeeplyEncoded),
        ] {
            assert_eq!(rule_path(path), Err(problem), "{path}");
        }
        // Parameters are dropped for matching, not refused.
        assert_eq!(rule_path("/v1;jsessionid=x/models").unwrap(), "/v1/models");
        assert!(allowed("/v1", "/v1;x=1/models"));
        assert!(!allowed("/v1", "/v1-admin;x=1"));
        assert_eq!(rule_path("/a%20b").unwrap(), "/a b");
    }

    #[test]
    fn prefixes_must_be_in_normal_form() {
        for ok in ["/", "/v1", "/v1/", "/a-b_c.d/e"] {
            assert!(valid_prefix(ok), "{ok}");
        }
        for bad in [
            "v1", "/a/../b", "/a/./b", "/a;b", "/a%2e", "/a b", "/a?b", "/a\\b",
        ] {
            assert!(!valid_prefix(bad), "{bad}");
        }
    }
}
