//! The node's pod network: one node network namespace (an nsfs bind mount under the state
//! dir) holding a bridge with the pod range's first address; each pod a veth pair from that
//! bridge to `eth0` in the pod's own namespace. A pod's links, address and route are set with
//! netlink ([`super::netlink`]) from threads that entered the namespaces; the bridge, once per
//! node, with iproute2's `ip -batch`, run inside the node namespace by the `nsexec` helper.
//! Addresses are allocated as files under `ipam/` (create-exclusive, so concurrent allocations
//! never collide; they survive agent restarts).
//!
//! Nothing here touches the host's interfaces, routes or firewall.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sched::{CloneFlags, setns};

use super::helper::HELPER_ARG;
use super::netlink::Netlink;

/// A parsed IPv4 pod range, e.g. `10.42.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("pod cidr {s:?}: want ADDR/PREFIX"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|e| format!("pod cidr {s:?}: {e}"))?;
        let prefix: u8 = prefix.parse().map_err(|e| format!("pod cidr {s:?}: {e}"))?;
        if !(8..=30).contains(&prefix) {
            return Err(format!("pod cidr {s:?}: prefix must be between 8 and 30"));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Cidr {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }
}

impl Cidr {
    /// The bridge's address: the first host address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Host addresses available to pods (after the gateway, before broadcast).
    fn pod_addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        let base = u32::from(self.network);
        let size = 1u32 << (32 - self.prefix);
        (2..size - 1).map(move |i| Ipv4Addr::from(base + i))
    }
}

/// The node network namespace and its bridge.
#[derive(Debug, Clone)]
pub struct NodeNetwork {
    pub netns: PathBuf,
    pub bridge: String,
    pub cidr: Cidr,
    helper: PathBuf,
    ipam: PathBuf,
}

impl NodeNetwork {
    /// Creates the node namespace and bridge, or adopts them when an earlier agent made them.
    /// An adopted bridge whose range differs gets the new gateway beside its old addresses
    /// (see `adopt_range`): earlier pods keep working, new pods get the new range.
    pub fn ensure(
        state_dir: &Path,
        helper: &Path,
        bridge: &str,
        cidr: Cidr,
    ) -> Result<NodeNetwork, String> {
        let dir = state_dir.join("netns");
        fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let ipam = state_dir.join("ipam");
        fs::create_dir_all(&ipam).map_err(|e| format!("create {}: {e}", ipam.display()))?;
        let net = NodeNetwork {
            netns: dir.join("node"),
            bridge: bridge.to_string(),
            cidr,
            helper: helper.to_path_buf(),
            ipam,
        };
        if !is_mount_point(&net.netns) {
            helper_command(helper, &["mknetns", &net.netns.display().to_string()]).run()?;
        }
        let has_bridge = net
            .ns_command(&["ip", "link", "show", "dev", bridge])
            .run()
            .is_ok();
        let (gw, prefix) = (cidr.gateway(), cidr.prefix);
        if has_bridge {
            // Not fatal: the pods already on the bridge keep working, and tearing a node down
            // (`SandboxRuntime::reset`) opens it without knowing its range.
            if let Err(e) = net.adopt_range() {
                tracing::warn!(bridge = %bridge, error = %e, "sandbox: adopting the node's pod range failed");
            }
        } else {
            net.ip_batch(
                &net.netns,
                &format!(
                    "link set lo up\nlink add {bridge} type bridge\naddr add {gw}/{prefix} dev {bridge}\nlink set {bridge} up\n"
                ),
            )?;
        }
        Ok(net)
    }

