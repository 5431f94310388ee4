//! SCRAM-SHA-256 password verifiers (RFC 5802 / RFC 7677) in PostgreSQL's stored form:
//! `SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>`.
//!
//! A verifier lets a server check a client's SCRAM proof without knowing the password; the
//! password and the salted password are never kept.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result, SqlState};

/// The mechanism name, as the verifier text starts with it.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
/// PBKDF2 iterations of new verifiers (PostgreSQL's default, `scram_iterations`).
pub const DEFAULT_ITERATIONS: u32 = 4096;
/// Length in bytes of the random salt of new verifiers (PostgreSQL's).
pub const SALT_LEN: usize = 16;

/// A SCRAM-SHA-256 verifier: what is stored for a role with a password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// The salt the password was hashed with.
    pub salt: Vec<u8>,
    /// `SHA-256(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: [u8; 32],
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: [u8; 32],
}

impl fmt::Debug for ScramVerifier {
    // Keys are not secrets in the plain sense, but they are password-equivalent for offline
    // guessing: keep them out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramVerifier")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

type HmacSha256 = Hmac<Sha256>;

/// `HMAC-SHA-256(key, parts...)`.
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    to_array(&mac.finalize().into_bytes())
}

fn to_array(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(bytes);
    out
}

/// PBKDF2-HMAC-SHA-256 with one output block: SCRAM's `Hi(password, salt, iterations)`.
fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let keyed =
        <HmacSha256 as KeyInit>::new_from_slice(password).expect("HMAC takes any key length");
    let mut mac = keyed.clone();
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u = to_array(&mac.finalize().into_bytes());
    let mut result = u;
    for _ in 1..iterations {
        let mut mac = keyed.clone();
        mac.update(&u);
        u = to_array(&mac.finalize().into_bytes());
        for (r, x) in result.iter_mut().zip(u.iter()) {
            *r ^= x;
        }
    }
    result
}

impl ScramVerifier {
    /// The verifier of `password` with the given salt and iteration count.
    ///
    /// The password is used as its UTF-8 bytes (PostgreSQL applies SASLprep first, which
    /// leaves ASCII passwords unchanged).
    pub fn from_password(password: &str, salt: &[u8], iterations: u32) -> Self {
        let salted = salted_password(password.as_bytes(), salt, iterations.max(1));
        let client_key = hmac(&salted, &[b"Client Key"]);
        Self {
            iterations: iterations.max(1),
            salt: salt.to_vec(),
            stored_key: to_array(&Sha256::digest(client_key)),
            server_key: hmac(&salted, &[b"Server Key"]),
        }
    }

    /// The verifier of `password` with a fresh random salt and [`DEFAULT_ITERATIONS`].
    pub fn generate(password: &str) -> Result<Self> {
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(|e| {
            Error::Data(
                SqlState::InternalError,
                format!("cannot generate a password salt: {e}"),
            )
        })?;
        Ok(Self::from_password(password, &salt, DEFAULT_ITERATIONS))
    }

    /// Parses a verifier in PostgreSQL's text form; `None` when `text` is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix(SCRAM_SHA_256)?.strip_prefix('$')?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        let iterations: u32 = iterations.parse().ok().filter(|i| *i > 0)?;
        let salt = BASE64.decode(salt).ok().filter(|s| !s.is_empty())?;
        let key = |s: &str| -> Option<[u8; 32]> {
            let bytes = BASE64.decode(s).ok()?;
            (bytes.len() == 32).then(|| to_array(&bytes))
        };
        Some(Self {
            iterations,
            salt,
            stored_key: key(stored)?,
            server_key: key(server)?,
        })
    }

    /// Whether `password` is the password this verifier was made from.
    pub fn matches_password(&self, password: &str) -> bool {
        let other = Self::from_password(password, &self.salt, self.iterations);
        constant_time_eq(&other.stored_key, &self.stored_key)
            && constant_time_eq(&other.server_key, &self.server_key)
    }

    /// Checks a client's SCRAM `ClientProof` for `auth_message` (RFC 5802 section 3:
    /// `client-first-message-bare + "," + server-first-message + "," +
    /// client-final-message-without-proof`).
    pub fn verify_client_proof(&self, auth_message: &[u8], client_proof: &[u8]) -> bool {
        if client_proof.len() != 32 {
            return false;
        }
        let signature = hmac(&self.stored_key, &[auth_message]);
        let client_key: Vec<u8> = client_proof
            .iter()
            .zip(signature.iter())
            .map(|(p, s)| p ^ s)
            .collect();
        constant_time_eq(&Sha256::digest(&client_key), &self.stored_key)
    }

    /// The `ServerSignature` the server sends in its final message, proving it knows the
    /// verifier.
    pub fn server_signature(&self, auth_message: &[u8]) -> [u8; 32] {
        hmac(&self.server_key, &[auth_message])
    }
}

