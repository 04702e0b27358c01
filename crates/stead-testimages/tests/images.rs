//! The built tarballs: their docker-save structure, their contents, their reproducibility, and
//! (as root) that the programs in them really run from the extracted layer in a chroot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use stead_testimages::host::shared_libraries;
use stead_testimages::images::{NGINX, REDIS_CLI, REDIS_SERVER};
use stead_testimages::tree::{MTIME, sha256_digest};
use stead_testimages::{BuiltImage, TestImage, build_all, ensure_built};

/// Every image, built once per input content for all tests of the run.
fn built(image: TestImage) -> BuiltImage {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stead-testimages");
    ensure_built(&cache)
        .expect("build the test images")
        .into_iter()
        .find(|b| b.image == image)
        .expect("every image is built")
}

/// A docker-save tarball taken apart.
struct Tarball {
    manifest: Value,
    config_name: String,
    config: Vec<u8>,
    layer_name: String,
    layer: Vec<u8>,
}

fn open(path: &Path) -> Tarball {
    let bytes = std::fs::read(path).unwrap();
    let mut files = BTreeMap::new();
    for entry in tar::Archive::new(bytes.as_slice()).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        files.insert(name, data);
    }
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let config_name = manifest[0]["Config"].as_str().unwrap().to_owned();
    let layers = manifest[0]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "one layer per image");
    let layer_name = layers[0].as_str().unwrap().to_owned();
    Tarball {
        config: files[&config_name].clone(),
        layer: files[&layer_name].clone(),
        manifest,
        config_name,
        layer_name,
    }
}

/// One entry of a layer.
#[derive(Debug, Clone)]
enum Entry {
    Dir(u32),
    File(u32, Vec<u8>),
    Link(String),
}

fn layer_entries(layer: &[u8]) -> BTreeMap<String, Entry> {
    let mut entries = BTreeMap::new();
    for entry in tar::Archive::new(layer).entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_owned();
        let mode = entry.header().mode().unwrap();
        let value = match entry.header().entry_type() {
            tar::EntryType::Directory => Entry::Dir(mode),
            tar::EntryType::Symlink => Entry::Link(
                entry
                    .link_name()
                    .unwrap()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            ),
            tar::EntryType::Regular => {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
                Entry::File(mode, data)
            }
            other => panic!("{path}: unexpected entry type {other:?}"),
        };
        entries.insert(path, value);
    }
    entries
}

/// Resolves an absolute path inside the layer the way the kernel would inside the container,
/// returning the final entry's path.
fn resolve(entries: &BTreeMap<String, Entry>, path: &str) -> Option<String> {
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .rev()
        .collect();
    let mut current: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(component) = pending.pop() {
        match component.as_str() {
            "." => continue,
            ".." => {
                current.pop();
                continue;
            }
            _ => {}
        }
        current.push(component);
        let here = current.join("/");
        match entries.get(&here)? {
            Entry::Link(target) => {
                hops += 1;
                assert!(hops < 40, "symlink loop at {path}");
                current.pop();
                if target.starts_with('/') {
                    current.clear();
                }
                pending.extend(
                    target
                        .split('/')
                        .filter(|c| !c.is_empty())
                        .map(String::from)
                        .rev(),
                );
            }
            Entry::Dir(_) | Entry::File(..) => {}
        }
    }
    Some(current.join("/"))
}

fn file_at<'a>(entries: &'a BTreeMap<String, Entry>, path: &str) -> &'a [u8] {
    let resolved = resolve(entries, path).unwrap_or_else(|| panic!("{path} is not in the layer"));
    match &entries[&resolved] {
        Entry::File(_, data) => data,
        other => panic!("{path} resolves to {resolved}: {other:?}, not a file"),
    }
}

