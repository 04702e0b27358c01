//! The pure part of node IPAM: the block allocator over the cluster range and the plan that
//! assigns blocks to the nodes that have none.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// The cluster's pod range.
pub const CLUSTER_CIDR: &str = "10.42.0.0/16";
/// The prefix length of one node's block (upstream `--node-cidr-mask-size` for IPv4).
pub const NODE_MASK: u8 = 24;

/// An IPv4 network: its first address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    base: u32,
    prefix: u8,
}

impl Net {
    /// Parses `A.B.C.D/P`; the address must be the network's first (as the API requires).
    fn parse(s: &str) -> Option<Net> {
        let (addr, prefix) = s.split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        if prefix > 32 {
            return None;
        }
        let base = u32::from(addr);
        (base & mask(prefix) == base).then_some(Net { base, prefix })
    }
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(u32::from(32 - prefix)).unwrap_or(0)
}

/// Hands out the `/mask` blocks of a cluster range, lowest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeAllocator {
    cluster: Net,
    mask: u8,
    /// Indexes of the blocks in use.
    used: BTreeSet<u32>,
}

impl RangeAllocator {
    /// An allocator of `/mask` blocks of `cluster`; `None` when `cluster` is not a network or
    /// `mask` does not fit in it.
    pub fn new(cluster: &str, mask: u8) -> Option<RangeAllocator> {
        let cluster = Net::parse(cluster)?;
        (mask >= cluster.prefix && mask <= 32).then_some(RangeAllocator {
            cluster,
            mask,
            used: BTreeSet::new(),
        })
    }

    /// How many blocks there are.
    pub fn capacity(&self) -> u32 {
        1u32.checked_shl(u32::from(self.mask - self.cluster.prefix))
            .unwrap_or(u32::MAX)
    }

    /// The index of `cidr` when it is exactly one of this allocator's blocks.
    fn index(&self, cidr: &str) -> Option<u32> {
        let net = Net::parse(cidr)?;
        let inside = net.base & mask(self.cluster.prefix) == self.cluster.base;
        (net.prefix == self.mask && inside)
            .then(|| (net.base - self.cluster.base) >> (32 - u32::from(self.mask)))
    }

    /// Marks used every block `cidr` overlaps (as upstream's `cidrset.Occupy`: a range larger
    /// than a block, such as a node's whole `10.42.0.0/16` from an older stead or the fake
    /// node, takes every block it covers; a smaller one takes the block it lies in). False when
    /// nothing new was taken: not a network, outside the cluster range, or already used.
    pub fn occupy(&mut self, cidr: &str) -> bool {
        let Some(net) = Net::parse(cidr) else {
            return false;
        };
        let (cluster_last, net_last) = (
            self.cluster.base | !mask(self.cluster.prefix),
            net.base | !mask(net.prefix),
        );
        let first = net.base.max(self.cluster.base);
        let last = net_last.min(cluster_last);
        if first > last {
            return false;
        }
        let shift = 32 - u32::from(self.mask);
        let (from, to) = (
            (first - self.cluster.base) >> shift,
            (last - self.cluster.base) >> shift,
        );
        let mut taken = false;
        for i in from..=to {
            taken |= self.used.insert(i);
        }
        taken
    }

    /// Returns `cidr` to the pool (nothing when it is not one of the blocks).
    pub fn release(&mut self, cidr: &str) {
        if let Some(i) = self.index(cidr) {
            self.used.remove(&i);
        }
    }

    /// The lowest free block, now used; `None` when every block is.
    pub fn allocate(&mut self) -> Option<String> {
        let free = (0..self.capacity()).find(|i| !self.used.contains(i))?;
        self.used.insert(free);
        let base = self.cluster.base + (free << (32 - u32::from(self.mask)));
        Some(format!("{}/{}", Ipv4Addr::from(base), self.mask))
    }
}

/// What the plan needs to know about a Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    pub name: String,
    /// `spec.podCIDR`, `None` when unset or empty.
    pub pod_cidr: Option<String>,
}

/// What to do: write these blocks to these nodes; these nodes wait for a free block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// `(node, block)`, in node name order.
    pub assign: Vec<(String, String)>,
    /// Nodes left without a range because the cluster range is full (blocked until a node goes).
    pub blocked_on_full_range: Vec<String>,
}