impl fmt::Display for ScramVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCRAM_SHA_256}${}:{}${}:{}",
            self.iterations,
            BASE64.encode(&self.salt),
            BASE64.encode(self.stored_key),
            BASE64.encode(self.server_key)
        )
    }
}

/// Compares two byte strings in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SET password_encryption = 'scram-sha-256'; CREATE ROLE x PASSWORD 'pw'` in
    /// PostgreSQL 15, then `SELECT rolpassword FROM pg_authid WHERE rolname = 'x'`.
    const PG_PW: &str = "SCRAM-SHA-256$4096:qSpBLLLNui8W//hgpKkRfg==$cjQSPh3laBga/Dqk/DH2YD4/hS54JeB4X+HN9IsIlS8=:fTYDljNYoepzt8sHeuA+BtY3Q9pn46N3aneAzZLzRfk=";
    /// The same for the password `correct horse $battery' staple`.
    const PG_LONG: &str = "SCRAM-SHA-256$4096:KQCESmFHelklzvRvcAzbIw==$Igfsmx0zij2pQWglFeg52NKvAbj20TbCmG9kBJ2+0E4=:yM+j1f4+FD03bBvlK6wmTdtQj/eu+VvikutlmAQd3Q0=";

    #[test]
    fn recomputes_postgresql_verifiers() {
        for (text, password) in [(PG_PW, "pw"), (PG_LONG, "correct horse $battery' staple")] {
            let parsed = ScramVerifier::parse(text).expect("a PostgreSQL verifier parses");
            assert_eq!(parsed.iterations, 4096);
            assert_eq!(parsed.salt.len(), 16);
            let ours = ScramVerifier::from_password(password, &parsed.salt, parsed.iterations);
            assert_eq!(ours, parsed, "keys of {password:?}");
            assert_eq!(ours.to_string(), text);
            assert!(parsed.matches_password(password));
            assert!(!parsed.matches_password("wrong"));
        }
    }

    #[test]
    fn generated_verifiers_have_random_salts_and_parse_back() {
        let a = ScramVerifier::generate("secret").unwrap();
        let b = ScramVerifier::generate("secret").unwrap();
        assert_ne!(a.salt, b.salt);
        assert_eq!(a.salt.len(), SALT_LEN);
        assert_eq!(a.iterations, DEFAULT_ITERATIONS);
        assert_eq!(ScramVerifier::parse(&a.to_string()), Some(a.clone()));
        assert!(a.matches_password("secret") && b.matches_password("secret"));
        assert!(!a.to_string().contains("secret"));
    }

    #[test]
    fn malformed_verifiers_do_not_parse() {
        for bad in [
            "",
            "pw",
            "SCRAM-SHA-256$",
            "SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA",
            "SCRAM-SHA-256$0:qSpBLLLNui8W//hgpKkRfg==$cjQSPh3laBga/Dqk/DH2YD4/hS54JeB4X+HN9IsIlS8=:fTYDljNYoepzt8sHeuA+BtY3Q9pn46N3aneAzZLzRfk=",
            "SCRAM-SHA-256$4096:!!$cjQSPh3laBga/Dqk/DH2YD4/hS54JeB4X+HN9IsIlS8=:fTYDljNYoepzt8sHeuA+BtY3Q9pn46N3aneAzZLzRfk=",
            "SCRAM-SHA-1$4096:qSpBLLLNui8W//hgpKkRfg==$cjQSPh3laBga/Dqk/DH2YD4/hS54JeB4X+HN9IsIlS8=:fTYDljNYoepzt8sHeuA+BtY3Q9pn46N3aneAzZLzRfk=",
        ] {
            assert!(ScramVerifier::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_client_proof_made_from_the_password_verifies() {
        // The client side of RFC 5802, from the password.
        let v = ScramVerifier::parse(PG_PW).unwrap();
        let salted = salted_password(b"pw", &v.salt, v.iterations);
        let client_key = hmac(&salted, &[b"Client Key"]);
        let auth_message = b"n=,r=abc,r=abcdef,s=c2FsdA==,i=4096,c=biws,r=abcdef";
        let signature = hmac(&Sha256::digest(client_key), &[auth_message]);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature.iter())
            .map(|(k, s)| k ^ s)
            .collect();
        assert!(v.verify_client_proof(auth_message, &proof));
        assert!(!v.verify_client_proof(b"another message", &proof));
        let server_key = hmac(&salted, &[b"Server Key"]);
        assert_eq!(
            v.server_signature(auth_message),
            hmac(&server_key, &[auth_message])
        );
    }
}
