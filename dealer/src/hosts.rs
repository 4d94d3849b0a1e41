//! Where each replica lives: parsing `--hosts host:https_port:peer_port,...` and the `--local`
//! shorthand.

use std::net::IpAddr;

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
}
