//! Where each replica lives: parsing `--hosts host:https_port:peer_port,...` and the `--local`
//! shorthand.

use std::net::{IpAddr, TcpListener};
use std::ops::RangeInclusive;

/// One replica's public address: the host clients and peers dial, and its two ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub host: String,
    pub https_port: u16,
    pub peer_port: u16,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HostError {
    #[error("host {0:?} is not of the form host:https_port:peer_port (IPv6: [addr]:https_port:peer_port)")]
    Shape(String),
    #[error("host {spec:?}: {port:?} is not a port number between 1 and 65535")]
    Port { spec: String, port: String },
    #[error("host {0:?}: the host name is empty or not a valid DNS name or IP address")]
    Name(String),
    #[error("host {0:?}: the HTTPS and peer ports must differ")]
    SamePorts(String),
    #[error("{host}:{port} is given to two replicas")]
    Duplicate { host: String, port: u16 },
    #[error("--hosts names {given} replicas but --n is {n}")]
    Count { given: usize, n: usize },
    #[error("--local with base port {base} and n = {n} runs past port 65535")]
    PortRange { base: u16, n: usize },
}

impl HostSpec {
    /// The host as an IP address, if it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// `host:port` for dialling, with IPv6 literals bracketed.
    pub fn addr(&self, port: u16) -> String {
        match self.ip() {
            Some(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
            _ => format!("{}:{port}", self.host),
        }
    }
}

fn parse_port(spec: &str, port: &str) -> Result<u16, HostError> {
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(HostError::Port { spec: spec.to_string(), port: port.to_string() }),
    }
}

fn valid_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Parses one `host:https_port:peer_port` (IPv6 as `[addr]:https:peer`).
pub fn parse_host(spec: &str) -> Result<HostSpec, HostError> {
    let shape = || HostError::Shape(spec.to_string());
    let (host, rest) = if let Some(stripped) = spec.strip_prefix('[') {
        let (host, rest) = stripped.split_once(']').ok_or_else(shape)?;
        host.parse::<std::net::Ipv6Addr>().map_err(|_| HostError::Name(spec.to_string()))?;
        (host.to_string(), rest.strip_prefix(':').ok_or_else(shape)?)
    } else {
        let (host, rest) = spec.split_once(':').ok_or_else(shape)?;
        if host.parse::<IpAddr>().is_err() && !valid_dns_name(host) {
            return Err(HostError::Name(spec.to_string()));
        }
        (host.to_ascii_lowercase(), rest)
    };
    let (https, peer) = rest.split_once(':').ok_or_else(shape)?;
    let https_port = parse_port(spec, https)?;
    let peer_port = parse_port(spec, peer)?;
    if https_port == peer_port {
        return Err(HostError::SamePorts(spec.to_string()));
    }
    Ok(HostSpec { host, https_port, peer_port })
}

/// Parses the comma-separated `--hosts` list for `n` replicas, refusing duplicate endpoints.
pub fn parse_hosts(list: &str, n: usize) -> Result<Vec<HostSpec>, HostError> {
    let hosts = list.split(',').map(str::trim).map(parse_host).collect::<Result<Vec<_>, _>>()?;
    if hosts.len() != n {
        return Err(HostError::Count { given: hosts.len(), n });
    }
    let mut seen = std::collections::HashSet::new();
    for h in &hosts {
        for port in [h.https_port, h.peer_port] {
            if !seen.insert((h.host.clone(), port)) {
                return Err(HostError::Duplicate { host: h.host.clone(), port });
            }
        }
    }
    Ok(hosts)
}

/// `--local`: every replica on 127.0.0.1, HTTPS ports `base..base+n`, peer ports after them.
pub fn local_hosts(n: usize, base: u16) -> Result<Vec<HostSpec>, HostError> {
    let last = usize::from(base) + 2 * n;
    if last > usize::from(u16::MAX) + 1 {
        return Err(HostError::PortRange { base, n });
    }
    Ok((0..n)
        .map(|i| HostSpec {
            host: "127.0.0.1".to_string(),
            https_port: base + i as u16,
            peer_port: base + (n + i) as u16,
        })
        .collect())
}

/// Where Linux keeps the range of ephemeral ports.
const EPHEMERAL_RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// Linux's default `net.ipv4.ip_local_port_range`.
const DEFAULT_EPHEMERAL_PORTS: RangeInclusive<u16> = 32768..=60999;

/// The contents of `ip_local_port_range` ("low<TAB>high"), `None` if malformed.
pub fn parse_port_range(text: &str) -> Option<RangeInclusive<u16>> {
    let mut parts = text.split_whitespace().map(str::parse::<u16>);
    let (Some(Ok(low)), Some(Ok(high)), None) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    (low <= high).then_some(low..=high)
}

/// The ports this machine's kernel hands out as the local port of outgoing connections (and of
/// `bind` to port 0): `net.ipv4.ip_local_port_range`, or Linux's default where it cannot be read.
///
/// A server port inside this range can be taken by any outgoing connection while the server is
/// stopped; the connection holds it while open and for a minute after in TIME_WAIT (which
/// `SO_REUSEADDR` does not override for a connection that did not set it), and the restarted
/// server then fails to bind it. Listen ports belong outside it.
pub fn ephemeral_ports() -> RangeInclusive<u16> {
    std::fs::read_to_string(EPHEMERAL_RANGE_FILE)
        .ok()
        .and_then(|text| parse_port_range(&text))
        .unwrap_or(DEFAULT_EPHEMERAL_PORTS)
}