#[test]
fn every_tarball_is_a_docker_save_image_carrying_its_names() {
    for image in TestImage::ALL {
        let built = built(image);
        let tarball = open(&built.path);
        let names: Vec<&str> = tarball.manifest[0]["RepoTags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(names, image.names());
        assert_eq!(built.names, image.names());

        let config_id = sha256_digest(&tarball.config);
        assert_eq!(tarball.config_name, format!("{}.json", &config_id[7..]));
        assert_eq!(built.id, config_id);
        let diff_id = sha256_digest(&tarball.layer);
        assert_eq!(tarball.layer_name, format!("{}/layer.tar", &diff_id[7..]));

        let config: Value = serde_json::from_slice(&tarball.config).unwrap();
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["rootfs"]["type"], "layers");
        assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!([diff_id]));
        let run = &config["config"];
        let path_env = run["Env"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|e| e.as_str()?.strip_prefix("PATH="));
        assert!(
            path_env.unwrap().split(':').any(|d| d == "/bin"),
            "{image:?}: {run}"
        );
        assert_eq!(run["User"], "");
        let (cmd, entrypoint, working_dir, port) = match image {
            TestImage::Busybox => (serde_json::json!(["sh"]), Value::Null, "", None),
            TestImage::Nginx => (
                serde_json::json!(["nginx", "-g", "daemon off;"]),
                Value::Null,
                "",
                Some("80/tcp"),
            ),
            TestImage::Redis => (
                serde_json::json!(["redis-server"]),
                serde_json::json!(["/usr/local/bin/docker-entrypoint.sh"]),
                "/data",
                Some("6379/tcp"),
            ),
        };
        assert_eq!(run["Cmd"], cmd, "{image:?}");
        assert_eq!(run["Entrypoint"], entrypoint, "{image:?}");
        assert_eq!(run["WorkingDir"], working_dir, "{image:?}");
        match port {
            Some(port) => assert!(run["ExposedPorts"][port].is_object(), "{image:?}: {run}"),
            None => assert!(run.get("ExposedPorts").is_none(), "{image:?}: {run}"),
        }
    }
}

#[test]
fn layers_are_sorted_root_owned_and_stamped_with_the_fixed_time() {
    for image in TestImage::ALL {
        let tarball = open(&built(image).path);
        let mut previous = String::new();
        for entry in tar::Archive::new(tarball.layer.as_slice())
            .entries()
            .unwrap()
        {
            let entry = entry.unwrap();
            let header = entry.header();
            let path = entry
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_owned();
            assert_eq!(
                (header.uid().unwrap(), header.gid().unwrap()),
                (0, 0),
                "{path}"
            );
            assert_eq!(header.mtime().unwrap(), MTIME, "{path}");
            assert!(previous < path, "{previous} listed before {path}");
            previous = path;
        }
    }
}

#[test]
fn busybox_image_has_sh_and_every_applet_the_walkthroughs_use() {
    let tarball = open(&built(TestImage::Busybox).path);
    let entries = layer_entries(&tarball.layer);
    let busybox = std::fs::read("/bin/busybox").unwrap();
    for applet in [
        "sh", "nslookup", "wget", "ping", "hostname", "httpd", "sleep", "cat", "echo", "nc",
    ] {
        assert!(
            file_at(&entries, &format!("/bin/{applet}")) == busybox.as_slice(),
            "/bin/{applet} is not busybox"
        );
    }
    let binary = resolve(&entries, "/bin/busybox").unwrap();
    assert_eq!(resolve(&entries, "/bin/sh").as_ref(), Some(&binary));
    assert!(
        matches!(entries[&binary], Entry::File(mode, _) if mode & 0o111 == 0o111),
        "{binary} is executable"
    );
    let passwd = String::from_utf8(file_at(&entries, "/etc/passwd").to_vec()).unwrap();
    assert!(
        passwd.lines().any(|l| l.starts_with("root:x:0:0:")),
        "{passwd}"
    );
    assert!(
        passwd.lines().any(|l| l.starts_with("nobody:x:65534:")),
        "{passwd}"
    );
    let group = String::from_utf8(file_at(&entries, "/etc/group").to_vec()).unwrap();
    assert!(group.lines().any(|l| l.starts_with("root:x:0:")), "{group}");
    assert!(
        matches!(entries["tmp"], Entry::Dir(0o1777)),
        "{:?}",
        entries["tmp"]
    );
    assert!(matches!(entries["root"], Entry::Dir(_)));
}