    /// On an adopted bridge, makes sure it holds this range's gateway address. The range
    /// changes when the node was registered anew and the control plane assigned it another
    /// `podCIDR` (or it came from a stead that used the whole `10.42.0.0/16` per node): the new
    /// gateway is added and the old addresses stay, so pods started before keep their routes
    /// and addresses until they are recreated; new pods get addresses from the new range.
    fn adopt_range(&self) -> Result<(), String> {
        let want = format!("{}/{}", self.cidr.gateway(), self.cidr.prefix);
        let out = self
            .ns_command(&["ip", "-4", "-o", "addr", "show", "dev", &self.bridge])
            .stdout(Stdio::piped())
            .output()
            .map_err(|e| format!("list bridge addresses: {e}"))?;
        let listed = String::from_utf8_lossy(&out.stdout);
        if listed.split_whitespace().any(|w| w == want) {
            return Ok(());
        }
        tracing::warn!(bridge = %self.bridge, range = %want, had = %listed.trim(), "sandbox: the node's pod range changed; pods started before keep their old addresses");
        self.ns_command(&["ip", "addr", "add", &want, "dev", &self.bridge])
            .run()
            .map_err(|e| format!("add {want} to the bridge: {e}"))
    }

    /// A command that runs `argv` inside the node network namespace (host mount namespace).
    pub fn ns_command(&self, argv: &[&str]) -> Command {
        let netns = self.netns.display().to_string();
        let mut args = vec!["nsexec", netns.as_str()];
        args.extend_from_slice(argv);
        helper_command(&self.helper, &args)
    }

    /// Runs `ip -batch -` with `script` inside the network namespace at `netns`.
    fn ip_batch(&self, netns: &Path, script: &str) -> Result<(), String> {
        let netns = netns.display().to_string();
        let mut cmd = helper_command(&self.helper, &["nsexec", &netns, "ip", "-batch", "-"]);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("run ip: {e}"))?;
        let _ = child
            .stdin
            .take()
            .expect("piped")
            .write_all(script.as_bytes());
        let out = child
            .wait_with_output()
            .map_err(|e| format!("run ip: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ip -batch in {netns}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }

    /// Allocates a pod address for `uid` (or returns the one it already holds).
    pub fn allocate(&self, uid: &str) -> Result<Ipv4Addr, String> {
        for ip in self.cidr.pod_addresses() {
            let path = self.ipam.join(ip.to_string());
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    f.write_all(uid.as_bytes())
                        .map_err(|e| format!("ipam {ip}: {e}"))?;
                    return Ok(ip);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if fs::read_to_string(&path).is_ok_and(|owner| owner == uid) {
                        return Ok(ip);
                    }
                }
                Err(e) => return Err(format!("ipam {ip}: {e}")),
            }
        }
        Err(format!(
            "pod range {}/{} is exhausted",
            self.cidr.network, self.cidr.prefix
        ))
    }

    /// Releases `ip` if `uid` holds it.
    pub fn release(&self, ip: Ipv4Addr, uid: &str) {
        let path = self.ipam.join(ip.to_string());
        if fs::read_to_string(&path).is_ok_and(|owner| owner == uid) {
            let _ = fs::remove_file(path);
        }
    }

    /// Connects the pod whose pause process is `pause_pid`: a veth pair, host end on the
    /// bridge, `eth0` with `ip` and a default route in the pod, `lo` up. Returns the host end.
    /// Netlink from two short-lived threads, one in each namespace (no process is started).
    pub fn attach_pod(&self, uid: &str, pause_pid: i32, ip: Ipv4Addr) -> Result<String, String> {
        let veth = veth_name(uid);
        let (bridge, name) = (self.bridge.clone(), veth.clone());
        in_netns(&self.netns, move || {
            let master = if_index(&bridge)?;
            Netlink::open()?.add_veth(&name, master, "eth0", pause_pid)
        })
        .map_err(|e| format!("add veth {veth}: {e}"))?;
        let (prefix, gw) = (self.cidr.prefix, self.cidr.gateway());
        in_netns(Path::new(&format!("/proc/{pause_pid}/ns/net")), move || {
            let mut nl = Netlink::open()?;
            nl.set_up(if_index("lo")?)?;
            let eth0 = if_index("eth0")?;
            nl.add_address(eth0, ip, prefix)?;
            nl.set_up(eth0)?;
            nl.add_default_route(gw, eth0)
        })
        .map_err(|e| format!("configure eth0 of pid {pause_pid}: {e}"))?;
        Ok(veth)
    }

