//! Facts about this machine that a node reports: CPUs, memory, kernel, OS image, ids. Read once
//! at start ([`HostFacts::read`]); the parsers are pure.

use std::path::Path;

/// What the node reports about the machine it runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// The machine's hostname, lower-cased (a valid node name on ordinary hosts).
    pub hostname: String,
    pub cpus: usize,
    /// `MemTotal` from `/proc/meminfo`, KiB.
    pub memory_kib: u64,
    /// `uname -r`.
    pub kernel_version: String,
    /// `PRETTY_NAME` from `/etc/os-release`.
    pub os_image: String,
    pub machine_id: String,
    pub boot_id: String,
    pub system_uuid: String,
    /// In Kubernetes' spelling (`amd64`, `arm64`).
    pub architecture: String,
    /// Size of the filesystem holding the node's data dir (the `ephemeral-storage` capacity),
    /// bytes; 0 when unknown.
    pub storage_bytes: u64,
}

impl HostFacts {
    /// Reads the facts from `/proc`, `/etc` and `/sys`, and the size of the filesystem holding
    /// `data_dir`; whatever cannot be read falls back to a plain placeholder (a fake node must
    /// start anywhere).
    pub fn read(data_dir: &Path) -> HostFacts {
        let text = |p: &str| std::fs::read_to_string(Path::new(p)).unwrap_or_default();
        let machine_id = first_line(&text("/etc/machine-id"))
            .or_else(|| first_line(&text("/var/lib/dbus/machine-id")))
            .unwrap_or_else(|| "0".repeat(32));
        let system_uuid = first_line(&text("/sys/class/dmi/id/product_uuid"))
            .map(|s| s.to_lowercase())
            .unwrap_or_else(|| uuid_from_hex(&machine_id));
        HostFacts {
            hostname: default_node_name(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_kib: mem_total_kib(&text("/proc/meminfo")).unwrap_or(0),
            kernel_version: first_line(&text("/proc/sys/kernel/osrelease")).unwrap_or_default(),
            os_image: pretty_name(&text("/etc/os-release")).unwrap_or_else(|| "Linux".to_string()),
            machine_id,
            boot_id: first_line(&text("/proc/sys/kernel/random/boot_id")).unwrap_or_default(),
            system_uuid,
            architecture: kube_arch(std::env::consts::ARCH).to_string(),
            storage_bytes: nix::sys::statvfs::statvfs(data_dir)
                .map_or(0, |fs| fs.blocks().saturating_mul(fs.fragment_size())),
        }
    }
}

/// The default node name: this machine's hostname, lower-cased (`localhost` if unknown).
pub fn default_node_name() -> String {
    first_line(&std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default())
        .map(|h| h.to_lowercase())
        .unwrap_or_else(|| "localhost".to_string())
}

fn first_line(s: &str) -> Option<String> {
    let line = s.lines().next()?.trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// `MemTotal` in KiB from the text of `/proc/meminfo`.
pub fn mem_total_kib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => Some(n),
        Some(_) => None,
    }
}

/// `PRETTY_NAME` from the text of `/etc/os-release`, unquoted.
pub fn pretty_name(os_release: &str) -> Option<String> {
    let value = os_release
        .lines()
        .find_map(|l| l.trim().strip_prefix("PRETTY_NAME="))?;
    let v = value.trim();
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(v);
    (!v.is_empty()).then(|| v.to_string())
}

/// Rust's architecture names in Kubernetes' (GOARCH) spelling.
pub fn kube_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => other,
    }
}

/// A machine id (32 hex digits) shaped as a UUID, for hosts that do not expose their DMI UUID to
/// this user.
fn uuid_from_hex(hex: &str) -> String {
    let h: String = hex
        .chars()
        .filter(char::is_ascii_hexdigit)
        .chain(std::iter::repeat('0'))
        .take(32)
        .collect::<String>()
        .to_lowercase();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_is_read_in_kib() {
        let meminfo = "MemTotal:       24578932 kB\nMemFree:         1234 kB\n";
        assert_eq!(mem_total_kib(meminfo), Some(24_578_932));
        assert_eq!(mem_total_kib("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total_kib("MemTotal: 12 MB\n"), None);
    }

    #[test]
    fn pretty_name_is_unquoted() {
        let os = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            pretty_name(os).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(
            pretty_name("PRETTY_NAME=Alpine\n").as_deref(),
            Some("Alpine")
        );
        assert_eq!(pretty_name("NAME=x\n"), None);
    }

    #[test]
    fn architectures_use_kubernetes_names() {
        assert_eq!(kube_arch("x86_64"), "amd64");
        assert_eq!(kube_arch("aarch64"), "arm64");
    }

    #[test]
    fn a_machine_id_becomes_a_uuid() {
        assert_eq!(
            uuid_from_hex("0123456789ABCDEF0123456789abcdef"),
            "01234567-89ab-cdef-0123-456789abcdef"
        );
        assert_eq!(uuid_from_hex(""), "00000000-0000-0000-0000-000000000000");
    }

    #[test]
    fn this_machine_reports_cpus_memory_and_a_kernel() {
        let f = HostFacts::read(Path::new("/"));
        assert!(f.cpus >= 1);
        assert!(f.memory_kib > 0, "{f:?}");
        assert!(!f.kernel_version.is_empty(), "{f:?}");
        assert_eq!(f.system_uuid.len(), 36, "{f:?}");
        assert!(f.storage_bytes > 0, "{f:?}");
    }
}