/// Every library `ldd` lists for `binary` resolves in the layer to the host's bytes.
fn assert_has_binary_and_libraries(entries: &BTreeMap<String, Entry>, binary: &str) {
    assert!(
        file_at(entries, binary) == std::fs::read(binary).unwrap().as_slice(),
        "{binary}"
    );
    let libraries = shared_libraries(Path::new(binary)).unwrap();
    assert!(
        libraries
            .iter()
            .any(|l| l.ends_with("ld-linux-x86-64.so.2")),
        "ldd lists the loader: {libraries:?}"
    );
    for library in libraries {
        let host = std::fs::read(&library).unwrap();
        assert!(
            file_at(entries, library.to_str().unwrap()) == host.as_slice(),
            "{binary} needs {}",
            library.display()
        );
    }
}

#[test]
fn nginx_image_has_the_binary_every_library_and_upstreams_layout() {
    let tarball = open(&built(TestImage::Nginx).path);
    let entries = layer_entries(&tarball.layer);
    assert_has_binary_and_libraries(&entries, NGINX);
    assert!(!file_at(&entries, "/lib64/ld-linux-x86-64.so.2").is_empty());
    assert!(file_at(&entries, "/bin/sh") == std::fs::read("/bin/busybox").unwrap().as_slice());
    assert!(matches!(&entries["var/log/nginx/access.log"], Entry::Link(t) if t == "/dev/stdout"));
    assert!(matches!(&entries["var/log/nginx/error.log"], Entry::Link(t) if t == "/dev/stderr"));
    let index =
        String::from_utf8(file_at(&entries, "/usr/share/nginx/html/index.html").to_vec()).unwrap();
    assert!(index.contains("Welcome to nginx"), "{index}");
    let passwd = String::from_utf8(file_at(&entries, "/etc/passwd").to_vec()).unwrap();
    assert!(passwd.lines().any(|l| l.starts_with("nginx:")), "{passwd}");
    assert!(
        passwd.lines().any(|l| l.starts_with("www-data:")),
        "{passwd}"
    );
}

#[test]
fn redis_image_has_both_binaries_and_their_libraries() {
    let tarball = open(&built(TestImage::Redis).path);
    let entries = layer_entries(&tarball.layer);
    assert_has_binary_and_libraries(&entries, REDIS_SERVER);
    assert_has_binary_and_libraries(&entries, REDIS_CLI);
    assert!(matches!(entries["data"], Entry::Dir(_)));
    let conf = String::from_utf8(file_at(&entries, "/etc/redis/redis.conf").to_vec()).unwrap();
    for line in ["protected-mode no", "dir /data", "bind * -::*"] {
        assert!(
            conf.lines().any(|l| l == line),
            "{line} missing from {conf}"
        );
    }
}

#[test]
fn building_twice_gives_identical_bytes_and_matches_the_cache() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let a = build_all(first.path()).unwrap();
    let b = build_all(second.path()).unwrap();
    assert_eq!(a.len(), TestImage::ALL.len());
    for ((a, b), image) in a.iter().zip(&b).zip(TestImage::ALL) {
        let bytes = std::fs::read(&a.path).unwrap();
        assert!(
            bytes == std::fs::read(&b.path).unwrap(),
            "{image:?} differs between builds"
        );
        assert!(
            bytes == std::fs::read(built(image).path).unwrap(),
            "{image:?} differs from the cached build"
        );
        assert_eq!(a.id, b.id);
    }
}

#[test]
fn ensure_built_builds_once_per_input() {
    let cache = tempfile::tempdir().unwrap();
    let first = ensure_built(cache.path()).unwrap();
    let modified: Vec<_> = first
        .iter()
        .map(|b| std::fs::metadata(&b.path).unwrap().modified().unwrap())
        .collect();
    let second = ensure_built(cache.path()).unwrap();
    assert_eq!(first, second);
    for (built, modified) in second.iter().zip(modified) {
        assert_eq!(
            std::fs::metadata(&built.path).unwrap().modified().unwrap(),
            modified,
            "{} was rebuilt",
            built.path.display()
        );
    }
    let dirs: Vec<PathBuf> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "one key directory: {dirs:?}");
}

