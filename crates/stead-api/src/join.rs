//! The join token a node agent presents to join a server (`stead agent --token-file`), shaped
//! like k3s' secure tokens: `K10<ca-hash>::node:<secret>`.
//!
//! - `<ca-hash>` is the lowercase hex SHA-256 of the server's CA certificate in PEM, exactly as
//!   the server serves it at `/cacerts`. The agent fetches that document without trusting the
//!   connection, and accepts the server only if the hash matches; from then on it verifies the
//!   server's certificate against that CA. So the token alone pins the server's identity.
//! - `<secret>` is the bearer token both ways: the agent authenticates to the API server with
//!   it (as a member of `system:nodes`), and the API server presents it to node agents when it
//!   forwards logs, exec, attach and port-forward to them.
//!
//! Pure: parsing, rendering and the hash; the server writes the token, the agent reads it.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The version prefix of the token format.
const PREFIX: &str = "K10";
/// The user name the secret stands for.
pub const NODE_USER: &str = "node";
/// The identity the API server gives a request that bears the secret.
pub const NODE_IDENTITY: &str = "system:node:stead-agent";
/// The group of that identity.
pub const NODES_GROUP: &str = "system:nodes";
/// Secrets shorter than this are refused (the server makes 64 hex digits).
const MIN_SECRET_LEN: usize = 32;

/// A parsed join token.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// Lowercase hex SHA-256 of the server's CA certificate (PEM).
    pub ca_hash: String,
    /// The shared bearer secret.
    pub secret: String,
}

/// Why a token does not parse. Messages are lower-case and never repeat the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinTokenError {
    #[error("the join token is empty")]
    Empty,
    #[error("the join token does not start with {PREFIX}")]
    Prefix,
    #[error("the join token has no ::node: separator")]
    Separator,
    #[error("the join token's CA hash is not 64 hex digits")]
    Hash,
    #[error(
        "the join token's secret is shorter than {MIN_SECRET_LEN} characters or not alphanumeric"
    )]
    Secret,
}

/// Lowercase hex SHA-256 of `pem`.
pub fn ca_hash(pem: &[u8]) -> String {
    Sha256::digest(pem)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl JoinToken {
    /// The token for the CA `ca_pem` and `secret`.
    pub fn new(ca_pem: &[u8], secret: impl Into<String>) -> JoinToken {
        JoinToken {
            ca_hash: ca_hash(ca_pem),
            secret: secret.into(),
        }
    }

    /// Whether `ca_pem` is the CA this token names. Compares every byte (no early exit).
    pub fn matches_ca(&self, ca_pem: &[u8]) -> bool {
        let got = ca_hash(ca_pem);
        got.len() == self.ca_hash.len()
            && got
                .bytes()
                .zip(self.ca_hash.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}::{NODE_USER}:{}", self.ca_hash, self.secret)
    }
}

/// Never prints the secret.
impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinToken")
            .field("ca_hash", &self.ca_hash)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl FromStr for JoinToken {
    type Err = JoinTokenError;

    /// Parses a token; surrounding whitespace (a file's trailing newline) is ignored.
    fn from_str(s: &str) -> Result<JoinToken, JoinTokenError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(JoinTokenError::Empty);
        }
        let rest = s.strip_prefix(PREFIX).ok_or(JoinTokenError::Prefix)?;
        let (hash, secret) = rest
            .split_once(&format!("::{NODE_USER}:"))
            .ok_or(JoinTokenError::Separator)?;
        let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        if hash.len() != 64 || !hash.chars().all(hex) {
            return Err(JoinTokenError::Hash);
        }
        if secret.len() < MIN_SECRET_LEN || !secret.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(JoinTokenError::Secret);
        }
        Ok(JoinToken {
            ca_hash: hash.to_string(),
            secret: secret.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &[u8] = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_renders_and_parses_back() {
        let t = JoinToken::new(CA, SECRET);
        let text = t.to_string();
        assert!(text.starts_with("K10"), "{text}");
        assert!(text.ends_with(&format!("::node:{SECRET}")), "{text}");
        assert_eq!(format!("{text}\n").parse::<JoinToken>(), Ok(t));
    }

    #[test]
    fn the_hash_is_the_sha256_of_the_pem() {
        // sha256("abc"), the FIPS 180-2 test vector.
        assert_eq!(
            ca_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn only_the_named_ca_matches() {
        let t = JoinToken::new(CA, SECRET);
        assert!(t.matches_ca(CA));
        let mut other = CA.to_vec();
        other[30] ^= 1;
        assert!(!t.matches_ca(&other));
        assert!(!t.matches_ca(b""));
    }

    #[test]
    fn malformed_tokens_are_refused_with_a_reason() {
        let hash = ca_hash(CA);
        let cases = [
            ("", JoinTokenError::Empty),
            ("  \n", JoinTokenError::Empty),
            (&format!("K11{hash}::node:{SECRET}"), JoinTokenError::Prefix),
            (
                &format!("K10{hash}:node:{SECRET}"),
                JoinTokenError::Separator,
            ),
            (&format!("K10{hash}::{SECRET}"), JoinTokenError::Separator),
            (
                &format!("K10{}::node:{SECRET}", &hash[1..]),
                JoinTokenError::Hash,
            ),
            (
                &format!("K10{}::node:{SECRET}", hash.to_uppercase()),
                JoinTokenError::Hash,
            ),
            (&format!("K10{hash}::node:short"), JoinTokenError::Secret),
            (
                &format!("K10{hash}::node:{SECRET} with spaces"),
                JoinTokenError::Secret,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<JoinToken>(), Err(want), "{text:?}");
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let t = JoinToken::new(CA, SECRET);
        assert!(!format!("{t:?}").contains(SECRET));
    }
}