/// Decides from the nodes that exist (`nodes`) and the blocks written to nodes whose watch
/// event has not come back yet (`pending`, node → block): the blocks of existing nodes and of
/// pending writes are taken; each node with neither gets the lowest free block. Nodes that are
/// gone hold nothing, which is how a deleted node's block is released.
pub fn plan(
    empty: &RangeAllocator,
    nodes: &[NodeView],
    pending: &BTreeMap<String, String>,
) -> Plan {
    let mut alloc = empty.clone();
    for n in nodes {
        if let Some(c) = &n.pod_cidr {
            alloc.occupy(c);
        } else if let Some(c) = pending.get(&n.name) {
            alloc.occupy(c);
        }
    }
    let mut out = Plan::default();
    let mut waiting: Vec<&NodeView> = nodes
        .iter()
        .filter(|n| n.pod_cidr.is_none() && !pending.contains_key(&n.name))
        .collect();
    waiting.sort_by(|a, b| a.name.cmp(&b.name));
    for n in waiting {
        match alloc.allocate() {
            Some(c) => out.assign.push((n.name.clone(), c)),
            None => out.blocked_on_full_range.push(n.name.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, cidr: Option<&str>) -> NodeView {
        NodeView {
            name: name.into(),
            pod_cidr: cidr.map(str::to_string),
        }
    }

    fn cluster() -> RangeAllocator {
        RangeAllocator::new(CLUSTER_CIDR, NODE_MASK).unwrap()
    }

    // Ref: upstream range_allocator_test.go "Correctly allocate CIDRs" / cidr_set_test.go
    #[test]
    fn blocks_are_handed_out_lowest_first_and_reused_after_release() {
        let mut a = cluster();
        assert_eq!(a.capacity(), 256);
        assert_eq!(a.allocate().as_deref(), Some("10.42.0.0/24"));
        assert_eq!(a.allocate().as_deref(), Some("10.42.1.0/24"));
        assert_eq!(a.allocate().as_deref(), Some("10.42.2.0/24"));
        a.release("10.42.1.0/24");
        assert_eq!(a.allocate().as_deref(), Some("10.42.1.0/24"));
        assert_eq!(a.allocate().as_deref(), Some("10.42.3.0/24"));
    }

    #[test]
    fn a_full_range_allocates_nothing() {
        let mut a = RangeAllocator::new("10.42.0.0/23", 24).unwrap();
        assert!(a.allocate().is_some());
        assert!(a.allocate().is_some());
        assert_eq!(a.allocate(), None);
    }

    // Ref: upstream cidr_set_test.go TestOccupy
    #[test]
    fn occupying_takes_every_block_a_range_overlaps() {
        let mut a = cluster();
        assert!(a.occupy("10.42.5.0/24"));
        assert!(!a.occupy("10.42.5.0/24"), "already used");
        assert!(!a.occupy("10.43.0.0/24"), "outside the cluster range");
        assert!(!a.occupy("10.42.6.1/24"), "not a network address");
        assert!(!a.occupy("nonsense"));
        assert!(a.occupy("10.42.0.0/23"), "two blocks");
        assert!(a.occupy("10.42.2.128/25"), "inside one block");
        assert_eq!(a.allocate().as_deref(), Some("10.42.3.0/24"));
        assert!(a.occupy("10.0.0.0/8"), "covers the whole cluster range");
        assert_eq!(a.allocate(), None);
    }

    #[test]
    fn bad_cluster_ranges_are_refused() {
        assert!(RangeAllocator::new("10.42.0.0/24", 16).is_none());
        assert!(RangeAllocator::new("10.42.0.1/16", 24).is_none());
        assert!(RangeAllocator::new("10.42.0.0", 24).is_none());
    }

    #[test]
    fn nodes_without_a_range_get_free_blocks_in_name_order() {
        let nodes = [
            node("c", None),
            node("a", Some("10.42.0.0/24")),
            node("b", None),
        ];
        let p = plan(&cluster(), &nodes, &BTreeMap::new());
        assert_eq!(
            p.assign,
            [
                ("b".to_string(), "10.42.1.0/24".to_string()),
                ("c".to_string(), "10.42.2.0/24".to_string())
            ]
        );
    }

    #[test]
    fn pending_writes_are_neither_repeated_nor_handed_out_again() {
        let nodes = [node("a", None), node("b", None)];
        let pending = BTreeMap::from([("a".to_string(), "10.42.0.0/24".to_string())]);
        let p = plan(&cluster(), &nodes, &pending);
        assert_eq!(p.assign, [("b".to_string(), "10.42.1.0/24".to_string())]);
    }

    #[test]
    fn a_deleted_nodes_block_goes_to_the_next_node() {
        let before = [
            node("a", Some("10.42.0.0/24")),
            node("b", Some("10.42.1.0/24")),
        ];
        assert_eq!(plan(&cluster(), &before, &BTreeMap::new()), Plan::default());
        let after = [node("b", Some("10.42.1.0/24")), node("c", None)];
        let p = plan(&cluster(), &after, &BTreeMap::new());
        assert_eq!(p.assign, [("c".to_string(), "10.42.0.0/24".to_string())]);
    }

    #[test]
    fn a_node_holding_the_whole_range_leaves_nothing_to_share() {
        // A node registered by an older stead (or the fake node) with 10.42.0.0/16: no other
        // node may get an overlapping block.
        let nodes = [node("old", Some("10.42.0.0/16")), node("b", None)];
        let p = plan(&cluster(), &nodes, &BTreeMap::new());
        assert_eq!(p.assign, []);
        assert_eq!(p.blocked_on_full_range, ["b".to_string()]);
    }

    #[test]
    fn nodes_wait_when_the_range_is_full() {
        let small = RangeAllocator::new("10.42.0.0/24", 25).unwrap();
        let nodes = [node("a", None), node("b", None), node("c", None)];
        let p = plan(&small, &nodes, &BTreeMap::new());
        assert_eq!(p.assign.len(), 2);
        assert_eq!(p.blocked_on_full_range, ["c".to_string()]);
    }

    #[test]
    fn no_two_nodes_ever_share_a_block() {
        // Assign, delete some, add more: every live node's block stays unique.
        let mut live: BTreeMap<String, Option<String>> = BTreeMap::new();
        for round in 0..20u32 {
            for k in 0..3 {
                live.insert(format!("n{round}-{k}"), None);
            }
            if round % 3 == 0 {
                let gone: Vec<String> = live.keys().take(2).cloned().collect();
                for g in gone {
                    live.remove(&g);
                }
            }
            let nodes: Vec<NodeView> = live
                .iter()
                .map(|(n, c)| NodeView {
                    name: n.clone(),
                    pod_cidr: c.clone(),
                })
                .collect();
            for (n, c) in plan(&cluster(), &nodes, &BTreeMap::new()).assign {
                live.insert(n, Some(c));
            }
            let blocks: Vec<&String> = live.values().flatten().collect();
            let unique: BTreeSet<&&String> = blocks.iter().collect();
            assert_eq!(blocks.len(), unique.len(), "round {round}: {live:?}");
            assert_eq!(blocks.len(), live.len(), "every node has a block");
        }
    }
}