// ---- running the programs from the extracted layer --------------------------------------------

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The image's layer unpacked into a fresh directory.
fn extract(image: TestImage) -> tempfile::TempDir {
    let tarball = open(&built(image).path);
    let root = tempfile::tempdir().unwrap();
    let mut archive = tar::Archive::new(tarball.layer.as_slice());
    archive.set_preserve_permissions(true);
    archive.unpack(root.path()).unwrap();
    root
}

/// Runs `script` with the image's `/bin/sh` inside `root`, in a private mount namespace with the
/// host's /dev bound and a fresh /proc (as a runtime would provide), and — when `own_network` —
/// in a new network namespace with only loopback.
fn run_in(root: &Path, script: &str, own_network: bool) -> Output {
    let root = root.to_str().unwrap();
    let inner = format!(
        "mount --bind /dev {root}/dev && mount -t proc proc {root}/proc && \
         exec /usr/sbin/chroot {root} /bin/sh -c \"$0\""
    );
    let mut command = Command::new("unshare");
    command.arg("--mount");
    if own_network {
        command.arg("--net");
    }
    command
        .args(["--", "/bin/sh", "-c", &inner, script])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
    command.output().expect("run unshare")
}

fn ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "exit {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn busybox_shell_and_applets_run_from_the_layer() {
    if !is_root() {
        eprintln!("skipped: chroot needs root");
        return;
    }
    let root = extract(TestImage::Busybox);
    // Each applet through its own link (argv[0] picks the applet), not the shell's builtins.
    let script = "/bin/echo ok; \
        for a in nslookup wget ping hostname httpd sleep cat nc; do \
            /bin/$a --help 2>&1 | grep -o \"^Usage: $a\"; done; \
        /bin/cat /etc/passwd | /bin/grep -c '^root:'";
    let out = ok(&run_in(root.path(), script, false));
    let lines: Vec<&str> = out.lines().collect();
    let mut expected = vec!["ok".to_owned()];
    for applet in [
        "nslookup", "wget", "ping", "hostname", "httpd", "sleep", "cat", "nc",
    ] {
        expected.push(format!("Usage: {applet}"));
    }
    expected.push("1".to_owned());
    assert_eq!(lines, expected, "{out}");
}

#[test]
fn nginx_config_test_passes_and_it_serves_its_index_from_the_layer() {
    if !is_root() {
        eprintln!("skipped: chroot and namespaces need root");
        return;
    }
    let root = extract(TestImage::Nginx);
    let check = run_in(root.path(), "nginx -t 2>&1", false);
    assert!(ok(&check).contains("test is successful"), "{}", ok(&check));
    // A private network namespace: port 80 exists only there.
    // The image's own command, in the foreground, stopped the graceful way.
    let script = "ip link set lo up || exit 6; nginx -g 'daemon off;' & \
        i=0; until out=$(wget -q -O - http://127.0.0.1/); do i=$((i+1)); [ $i -lt 100 ] || exit 7; sleep 0.1; done; \
        echo \"$out\"; nginx -s quit && wait";
    let served = ok(&run_in(root.path(), script, true));
    assert!(served.contains("Welcome to nginx"), "{served}");
}

#[test]
fn redis_server_and_cli_run_from_the_layer_with_the_images_config() {
    if !is_root() {
        eprintln!("skipped: chroot needs root");
        return;
    }
    let root = extract(TestImage::Redis);
    let versions = ok(&run_in(
        root.path(),
        "redis-server --version && redis-cli --version",
        false,
    ));
    assert!(versions.contains("Redis server v="), "{versions}");
    assert!(versions.contains("redis-cli "), "{versions}");
    // The default command through the entrypoint, on a unix socket in a private network namespace.
    let script = "cd /data && docker-entrypoint.sh redis-server --port 0 --unixsocket /tmp/r.sock --daemonize yes && \
        i=0; until [ -S /tmp/r.sock ]; do i=$((i+1)); [ $i -lt 100 ] || exit 7; sleep 0.1; done; \
        c='redis-cli -s /tmp/r.sock'; $c set name stead >/dev/null && $c get name && \
        $c config get protected-mode && $c config get dir && $c shutdown";
    let out = ok(&run_in(root.path(), script, true));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["stead", "protected-mode", "no", "dir", "/data"],
        "{out}"
    );
    assert!(
        root.path().join("data/appendonlydir").is_dir(),
        "data is written to /data"
    );
}
