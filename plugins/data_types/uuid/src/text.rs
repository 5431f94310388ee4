//! The text forms of a UUID, as PostgreSQL reads and writes them.
//!
//! Input: 32 hexadecimal digits (either case), optionally wrapped in `{...}`, with an optional
//! hyphen after any group of four digits (so `a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11`,
//! `{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}`, `a0eebc999c0b4ef8bb6d6bb9bd380a11` and
//! `a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11` are one value). Nothing else is accepted: no
//! surrounding blanks, no `urn:uuid:` prefix, no hyphen at the start or end. Output: the
//! lower-case hyphenated 8-4-4-4-12 form.

/// Bytes in a UUID.
pub const LEN: usize = 16;

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses one UUID (PostgreSQL's `uuid_in` grammar, see the module documentation).
pub fn parse(text: &str) -> Option<[u8; LEN]> {
    let mut src = text.as_bytes();
    let braces = src.first() == Some(&b'{');
    if braces {
        src = &src[1..];
    }
    let mut out = [0u8; LEN];
    for (i, byte) in out.iter_mut().enumerate() {
        let [hi, lo, rest @ ..] = src else {
            return None;
        };
        *byte = hex_digit(*hi)? << 4 | hex_digit(*lo)?;
        src = rest;
        // A hyphen may follow every second byte (four digits), except the last.
        if i % 2 == 1 && i < LEN - 1 {
            if let [b'-', rest @ ..] = src {
                src = rest;
            }
        }
    }
    if braces {
        let [b'}', rest @ ..] = src else {
            return None;
        };
        src = rest;
    }
    src.is_empty().then_some(out)
}

/// The canonical text of a UUID: lower case, hyphenated 8-4-4-4-12.
pub fn format(bytes: &[u8]) -> Option<String> {
    if bytes.len() != LEN {
        return None;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0x0f)] as char);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANONICAL: &str = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";

    #[test]
    fn the_forms_postgresql_documents_are_one_value() {
        // PostgreSQL's documentation, section 8.12 (UUID type), lists these inputs.
        let expected = parse(CANONICAL).expect("canonical form");
        for text in [
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
            "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
        ] {
            assert_eq!(parse(text), Some(expected), "{text}");
            assert_eq!(format(&expected).as_deref(), Some(CANONICAL));
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            "",
            "12345",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g",
            " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 ",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "-a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
            "a0eeb-c99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
            "urn:uuid:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "é0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn bytes_order_like_the_text() {
        let a = parse("00000000-0000-0000-0000-0000000000ff").unwrap();
        let b = parse("00000000-0000-0000-0000-000000000100").unwrap();
        let c = parse("ff000000-0000-0000-0000-000000000000").unwrap();
        assert!(a < b && b < c);
    }
}
