//! Just enough rtnetlink to wire a pod's network without running `ip`: a veth pair with its
//! far end moved into another namespace, a link's master and up flag, an IPv4 address, a
//! default route, deleting a link. Each request waits for the kernel's acknowledgement.
//!
//! A netlink socket talks to the network namespace it was created in, so open the
//! [`Netlink`] on a thread that entered the namespace first ([`super::network::in_netns`]).
//! The message layouts are the kernel's (`linux/netlink.h`, `linux/rtnetlink.h`,
//! `linux/if_link.h`, `linux/veth.h`), all in native byte order.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;

use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, recv, send, socket,
};

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;

const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_PID: u16 = 19;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const IFF_UP: u32 = 1;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

/// An rtnetlink socket of the calling thread's network namespace.
pub(super) struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

/// One message body: a fixed header followed by attributes, built in place.
struct Body(Vec<u8>);

impl Body {
    /// `ifinfomsg`: family, type, index, flags, change.
    fn link(index: u32, flags: u32, change: u32) -> Body {
        let mut b = Body(Vec::with_capacity(64));
        b.ifinfo(index, flags, change);
        b
    }

    fn ifinfo(&mut self, index: u32, flags: u32, change: u32) {
        self.0.extend_from_slice(&[AF_UNSPEC, 0, 0, 0]);
        self.0.extend_from_slice(&index.to_ne_bytes());
        self.0.extend_from_slice(&flags.to_ne_bytes());
        self.0.extend_from_slice(&change.to_ne_bytes());
    }

    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Body {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.pad();
        self
    }

    /// A NUL-terminated string attribute.
    fn name(&mut self, kind: u16, name: &str) -> &mut Body {
        let mut data = name.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data)
    }

    /// An attribute holding the attributes `fill` writes.
    fn nested(&mut self, kind: u16, fill: impl FnOnce(&mut Body)) -> &mut Body {
        let start = self.0.len();
        self.0.extend_from_slice(&[0, 0]);
        self.0.extend_from_slice(&kind.to_ne_bytes());
        fill(self);
        let len = (self.0.len() - start) as u16;
        self.0[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self.pad();
        self
    }

    fn pad(&mut self) {
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
    }
}

impl Netlink {
    pub(super) fn open() -> io::Result<Netlink> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        Ok(Netlink { fd, seq: 0 })
    }

    /// Creates the veth pair `name` (here, enslaved to `master`, up) and `peer` (in the
    /// network namespace of process `peer_pid`, down).
    pub(super) fn add_veth(
        &mut self,
        name: &str,
        master: u32,
        peer: &str,
        peer_pid: i32,
    ) -> io::Result<()> {
        let mut b = Body::link(0, IFF_UP, IFF_UP);
        b.name(IFLA_IFNAME, name)
            .attr(IFLA_MASTER, &master.to_ne_bytes())
            .nested(IFLA_LINKINFO, |info| {
                info.name(IFLA_INFO_KIND, "veth")
                    .nested(IFLA_INFO_DATA, |data| {
                        data.nested(VETH_INFO_PEER, |p| {
                            p.ifinfo(0, 0, 0);
                            p.name(IFLA_IFNAME, peer)
                                .attr(IFLA_NET_NS_PID, &peer_pid.to_ne_bytes());
                        });
                    });
            });
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &b.0)
    }

    /// Sets link `index` up.
    pub(super) fn set_up(&mut self, index: u32) -> io::Result<()> {
        self.request(RTM_NEWLINK, 0, &Body::link(index, IFF_UP, IFF_UP).0)
    }

    /// Deletes the link called `name`.
    pub(super) fn delete_link(&mut self, name: &str) -> io::Result<()> {
        let mut b = Body::link(0, 0, 0);
        b.name(IFLA_IFNAME, name);
        self.request(RTM_DELLINK, 0, &b.0)
    }

    /// Adds `ip/prefix` to link `index` (which adds the prefix's route once the link is up).
    pub(super) fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut b = Body(vec![AF_INET, prefix, 0, RT_SCOPE_UNIVERSE]);
        b.0.extend_from_slice(&index.to_ne_bytes());
        b.attr(IFA_LOCAL, &ip.octets())
            .attr(IFA_ADDRESS, &ip.octets());
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &b.0)
    }

    /// Adds the default route via `gateway` out of link `index`.
    pub(super) fn add_default_route(&mut self, gateway: Ipv4Addr, index: u32) -> io::Result<()> {
        let mut b = Body(vec![
            AF_INET,
            0, // dst_len: the default route
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ]);
        b.0.extend_from_slice(&0u32.to_ne_bytes());
        b.attr(RTA_GATEWAY, &gateway.octets())
            .attr(RTA_OIF, &index.to_ne_bytes());
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &b.0)
    }

    /// Sends one request and waits for its acknowledgement (or error).
    fn request(&mut self, kind: u16, flags: u16, body: &[u8]) -> io::Result<()> {
        self.seq += 1;
        let seq = self.seq;
        let mut msg = Vec::with_capacity(16 + body.len());
        msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        send(
            std::os::fd::AsRawFd::as_raw_fd(&self.fd),
            &msg,
            MsgFlags::empty(),
        )?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = recv(
                std::os::fd::AsRawFd::as_raw_fd(&self.fd),
                &mut buf,
                MsgFlags::empty(),
            )?;
            let mut at = 0;
            while at + 16 <= n {
                let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
                let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().unwrap());
                let got = u32::from_ne_bytes(buf[at + 8..at + 12].try_into().unwrap());
                if len < 16 || at + len > n {
                    return Err(io::Error::other("netlink: malformed answer"));
                }
                if kind == NLMSG_ERROR && got == seq && len >= 20 {
                    let code = i32::from_ne_bytes(buf[at + 16..at + 20].try_into().unwrap());
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-code))
                    };
                }
                at += (len + 3) & !3;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_carry_their_length_and_are_padded() {
        let mut b = Body(Vec::new());
        b.nested(IFLA_LINKINFO, |info| {
            info.name(IFLA_INFO_KIND, "veth");
        });
        // 4 (outer header) + 4 (inner header) + "veth\0" (5) = 13, padded to 16; the outer
        // length covers the inner attribute's padding, as iproute2's does.
        assert_eq!(b.0.len(), 16);
        assert_eq!(u16::from_ne_bytes([b.0[0], b.0[1]]), 16);
        assert_eq!(u16::from_ne_bytes([b.0[4], b.0[5]]), 9);
        assert_eq!(&b.0[8..13], b"veth\0");
    }
}
