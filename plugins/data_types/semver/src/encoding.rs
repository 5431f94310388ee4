//! Semantic versions and their order-preserving byte encoding.
//!
//! Layout: major, minor and patch as big-endian `u64`; then either `0x02` (no pre-release)
//! or `0x01`, the pre-release identifiers and `0x00`; then, when there is build metadata,
//! `0x01` and its text. A numeric identifier is `0x01` + big-endian `u64`, an alphanumeric
//! one `0x02` + its bytes + `0x00`. Comparing encodings byte by byte gives semver precedence:
//! a pre-release sorts before its release, numeric identifiers before alphanumeric ones,
//! numbers numerically, text in ASCII order, and a shorter identifier list first.

use std::fmt;

/// One pre-release identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    /// Digits only (no leading zero).
    Numeric(u64),
    /// Letters, digits and hyphens, not all digits.
    Alphanumeric(String),
}

/// A parsed semantic version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Major version.
    pub major: u64,
    /// Minor version.
    pub minor: u64,
    /// Patch version.
    pub patch: u64,
    /// Pre-release identifiers (empty: a release).
    pub pre: Vec<Identifier>,
    /// Build metadata (empty: none).
    pub build: String,
}

fn number(part: &str, what: &str) -> Result<u64, String> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} must be a number"));
    }
    if part.len() > 1 && part.starts_with('0') {
        return Err(format!("{what} must not have leading zeros"));
    }
    part.parse()
        .map_err(|_| format!("{what} is too large (at most {})", u64::MAX))
}

fn identifier_chars(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl Version {
    /// Parses `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`.
    pub fn parse(text: &str) -> Result<Version, String> {
        let (rest, build) = match text.split_once('+') {
            Some((r, b)) => {
                if !b.split('.').all(identifier_chars) {
                    return Err("build metadata must be dot-separated [0-9A-Za-z-]+".into());
                }
                (r, b.to_string())
            }
            None => (text, String::new()),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (rest, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() != 3 {
            return Err("expected MAJOR.MINOR.PATCH".into());
        }
        let major = number(parts[0], "major version")?;
        let minor = number(parts[1], "minor version")?;
        let patch = number(parts[2], "patch version")?;
        let mut identifiers = Vec::new();
        if let Some(pre) = pre {
            for id in pre.split('.') {
                if !identifier_chars(id) {
                    return Err("pre-release must be dot-separated [0-9A-Za-z-]+".into());
                }
                if id.bytes().all(|b| b.is_ascii_digit()) {
                    identifiers.push(Identifier::Numeric(number(id, "numeric pre-release")?));
                } else {
                    identifiers.push(Identifier::Alphanumeric(id.to_string()));
                }
            }
        }
        Ok(Version {
            major,
            minor,
            patch,
            pre: identifiers,
            build,
        })
    }

    /// The order-preserving encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        for n in [self.major, self.minor, self.patch] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        if self.pre.is_empty() {
            out.push(0x02);
        } else {
            out.push(0x01);
            for id in &self.pre {
                match id {
                    Identifier::Numeric(n) => {
                        out.push(0x01);
                        out.extend_from_slice(&n.to_be_bytes());
                    }
                    Identifier::Alphanumeric(s) => {
                        out.push(0x02);
                        out.extend_from_slice(s.as_bytes());
                        out.push(0x00);
                    }
                }
            }
            out.push(0x00);
        }
        if !self.build.is_empty() {
            out.push(0x01);
            out.extend_from_slice(self.build.as_bytes());
        }
        out
    }

    /// Reads an encoding back.
    pub fn decode(bytes: &[u8]) -> Result<Version, String> {
        let bad = || "not a stored semver value".to_string();
        let u64_at = |at: usize| -> Result<u64, String> {
            let b: [u8; 8] = bytes
                .get(at..at + 8)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(bad)?;
            Ok(u64::from_be_bytes(b))
        };
        let (major, minor, patch) = (u64_at(0)?, u64_at(8)?, u64_at(16)?);
        let mut at = 24;
        let mut pre = Vec::new();
        match bytes.get(at) {
            Some(0x02) => at += 1,
            Some(0x01) => {
                at += 1;
                loop {
                    match bytes.get(at) {
                        Some(0x00) => {
                            at += 1;
                            break;
                        }
                        Some(0x01) => {
                            pre.push(Identifier::Numeric(u64_at(at + 1)?));
                            at += 9;
                        }
                        Some(0x02) => {
                            let rest = bytes.get(at + 1..).ok_or_else(bad)?;
                            let end = rest.iter().position(|b| *b == 0).ok_or_else(bad)?;
                            let s = std::str::from_utf8(&rest[..end]).map_err(|_| bad())?;
                            pre.push(Identifier::Alphanumeric(s.to_string()));
                            at += 1 + end + 1;
                        }
                        _ => return Err(bad()),
                    }
                }
            }
            _ => return Err(bad()),
        }
        let build = match bytes.get(at) {
            None => String::new(),
            Some(0x01) => std::str::from_utf8(&bytes[at + 1..])
                .map_err(|_| bad())?
                .to_string(),
            Some(_) => return Err(bad()),
        };
        Ok(Version {
            major,
            minor,
            patch,
            pre,
            build,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        for (i, id) in self.pre.iter().enumerate() {
            f.write_str(if i == 0 { "-" } else { "." })?;
            match id {
                Identifier::Numeric(n) => write!(f, "{n}")?,
                Identifier::Alphanumeric(s) => f.write_str(s)?,
            }
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The precedence example of semver.org section 11, in ascending order.
    const ORDERED: &[&str] = &[
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.9.0",
        "1.10.0",
        "2.0.0",
        "2.1.0",
        "2.1.1",
    ];

    #[test]
    fn encodings_sort_in_precedence_order_and_round_trip() {
        let encoded: Vec<Vec<u8>> = ORDERED
            .iter()
            .map(|s| Version::parse(s).expect(s).encode())
            .collect();
        for pair in encoded.windows(2) {
            assert!(pair[0] < pair[1]);
        }
        for (text, bytes) in ORDERED.iter().zip(&encoded) {
            assert_eq!(Version::decode(bytes).expect(text).to_string(), *text);
        }
        let with_build = Version::parse("1.0.0-x.7.z.92+exp.sha.5114f85").unwrap();
        assert_eq!(
            Version::decode(&with_build.encode()).unwrap().to_string(),
            "1.0.0-x.7.z.92+exp.sha.5114f85"
        );
    }

    #[test]
    fn bad_input_is_refused() {
        for bad in [
            "1.x",
            "1.0",
            "01.0.0",
            "1.0.0-",
            "1.0.0-a..b",
            "1.0.0+",
            "",
            "v1.0.0",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
        assert!(Version::decode(b"short").is_err());
    }
}
