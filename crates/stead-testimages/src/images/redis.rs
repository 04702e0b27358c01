//! The redis image: Debian's `redis-server` and `redis-cli` with their libraries, busybox, and an
//! entrypoint that starts the server the way the upstream image does.
//!
//! `Entrypoint ["/usr/local/bin/docker-entrypoint.sh"]`, `Cmd ["redis-server"]`, working directory `/data`. The
//! entrypoint runs a plain `redis-server` (with or without `--options`) from
//! `/etc/redis/redis.conf`: listen on every address, protected mode off (upstream builds it off),
//! in the foreground, logging to stdout, data in `/data` (where the walkthroughs mount their
//! volume). Unlike upstream, writes also go to an append-only file synced on every write, so a
//! value set with `redis-cli` survives a pod deleted right afterwards even if the server never
//! saves on the way down. The server runs as root (upstream drops to user `redis`), so a freshly
//! provisioned volume needs no chown.

use std::path::Path;

use crate::docker_save::RunConfig;
use crate::error::Result;
use crate::host::{mirror_with_libraries, require};
use crate::images::base::{PATH_ENV, User, add_busybox, root_layout};
use crate::tree::Tree;

/// The binaries, at the paths Debian installs them, and their packages.
pub const REDIS_SERVER: &str = "/usr/bin/redis-server";
pub const SERVER_PACKAGE: &str = "redis-server";
pub const REDIS_CLI: &str = "/usr/bin/redis-cli";
pub const CLI_PACKAGE: &str = "redis-tools";

const REDIS_CONF: &str = "\
# stead test image: listen everywhere like the upstream image, data in /data.
bind * -::*
protected-mode no
port 6379
daemonize no
logfile \"\"
dir /data
appendonly yes
appendfsync always
";

/// Upstream's entrypoint behaviour, minus the user switch: options or a config file alone run
/// redis-server with them; a plain `redis-server [--options]` gets the image's config first.
const ENTRYPOINT: &str = r#"#!/bin/sh
set -e
case "$1" in
  -*|*.conf) set -- redis-server "$@" ;;
esac
if [ "$1" = redis-server ]; then
  case "$2" in
    *.conf|-v|--version|-h|--help|--test-memory|--check-system) ;;
    *) shift; set -- redis-server /etc/redis/redis.conf "$@" ;;
  esac
fi
exec "$@"
"#;

pub(crate) fn plan() -> Result<(Tree, RunConfig)> {
    require(Path::new(REDIS_SERVER), SERVER_PACKAGE)?;
    require(Path::new(REDIS_CLI), CLI_PACKAGE)?;
    let mut tree = root_layout(&[User {
        name: "redis",
        id: 999,
        home: "/data",
    }])?;
    add_busybox(&mut tree)?;
    mirror_with_libraries(&mut tree, Path::new(REDIS_SERVER))?;
    mirror_with_libraries(&mut tree, Path::new(REDIS_CLI))?;
    tree.file("etc/redis/redis.conf", 0o644, REDIS_CONF)?;
    tree.file("usr/local/bin/docker-entrypoint.sh", 0o755, ENTRYPOINT)?;
    tree.dir("data", 0o755)?;

    let run = RunConfig {
        entrypoint: vec!["/usr/local/bin/docker-entrypoint.sh".to_owned()],
        cmd: vec!["redis-server".to_owned()],
        env: vec![PATH_ENV.to_owned()],
        working_dir: "/data".to_owned(),
        exposed_ports: vec!["6379/tcp".to_owned()],
        ..RunConfig::default()
    };
    Ok((tree, run))
}
