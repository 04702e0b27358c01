//! The nginx image: Debian's nginx (from `nginx-light`) with its libraries, a configuration laid
//! out like upstream's image, and busybox.
//!
//! Like the upstream image it runs `nginx -g 'daemon off;'` in the foreground, listens on port 80,
//! serves `/usr/share/nginx/html` (a welcome `index.html`), and logs to the container's stdout and
//! stderr through `/var/log/nginx/access.log -> /dev/stdout` and `error.log -> /dev/stderr`. The
//! master runs as root, workers as user `nginx`.

use std::path::Path;

use crate::docker_save::RunConfig;
use crate::error::Result;
use crate::host::{mirror, mirror_with_libraries, require};
use crate::images::base::{PATH_ENV, User, add_busybox, root_layout};
use crate::tree::Tree;

/// The binary, at the path Debian installs it.
pub const NGINX: &str = "/usr/sbin/nginx";
/// The package to install for it (it pulls `nginx` and `nginx-common`).
pub const PACKAGE: &str = "nginx-light";
const MIME_TYPES: &str = "/etc/nginx/mime.types";

const NGINX_CONF: &str = "\
user nginx;
worker_processes auto;

error_log /var/log/nginx/error.log notice;
pid /run/nginx.pid;

events {
    worker_connections 1024;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;

    log_format main '$remote_addr - $remote_user [$time_local] \"$request\" '
                    '$status $body_bytes_sent \"$http_referer\" '
                    '\"$http_user_agent\" \"$http_x_forwarded_for\"';
    access_log /var/log/nginx/access.log main;

    sendfile on;
    keepalive_timeout 65;

    include /etc/nginx/conf.d/*.conf;
}
";

const DEFAULT_SERVER: &str = "\
server {
    listen 80;
    server_name localhost;

    location / {
        root /usr/share/nginx/html;
        index index.html index.htm;
    }

    error_page 500 502 503 504 /50x.html;
    location = /50x.html {
        root /usr/share/nginx/html;
    }
}
";

const INDEX_HTML: &str = "\
<!DOCTYPE html>
<html>
<head><title>Welcome to nginx!</title></head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and working.</p>
</body>
</html>
";

const ERROR_HTML: &str = "\
<!DOCTYPE html>
<html>
<head><title>Error</title></head>
<body><h1>An error occurred.</h1></body>
</html>
";

pub(crate) fn plan() -> Result<(Tree, RunConfig)> {
    require(Path::new(NGINX), PACKAGE)?;
    require(Path::new(MIME_TYPES), PACKAGE)?;
    let mut tree = root_layout(&[
        User {
            name: "www-data",
            id: 33,
            home: "/var/www",
        },
        User {
            name: "nginx",
            id: 101,
            home: "/nonexistent",
        },
    ])?;
    add_busybox(&mut tree)?;
    mirror_with_libraries(&mut tree, Path::new(NGINX))?;
    mirror(&mut tree, Path::new(MIME_TYPES))?;

    tree.file("etc/nginx/nginx.conf", 0o644, NGINX_CONF)?;
    tree.file("etc/nginx/conf.d/default.conf", 0o644, DEFAULT_SERVER)?;
    tree.file("usr/share/nginx/html/index.html", 0o644, INDEX_HTML)?;
    tree.file("usr/share/nginx/html/50x.html", 0o644, ERROR_HTML)?;
    tree.symlink("var/log/nginx/access.log", "/dev/stdout")?;
    tree.symlink("var/log/nginx/error.log", "/dev/stderr")?;
    // The temp paths compiled into Debian's nginx; the master chowns them to the worker user.
    for temp in ["body", "fastcgi", "proxy", "scgi", "uwsgi"] {
        tree.dir(&format!("var/lib/nginx/{temp}"), 0o755)?;
    }
    tree.dir("var/cache/nginx", 0o755)?;

    let run = RunConfig {
        cmd: ["nginx", "-g", "daemon off;"].map(String::from).to_vec(),
        env: vec![PATH_ENV.to_owned()],
        exposed_ports: vec!["80/tcp".to_owned()],
        stop_signal: Some("SIGQUIT".to_owned()),
        ..RunConfig::default()
    };
    Ok((tree, run))
}
