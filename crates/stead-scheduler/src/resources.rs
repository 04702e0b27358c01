//! Resource arithmetic: quantities, a pod's requests (upstream `computePodResourceRequest`) and
//! a node's allocatable resources.
//!
//! A pod's request is the sum over its containers, raised to the largest init container in each
//! dimension (init containers run one at a time, before the others), plus `spec.overhead`.
//! Restartable init containers (sidecars) are counted like ordinary init containers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// CPU in millicores, memory and ephemeral storage in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
}

impl Resources {
    pub fn is_zero(&self) -> bool {
        *self == Resources::default()
    }

    fn add(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_add(other.milli_cpu);
        self.memory = self.memory.saturating_add(other.memory);
        self.ephemeral_storage = self
            .ephemeral_storage
            .saturating_add(other.ephemeral_storage);
    }

    fn max(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
    }

    /// `self + other`, per dimension.
    pub fn plus(mut self, other: &Resources) -> Resources {
        self.add(other);
        self
    }

    /// `self - other`, per dimension.
    pub fn minus(self, other: &Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.saturating_sub(other.milli_cpu),
            memory: self.memory.saturating_sub(other.memory),
            ephemeral_storage: self
                .ephemeral_storage
                .saturating_sub(other.ephemeral_storage),
        }
    }

    /// The resources named in a `ResourceList` (others are ignored).
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let get = |name: &str, milli: bool| {
            list.and_then(|l| l.get(name))
                .and_then(|q| parse_milli(&q.0))
                .map(|m| if milli { m } else { ceil_div(m, 1000) })
                .map(clamp)
                .unwrap_or(0)
        };
        Resources {
            milli_cpu: get("cpu", true),
            memory: get("memory", false),
            ephemeral_storage: get("ephemeral-storage", false),
        }
    }
}

/// Defaults the scorer assumes for a container that requests nothing (upstream
/// `DefaultMilliCPURequest` and `DefaultMemoryRequest`), so that empty pods still spread.
pub const NON_ZERO_MILLI_CPU: i64 = 100;
pub const NON_ZERO_MEMORY: i64 = 200 * 1024 * 1024;

fn ceil_div(a: i128, b: i128) -> i128 {
    if a >= 0 { (a + b - 1) / b } else { a / b }
}

fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Parses a Kubernetes quantity (`500m`, `1.5`, `128Mi`, `1e3`, `2G`) into thousandths of its
/// unit, rounding up like upstream `MilliValue`. `None` when it is not a quantity.
pub fn parse_milli(s: &str) -> Option<i128> {
    let s = s.trim();
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(num_end);
    let (negative, digits) = match number.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part
        .chars()
        .chain(frac_part.chars())
        .all(|c| c.is_ascii_digit())
    {
        return None;
    }
    // mantissa * 10^-frac_len
    let mantissa: i128 = format!("{int_part}{frac_part}").parse().ok()?;
    let mut scale10: i32 = -i32::try_from(frac_part.len()).ok()?;
    let mut factor2: i128 = 1;
    match suffix {
        "" => {}
        "n" => scale10 -= 9,
        "u" => scale10 -= 6,
        "m" => scale10 -= 3,
        "k" => scale10 += 3,
        "M" => scale10 += 6,
        "G" => scale10 += 9,
        "T" => scale10 += 12,
        "P" => scale10 += 15,
        "E" => scale10 += 18,
        "Ki" => factor2 = 1 << 10,
        "Mi" => factor2 = 1 << 20,
        "Gi" => factor2 = 1 << 30,
        "Ti" => factor2 = 1 << 40,
        "Pi" => factor2 = 1 << 50,
        "Ei" => factor2 = 1 << 60,
        other => {
            let exp = other.strip_prefix(['e', 'E'])?;
            scale10 += exp.parse::<i32>().ok()?;
        }
    }
    // thousandths: mantissa * factor2 * 10^(scale10 + 3), rounded up.
    let scale = scale10 + 3;
    let base = mantissa.checked_mul(factor2)?;
    let value = if scale >= 0 {
        base.checked_mul(10i128.checked_pow(u32::try_from(scale).ok()?)?)?
    } else {
        let div = 10i128.checked_pow(u32::try_from(-scale).ok()?)?;
        ceil_div(base, div)
    };
    Some(if negative { -value } else { value })
}

/// What `pod` asks of a node: containers summed, raised to each init container, plus overhead.
pub fn pod_requests(pod: &Pod) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources::default();
    };
    let mut total = Resources::default();
    for c in &spec.containers {
        total.add(&Resources::from_list(
            c.resources.as_ref().and_then(|r| r.requests.as_ref()),
        ));
    }
    for c in spec.init_containers.iter().flatten() {
        total.max(&Resources::from_list(
            c.resources.as_ref().and_then(|r| r.requests.as_ref()),
        ));
    }
    total.add(&Resources::from_list(spec.overhead.as_ref()));
    total
}

/// [`pod_requests`] with the scorer's non-zero defaults for containers that request no cpu or
/// no memory (upstream `GetNonzeroRequests`), used only for scoring.
pub fn pod_requests_for_scoring(pod: &Pod) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources::default();
    };
    let nonzero = |r: Resources| Resources {
        milli_cpu: if r.milli_cpu == 0 {
            NON_ZERO_MILLI_CPU
        } else {
            r.milli_cpu
        },
        memory: if r.memory == 0 {
            NON_ZERO_MEMORY
        } else {
            r.memory
        },
        ephemeral_storage: r.ephemeral_storage,
    };
    let mut total = Resources::default();
    for c in &spec.containers {
        total.add(&nonzero(Resources::from_list(
            c.resources.as_ref().and_then(|r| r.requests.as_ref()),
        )));
    }
    for c in spec.init_containers.iter().flatten() {
        total.max(&nonzero(Resources::from_list(
            c.resources.as_ref().and_then(|r| r.requests.as_ref()),
        )));
    }
    total.add(&Resources::from_list(spec.overhead.as_ref()));
    total
}

/// A node's allocatable resources and pod count (`status.allocatable`; missing means none).
pub fn node_allocatable(node: &Node) -> (Resources, i64) {
    let list = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
    let pods = list
        .and_then(|l| l.get("pods"))
        .and_then(|q| parse_milli(&q.0))
        .map(|m| clamp(m / 1000))
        .unwrap_or(0);
    (Resources::from_list(list), pods)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_into_thousandths() {
        assert_eq!(parse_milli("500m"), Some(500));
        assert_eq!(parse_milli("2"), Some(2000));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_milli("128Mi"), Some(128 * 1024 * 1024 * 1000));
        assert_eq!(parse_milli("1k"), Some(1_000_000));
        assert_eq!(parse_milli("1e3"), Some(1_000_000));
        assert_eq!(parse_milli("1n"), Some(1), "rounded up");
        assert_eq!(parse_milli("0.1m"), Some(1), "rounded up");
        assert_eq!(parse_milli("1Gi"), Some(1_073_741_824_000));
        assert_eq!(parse_milli("abc"), None);
        assert_eq!(parse_milli("1Xi"), None);
    }
}
