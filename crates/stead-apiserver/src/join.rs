//! The server's side of joining node agents: the join token file `<data-dir>/agent-token`
//! (format in [`stead_api::join`]), kept across restarts and re-made when the CA changes.
//!
//! The file holds one line, `K10<sha256 of ca.crt>::node:<secret>`, owner-only (0600): give it
//! to `stead agent --token-file`. The API server accepts the secret as a bearer token for the
//! identity [`NODE_IDENTITY`] in group [`NODES_GROUP`], and presents it to node APIs when it
//! forwards logs, exec, attach and port-forward ([`crate::app::App::node_token`]).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use stead_api::join::{JoinToken, NODE_IDENTITY, NODES_GROUP};

use crate::app::Identity;

/// The token file's name under the data dir.
pub const TOKEN_FILE: &str = "agent-token";

/// Reads `<dir>/agent-token`, or writes a new one (fresh secret) when it is missing,
/// unreadable as a token, or names another CA than `ca_pem`. Written atomically, mode 0600.
pub fn load_or_create(dir: &Path, ca_pem: &str) -> std::io::Result<JoinToken> {
    let path = dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            if let Ok(token) = text.parse::<JoinToken>()
                && token.matches_ca(ca_pem.as_bytes())
            {
                return Ok(token);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let token = JoinToken::new(ca_pem.as_bytes(), secret);
    let tmp = dir.join(format!("{TOKEN_FILE}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(format!("{token}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(token)
}

/// Who a request bearing the join secret is.
pub fn node_identity() -> Identity {
    Identity {
        user: NODE_IDENTITY.into(),
        groups: vec![NODES_GROUP.into(), "system:authenticated".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn the_token_is_made_once_owner_only_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), CA).unwrap();
        let path = dir.path().join(TOKEN_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(first.matches_ca(CA.as_bytes()));
        assert_eq!(load_or_create(dir.path(), CA).unwrap(), first);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.parse::<JoinToken>().unwrap(), first);
    }

    #[test]
    fn a_new_ca_or_a_damaged_file_gets_a_new_token() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), CA).unwrap();
        let other_ca = CA.replace("MIIB", "MIIC");
        let second = load_or_create(dir.path(), &other_ca).unwrap();
        assert!(second.matches_ca(other_ca.as_bytes()));
        assert_ne!(second.secret, first.secret);
        std::fs::write(dir.path().join(TOKEN_FILE), "garbage").unwrap();
        let third = load_or_create(dir.path(), &other_ca).unwrap();
        assert_ne!(third.secret, second.secret);
    }
}