    /// Deletes a pod's host-side veth (gone already when the pod's namespace died).
    pub fn detach_pod(&self, veth: &str) {
        let name = veth.to_string();
        let _ = in_netns(&self.netns, move || Netlink::open()?.delete_link(&name));
    }

    /// Whether a link of this name exists in the node namespace.
    pub fn link_exists(&self, name: &str) -> bool {
        let name = name.to_string();
        in_netns(&self.netns, move || if_index(&name)).is_ok()
    }
}

/// The index of the link called `name` in the calling thread's network namespace.
fn if_index(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(|e| io::Error::other(format!("link {name}: {e}")))
}

/// The host-side veth name of a pod: `vs` + 11 hex digits of a hash of its uid (15 chars max).
pub fn veth_name(uid: &str) -> String {
    // FNV-1a, 64 bit.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in uid.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x100_0000_01b3);
    }
    format!("vs{:011x}", hash & 0xfff_ffff_ffff)
}

fn helper_command(helper: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(helper);
    cmd.arg(HELPER_ARG).args(args).stdin(Stdio::null());
    cmd
}

trait RunChecked {
    fn run(&mut self) -> Result<(), String>;
}

impl RunChecked for Command {
    fn run(&mut self) -> Result<(), String> {
        let out = self
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("run {self:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{self:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

/// Whether `path` is a mount point (a line of `/proc/self/mountinfo` names it).
pub fn is_mount_point(path: &Path) -> bool {
    let target = path.display().to_string();
    mount_points().contains(&target)
}

/// Every mount point of this process's mount namespace.
pub fn mount_points() -> Vec<String> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| {
            p.replace("\\040", " ")
                .replace("\\011", "\t")
                .replace("\\012", "\n")
                .replace("\\134", "\\")
        })
        .collect()
}

/// Runs `f` on a fresh thread that entered the network namespace at `netns` (per-thread
/// `setns` is allowed; the thread ends afterwards so no other code runs in that namespace).
pub fn in_netns<T, F>(netns: &Path, f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let ns = File::open(netns)?;
    std::thread::Builder::new()
        .name("stead-netns".into())
        .spawn(move || {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            f()
        })?
        .join()
        .map_err(|_| io::Error::other("netns thread panicked"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cidr_parses_to_its_network_and_gateway() {
        let cidr: Cidr = "10.42.7.9/16".parse().unwrap();
        assert_eq!(cidr.network, Ipv4Addr::new(10, 42, 0, 0));
        assert_eq!(cidr.gateway(), Ipv4Addr::new(10, 42, 0, 1));
        assert_eq!(
            cidr.pod_addresses().next(),
            Some(Ipv4Addr::new(10, 42, 0, 2))
        );
        let small: Cidr = "192.168.9.0/30".parse().unwrap();
        assert_eq!(
            small.pod_addresses().collect::<Vec<_>>(),
            vec![Ipv4Addr::new(192, 168, 9, 2)]
        );
        assert!("10.42.0.0".parse::<Cidr>().is_err());
    }

    #[test]
    fn veth_names_fit_the_kernel_limit_and_differ_per_pod() {
        let a = veth_name("5f1c8a6e-0000-4000-8000-000000000001");
        let b = veth_name("5f1c8a6e-0000-4000-8000-000000000002");
        assert!(a.len() <= 15);
        assert_ne!(a, b);
    }

    #[test]
    fn allocation_is_stable_per_pod_and_released_addresses_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("ipam")).unwrap();
        let net = NodeNetwork {
            netns: dir.path().join("none"),
            bridge: "x".into(),
            cidr: "10.9.0.0/24".parse().unwrap(),
            helper: PathBuf::new(),
            ipam: dir.path().join("ipam"),
        };
        let a = net.allocate("a").unwrap();
        let b = net.allocate("b").unwrap();
        assert_ne!(a, b);
        assert_eq!(net.allocate("a").unwrap(), a);
        net.release(a, "b"); // not b's: kept
        assert_eq!(net.allocate("c").unwrap(), Ipv4Addr::new(10, 9, 0, 4));
        net.release(a, "a");
        assert_eq!(net.allocate("d").unwrap(), a);
    }
}
