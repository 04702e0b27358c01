//! The pure answering function: one question against one [`Snapshot`], no IO.
//!
//! The server decodes a request, calls [`answer`], and either sends the [`Response`] or, for
//! [`Answer::Forward`], relays the request to the upstream resolver.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::snapshot::{Snapshot, address, owns_type};

/// What to do with one question.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Answer from the cluster's records.
    Local(Response),
    /// The name is not ours (outside the cluster domain, or a reverse name we hold nothing for):
    /// relay it to the upstream resolver.
    Forward,
}

/// The sections of a local response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub code: ResponseCode,
    pub answers: Vec<Record>,
    /// The zone's SOA for NXDOMAIN and NODATA answers (negative caching, RFC 2308).
    pub authority: Vec<Record>,
    /// Address records of SRV targets.
    pub additionals: Vec<Record>,
    /// The answer ends at a CNAME whose target is not a cluster name (an ExternalName service):
    /// the server asks the upstream for this name and the asked type and appends its answers,
    /// since stub resolvers do not follow aliases themselves.
    pub chase: Option<Name>,
}

impl Response {
    fn code(code: ResponseCode) -> Self {
        Self {
            code,
            answers: vec![],
            authority: vec![],
            additionals: vec![],
            chase: None,
        }
    }

    fn negative(snapshot: &Snapshot, code: ResponseCode) -> Self {
        Self {
            authority: vec![snapshot.soa().clone()],
            ..Self::code(code)
        }
    }

    fn records(answers: Vec<Record>, additionals: Vec<Record>) -> Self {
        Self {
            answers,
            additionals,
            ..Self::code(ResponseCode::NoError)
        }
    }
}

/// Answers `query` from `snapshot`. Name comparison is case-insensitive; answer records carry the
/// query name exactly as asked.
pub fn answer(snapshot: &Snapshot, query: &Query) -> Answer {
    let mut name = query.name().clone();
    name.set_fqdn(true);
    let qtype = query.query_type();
    let in_zone = snapshot.zone().zone_of(&name);
    if !matches!(query.query_class(), DNSClass::IN | DNSClass::ANY) {
        return match in_zone {
            true => Answer::Local(Response::code(ResponseCode::Refused)),
            false => Answer::Forward,
        };
    }
    if !in_zone {
        // Reverse names: ours if we hold a PTR for the address, otherwise upstream's.
        return match snapshot.records(&name) {
            Some(rrs) => Answer::Local(from_records(snapshot, query.name(), rrs, qtype)),
            None => Answer::Forward,
        };
    }
    if !snapshot.synced() {
        return Answer::Local(Response::code(ResponseCode::ServFail));
    }
    if let Some(rrs) = snapshot.records(&name) {
        return Answer::Local(from_records(snapshot, query.name(), rrs, qtype));
    }
    if snapshot.is_interior(&name) {
        return Answer::Local(Response::negative(snapshot, ResponseCode::NoError));
    }
    Answer::Local(match pod_name(snapshot.zone(), &name) {
        PodName::Address(ip) => {
            let record = address(query.name().clone(), ip);
            match owns_type(&record, qtype) {
                true => Response::records(vec![record], vec![]),
                false => Response::negative(snapshot, ResponseCode::NoError),
            }
        }
        PodName::Interior => Response::negative(snapshot, ResponseCode::NoError),
        PodName::No => Response::negative(snapshot, ResponseCode::NXDomain),
    })
}

/// The answer for a name that owns `rrs`: the records of the asked type, the CNAME if the name is
/// an alias (followed once when its target is ours), or NODATA.
fn from_records(snapshot: &Snapshot, asked: &Name, rrs: &[Record], qtype: RecordType) -> Response {
    let matching: Vec<Record> = rrs
        .iter()
        .filter(|r| owns_type(r, qtype))
        .map(|r| renamed(r, asked))
        .collect();
    if !matching.is_empty() {
        let additionals = srv_additionals(snapshot, &matching);
        return Response::records(matching, additionals);
    }
    if let Some(cname) = rrs.iter().find(|r| r.record_type() == RecordType::CNAME) {
        let mut response = Response::records(vec![renamed(cname, asked)], vec![]);
        if let RData::CNAME(target) = &cname.data {
            match snapshot.records(&target.0) {
                Some(target_rrs) => response
                    .answers
                    .extend(target_rrs.iter().filter(|r| owns_type(r, qtype)).cloned()),
                None if !snapshot.zone().zone_of(&target.0) => {
                    response.chase = Some(target.0.clone());
                }
                None => {}
            }
        }
        return response;
    }
    Response::negative(snapshot, ResponseCode::NoError)
}

fn renamed(record: &Record, name: &Name) -> Record {
    let mut r = record.clone();
    r.name = name.clone();
    r
}

/// The A/AAAA records of every SRV target among `answers`.
fn srv_additionals(snapshot: &Snapshot, answers: &[Record]) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for record in answers {
        let RData::SRV(srv) = &record.data else {
            continue;
        };
        for target in snapshot.records(&srv.target).unwrap_or_default() {
            let is_address = matches!(target.record_type(), RecordType::A | RecordType::AAAA);
            if is_address && !out.contains(target) {
                out.push(target.clone());
            }
        }
    }
    out
}

enum PodName {
    /// `<a-b-c-d>.<ns>.pod.<zone>`: the address in the first label.
    Address(IpAddr),
    /// `pod.<zone>` or `<ns>.pod.<zone>`: exists, owns nothing.
    Interior,
    No,
}

/// Pod A records in CoreDNS's `pods insecure` mode: any namespace, any well-formed address.
fn pod_name(zone: &Name, name: &Name) -> PodName {
    let depth = usize::from(name.num_labels() - zone.num_labels());
    let labels: Vec<&[u8]> = name.iter().take(depth).collect();
    if labels
        .last()
        .is_none_or(|l| !l.eq_ignore_ascii_case(b"pod"))
    {
        return PodName::No;
    }
    match labels.len() {
        1 | 2 => PodName::Interior,
        3 => std::str::from_utf8(labels[0])
            .ok()
            .and_then(parse_dashed)
            .map_or(PodName::No, PodName::Address),
        _ => PodName::No,
    }
}

/// Parses `10-42-0-5` (IPv4) or `fd00-0-0-0-0-0-0-1` (IPv6 with `-` for `:`).
pub fn parse_dashed(label: &str) -> Option<IpAddr> {
    if let Ok(v4) = label.replace('-', ".").parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(v4));
    }
    label
        .replace('-', ":")
        .parse::<Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}
