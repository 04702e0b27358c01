//! Resolving a container's `user` (`uid`, `uid:gid`, `name`, `name:group`) against the
//! container's own `/etc/passwd` and `/etc/group`, the way runc does.

use std::fs;
use std::path::Path;

/// `(uid, gid, supplementary gids, home)` for `user` inside `root`. No user means root. A
/// numeric uid missing from `/etc/passwd` is fine (gid 0, home `/`); a name must exist.
pub fn resolve_user(
    user: Option<&str>,
    root: &Path,
) -> Result<(u32, u32, Vec<u32>, String), String> {
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    let group = fs::read_to_string(root.join("etc/group")).unwrap_or_default();
    let spec = user.unwrap_or("0").trim();
    let spec = if spec.is_empty() { "0" } else { spec };
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    // passwd: name:x:uid:gid:gecos:home:shell
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 7)
        .collect();
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => entries.iter().find(|f| f[2].parse() == Ok(uid)),
        Err(_) => Some(entries.iter().find(|f| f[0] == user_part).ok_or_else(|| {
            format!("unable to find user {user_part}: no matching entries in passwd file")
        })?),
    };
    let uid = match user_part.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => entry.and_then(|f| f[2].parse().ok()).unwrap_or(0),
    };
    let mut gid = entry.and_then(|f| f[3].parse().ok()).unwrap_or(0);
    let home = entry
        .map(|f| f[5].to_string())
        .unwrap_or_else(|| "/".into());
    // group: name:x:gid:member,member
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 4)
        .collect();
    if let Some(g) = group_part {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        };
    }
    let name = entry.map(|f| f[0]).unwrap_or("");
    let supplementary = groups
        .iter()
        .filter(|f| !name.is_empty() && f[3].split(',').any(|m| m == name))
        .filter_map(|f| f[2].parse().ok())
        .filter(|&g: &u32| g != gid)
        .collect();
    Ok((uid, gid, supplementary, home))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("etc")).unwrap();
        fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nwww:x:33:\nstaff:x:50:www\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn names_resolve_through_the_container_passwd_and_group_files() {
        let dir = root();
        assert_eq!(
            resolve_user(Some("www"), dir.path()).unwrap(),
            (33, 33, vec![50], "/var/www".into())
        );
        assert_eq!(
            resolve_user(Some("www:staff"), dir.path()).unwrap(),
            (33, 50, vec![], "/var/www".into())
        );
        assert_eq!(
            resolve_user(None, dir.path()).unwrap(),
            (0, 0, vec![], "/root".into())
        );
    }

    #[test]
    fn unknown_numeric_ids_are_used_as_they_are_and_unknown_names_fail() {
        let dir = root();
        assert_eq!(
            resolve_user(Some("1000:1000"), dir.path()).unwrap(),
            (1000, 1000, vec![], "/".into())
        );
        assert!(resolve_user(Some("nobody"), dir.path()).is_err());
    }
}
