//! Fake pod addresses: one per pod uid, unique among the pods the node holds, from 10.42.0.0/16.
//! Nothing routes them; they only make pod status look like a real node's. In every /24 the
//! `.0`, `.1` (a bridge's address on a real node) and `.255` are skipped.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

const BASE: u32 = u32::from_be_bytes([10, 42, 0, 0]);
const SIZE: u32 = 1 << 16;

#[derive(Debug, Default)]
pub struct PodIps {
    by_uid: HashMap<String, u32>,
    used: HashSet<u32>,
    /// Where the search for a free offset starts: addresses are handed out round-robin, so a
    /// released address is not reused at once.
    next: u32,
}

fn usable(offset: u32) -> bool {
    !matches!(offset & 0xff, 0 | 1 | 255)
}

fn offset_of(ip: &str) -> Option<u32> {
    let ip: Ipv4Addr = ip.parse().ok()?;
    let n = u32::from(ip).checked_sub(BASE)?;
    (n < SIZE && usable(n)).then_some(n)
}

impl PodIps {
    /// The address of pod `uid`, assigning a free one on first use; `None` when the range is
    /// exhausted.
    pub fn assign(&mut self, uid: &str) -> Option<Ipv4Addr> {
        if let Some(&o) = self.by_uid.get(uid) {
            return Some(Ipv4Addr::from(BASE + o));
        }
        for step in 0..SIZE {
            let o = (self.next + step) % SIZE;
            if usable(o) && !self.used.contains(&o) {
                self.used.insert(o);
                self.by_uid.insert(uid.to_string(), o);
                self.next = (o + 1) % SIZE;
                return Some(Ipv4Addr::from(BASE + o));
            }
        }
        None
    }

    /// Records that pod `uid` already carries `ip` (seen on a watch, e.g. after a restart), so
    /// nobody else gets it. Addresses outside the range are ignored.
    pub fn adopt(&mut self, uid: &str, ip: &str) {
        if self.by_uid.contains_key(uid) {
            return;
        }
        if let Some(o) = offset_of(ip)
            && self.used.insert(o)
        {
            self.by_uid.insert(uid.to_string(), o);
        }
    }

    /// Frees the address of pod `uid` (the pod is gone).
    pub fn release(&mut self, uid: &str) {
        if let Some(o) = self.by_uid.remove(uid) {
            self.used.remove(&o);
        }
    }

    /// Keeps only the pods `live` says exist (after a relist).
    pub fn retain(&mut self, live: impl Fn(&str) -> bool) {
        let used = &mut self.used;
        self.by_uid.retain(|uid, o| {
            let keep = live(uid);
            if !keep {
                used.remove(o);
            }
            keep
        });
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_uid.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_start_at_dot_two_and_are_stable_per_pod() {
        let mut ips = PodIps::default();
        assert_eq!(ips.assign("a"), Some(Ipv4Addr::new(10, 42, 0, 2)));
        assert_eq!(ips.assign("b"), Some(Ipv4Addr::new(10, 42, 0, 3)));
        assert_eq!(ips.assign("a"), Some(Ipv4Addr::new(10, 42, 0, 2)));
        assert_eq!(ips.len(), 2);
    }

    #[test]
    fn the_dot_zero_one_and_255_of_every_slash_24_are_skipped() {
        let mut ips = PodIps::default();
        let all: Vec<Ipv4Addr> = (0..260)
            .map(|i| ips.assign(&i.to_string()).unwrap())
            .collect();
        assert_eq!(all[252], Ipv4Addr::new(10, 42, 0, 254));
        assert_eq!(all[253], Ipv4Addr::new(10, 42, 1, 2));
        let unique: HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), 260);
    }

    #[test]
    fn adopted_addresses_are_not_handed_out_again() {
        let mut ips = PodIps::default();
        ips.adopt("old", "10.42.0.2");
        ips.adopt("elsewhere", "192.168.1.5");
        assert_eq!(ips.assign("new"), Some(Ipv4Addr::new(10, 42, 0, 3)));
        assert_eq!(ips.assign("old"), Some(Ipv4Addr::new(10, 42, 0, 2)));
        assert_eq!(ips.len(), 2);
    }

    #[test]
    fn released_addresses_come_back_only_after_the_range_wraps() {
        let mut ips = PodIps::default();
        ips.assign("a");
        ips.release("a");
        assert_eq!(ips.assign("b"), Some(Ipv4Addr::new(10, 42, 0, 3)));
        ips.retain(|uid| uid != "b");
        assert_eq!(ips.len(), 0);
    }
}
