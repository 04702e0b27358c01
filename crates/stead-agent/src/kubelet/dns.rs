//! A pod's `/etc/hosts` and `/etc/resolv.conf`, rendered purely (upstream
//! `kubelet_pods.go` `managedHostsFileContent`, `network/dns/dns.go`).

use k8s_openapi::api::core::v1::Pod;

/// The pod's hostname: `spec.hostname`, else its name (at most 63 characters).
pub fn hostname(pod: &Pod) -> String {
    let h = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    h.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches(['-', '.'])
        .to_string()
}

/// The managed `/etc/hosts`: localhost lines, the pod's own name (its FQDN first when it has a
/// subdomain) at `pod_ip` when known, then `hostAliases`.
pub fn hosts_file(pod: &Pod, pod_ip: Option<&str>, domain: &str) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    let spec = pod.spec.clone().unwrap_or_default();
    let host = hostname(pod);
    if let Some(ip) = pod_ip {
        match spec.subdomain.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => {
                let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
                out.push_str(&format!("{ip}\t{host}.{sub}.{ns}.svc.{domain}\t{host}\n"));
            }
            None => out.push_str(&format!("{ip}\t{host}\n")),
        }
    }
    let aliases = spec.host_aliases.unwrap_or_default();
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            let names = a.hostnames.unwrap_or_default().join("\t");
            out.push_str(&format!("{}\t{names}\n", a.ip));
        }
    }
    out
}

/// The pod's `/etc/resolv.conf` for its `dnsPolicy` and `dnsConfig`; `host_resolv` is the
/// node's own file (policy `Default`, or `ClusterFirst` with host networking).
pub fn resolv_conf(pod: &Pod, cluster_dns: &str, domain: &str, host_resolv: &str) -> String {
    let spec = pod.spec.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let host_network = spec.host_network == Some(true);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let (mut servers, mut searches, mut options): (Vec<String>, Vec<String>, Vec<String>) =
        match policy {
            "None" => (vec![], vec![], vec![]),
            "Default" => parse_resolv(host_resolv),
            "ClusterFirst" if host_network => parse_resolv(host_resolv),
            _ => (
                vec![cluster_dns.to_string()],
                vec![
                    format!("{ns}.svc.{domain}"),
                    format!("svc.{domain}"),
                    domain.to_string(),
                ],
                vec!["ndots:5".to_string()],
            ),
        };
    if let Some(cfg) = spec.dns_config {
        for s in cfg.nameservers.unwrap_or_default() {
            if !servers.contains(&s) {
                servers.push(s);
            }
        }
        for s in cfg.searches.unwrap_or_default() {
            if !searches.contains(&s) {
                searches.push(s);
            }
        }
        for o in cfg.options.unwrap_or_default() {
            let rendered = match &o.value {
                Some(v) => format!("{}:{v}", o.name.clone().unwrap_or_default()),
                None => o.name.clone().unwrap_or_default(),
            };
            let name = o.name.unwrap_or_default();
            options.retain(|x| x.split(':').next() != Some(name.as_str()));
            options.push(rendered);
        }
    }
    servers.truncate(3);
    searches.truncate(32);
    let mut out = String::new();
    for s in &servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !searches.is_empty() {
        out.push_str(&format!("search {}\n", searches.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

fn parse_resolv(text: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut servers, mut searches, mut options) = (vec![], vec![], vec![]);
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => servers.extend(words.next().map(str::to_string)),
            Some("search" | "domain") => searches = words.map(str::to_string).collect(),
            Some("options") => options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    (servers, searches, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        let mut s = json!({"containers": []});
        s.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        serde_json::from_value(json!({
            "metadata": {"name": "web-0", "namespace": "shop", "uid": "u"},
            "spec": s,
        }))
        .unwrap()
    }

    #[test]
    fn hosts_has_the_pod_fqdn_when_it_has_a_subdomain() {
        let p = pod(json!({"hostname": "web-0", "subdomain": "web"}));
        let h = hosts_file(&p, Some("10.42.0.5"), "cluster.local");
        assert!(h.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(
            h.ends_with("10.42.0.5\tweb-0.web.shop.svc.cluster.local\tweb-0\n"),
            "{h}"
        );
    }

    #[test]
    fn hosts_without_subdomain_names_the_pod_and_lists_aliases() {
        let p = pod(json!({"hostAliases": [{"ip": "10.1.2.3", "hostnames": ["a", "b"]}]}));
        let h = hosts_file(&p, Some("10.42.0.5"), "cluster.local");
        assert!(h.contains("10.42.0.5\tweb-0\n"));
        assert!(
            h.ends_with("\n# Entries added by HostAliases.\n10.1.2.3\ta\tb\n"),
            "{h}"
        );
        let no_ip = hosts_file(&p, None, "cluster.local");
        assert!(!no_ip.contains("web-0"));
    }

    #[test]
    fn cluster_first_points_at_cluster_dns_with_the_search_path() {
        let r = resolv_conf(
            &pod(json!({})),
            "10.43.0.10",
            "cluster.local",
            "nameserver 1.1.1.1\n",
        );
        assert_eq!(
            r,
            "nameserver 10.43.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
        );
    }

    #[test]
    fn default_policy_uses_the_host_file_and_none_only_dns_config() {
        let host = "nameserver 192.168.1.1\nsearch lan\noptions edns0\n";
        let d = resolv_conf(
            &pod(json!({"dnsPolicy": "Default"})),
            "10.43.0.10",
            "cluster.local",
            host,
        );
        assert_eq!(d, "nameserver 192.168.1.1\nsearch lan\noptions edns0\n");
        let none = pod(json!({"dnsPolicy": "None", "dnsConfig": {
            "nameservers": ["9.9.9.9"], "searches": ["x.y"], "options": [{"name": "ndots", "value": "2"}, {"name": "rotate"}]}}));
        assert_eq!(
            resolv_conf(&none, "10.43.0.10", "cluster.local", host),
            "nameserver 9.9.9.9\nsearch x.y\noptions ndots:2 rotate\n"
        );
    }

    #[test]
    fn dns_config_options_override_the_defaults_by_name() {
        let p = pod(
            json!({"dnsConfig": {"options": [{"name": "ndots", "value": "1"}], "searches": ["extra"]}}),
        );
        let r = resolv_conf(&p, "10.43.0.10", "cluster.local", "");
        assert!(
            r.contains("search shop.svc.cluster.local svc.cluster.local cluster.local extra\n")
        );
        assert!(r.ends_with("options ndots:1\n"), "{r}");
    }
}