/// The bases `base` for which the `count` ports `base..base + count` all lie in `10000..=65535`
/// and outside `ephemeral` (ports below 10000 are left to well-known services).
fn bases_outside(ephemeral: &RangeInclusive<u16>, count: u16) -> Vec<RangeInclusive<u16>> {
    // `base + count` stays representable.
    let last_base = u16::MAX.saturating_sub(count);
    let mut ranges = Vec::new();
    // Below the ephemeral range.
    if let Some(end) = ephemeral.start().checked_sub(count)
        && end >= 10_000
    {
        ranges.push(10_000..=end.min(last_base));
    }
    // Above it.
    if let Some(start) = ephemeral.end().checked_add(1)
        && start.max(10_000) <= last_base
    {
        ranges.push(start.max(10_000)..=last_base);
    }
    ranges
}

/// A base for [`local_hosts`]`(n, base)` (for tests and benchmarks that start replicas on
/// 127.0.0.1): its `2n` ports are free now and lie outside [`ephemeral_ports`], so that no
/// outgoing connection can take one while a replica is stopped. `seed` spreads concurrent
/// callers over the candidates. `None` if no such run of ports is free.
pub fn free_local_base(n: usize, seed: u64) -> Option<u16> {
    let count = u16::try_from(2 * n).ok()?;
    let candidates: Vec<u16> = bases_outside(&ephemeral_ports(), count).into_iter().flatten().collect();
    if candidates.is_empty() {
        return None;
    }
    let start = (seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16) as usize;
    (0..candidates.len().min(500))
        .map(|attempt| candidates[(start + attempt * 997) % candidates.len()])
        .find(|&base| (0..count).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_ipv4_and_bracketed_ipv6() {
        let hosts = parse_hosts("ca1.example.com:443:7000, 10.0.0.2:8443:7001,[::1]:8444:7002", 3).unwrap();
        assert_eq!(hosts[0], HostSpec { host: "ca1.example.com".into(), https_port: 443, peer_port: 7000 });
        assert_eq!(hosts[1].addr(hosts[1].peer_port), "10.0.0.2:7001");
        assert_eq!(hosts[2].addr(8444), "[::1]:8444");
    }

    #[test]
    fn rejects_malformed_specs_with_a_reason() {
        assert!(matches!(parse_host("example.com:443"), Err(HostError::Shape(_))));
        assert!(matches!(parse_host("example.com:0:7000"), Err(HostError::Port { .. })));
        assert!(matches!(parse_host("example.com:443:70000"), Err(HostError::Port { .. })));
        assert!(matches!(parse_host("exa mple:443:7000"), Err(HostError::Name(_))));
        assert!(matches!(parse_host(":443:7000"), Err(HostError::Name(_))));
        assert!(matches!(parse_host("a:443:443"), Err(HostError::SamePorts(_))));
        assert!(matches!(parse_host("[zz]:1:2"), Err(HostError::Name(_))));
    }

    #[test]
    fn rejects_wrong_count_and_duplicate_endpoints() {
        assert_eq!(parse_hosts("a:1:2,b:1:2", 3), Err(HostError::Count { given: 2, n: 3 }));
        assert!(matches!(parse_hosts("a:1:2,a:2:3", 2), Err(HostError::Duplicate { port: 2, .. })));
    }

    #[test]
    fn local_hosts_use_consecutive_loopback_ports() {
        let hosts = local_hosts(4, 8440).unwrap();
        assert_eq!(hosts.iter().map(|h| h.https_port).collect::<Vec<_>>(), [8440, 8441, 8442, 8443]);
        assert_eq!(hosts.iter().map(|h| h.peer_port).collect::<Vec<_>>(), [8444, 8445, 8446, 8447]);
        assert!(hosts.iter().all(|h| h.host == "127.0.0.1"));
        assert!(local_hosts(4, 65530).is_err());
    }

    #[test]
    fn the_ephemeral_port_range_is_read_as_the_kernel_writes_it() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(32768..=60999));
        assert_eq!(parse_port_range("1024 65535"), Some(1024..=65535));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("32768"), None);
        assert_eq!(parse_port_range("a b"), None);
        let range = ephemeral_ports();
        assert!(range.start() <= range.end());
    }

    #[test]
    fn local_test_ports_never_fall_in_the_ephemeral_range() {
        let default = DEFAULT_EPHEMERAL_PORTS;
        let bases = bases_outside(&default, 8);
        assert_eq!(bases, [10_000..=32_760, 61_000..=65_527]);
        for base in bases.into_iter().flatten() {
            assert!((base..base + 8).all(|port| !default.contains(&port) && port >= 10_000));
        }
        // A range covering everything above 10000 leaves nothing; one at the very top, the rest.
        assert!(bases_outside(&(1024..=65535), 8).is_empty());
        assert_eq!(bases_outside(&(65535..=65535), 8), [10_000..=65_527]);

        let base = free_local_base(4, 7).expect("free ports outside the ephemeral range");
        let range = ephemeral_ports();
        assert!((base..base + 8).all(|port| !range.contains(&port)), "{base} in {range:?}");
        assert!(local_hosts(4, base).is_ok());
    }
}
