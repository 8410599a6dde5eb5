//! Who the client is, by address: the socket's peer, unless that peer is a proxy the
//! operator trusts (`KETTLE_TRUSTED_PROXIES`), in which case the address the proxy
//! reports in `X-Forwarded-For` (or `Forwarded`).
//!
//! Behind a load balancer every connection comes from the balancer; counting sign-in
//! failures by the peer would then lock out everyone at once. But a header is only as
//! good as whoever wrote it, so it is believed only from listed proxies, and read from
//! the right: the nearest entry a trusted proxy did not add is the client.

use std::{net::IpAddr, str::FromStr};

use anyhow::{anyhow, bail};
use poem::{http::HeaderMap, Request};

/// An address range such as `10.0.0.0/8` or `::1/128` (a bare address means just it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Cidr> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().map_err(|_| anyhow!("{text:?} is not an IP address or range"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| anyhow!("{text:?} has a bad prefix length"))?
            }
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        match (self.network, address) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Parses `KETTLE_TRUSTED_PROXIES`: ranges separated by commas or spaces.
pub fn parse_ranges(text: &str) -> anyhow::Result<Vec<Cidr>> {
    let ranges: Vec<Cidr> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(Cidr::from_str)
        .collect::<anyhow::Result<_>>()?;
    if ranges.len() > 1000 {
        bail!("list at most 1000 ranges");
    }
    Ok(ranges)
}

/// An IPv4 address arriving as IPv6 (`::ffff:192.0.2.1`) is the IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
        v4 => v4,
    }
}

/// The client's address for `request`, as rate limits and logs should see it.
pub fn address(request: &Request, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = request.remote_addr().as_socket_addr()?.ip();
    Some(address_from(peer, request.headers(), trusted))
}

/// The client's address, given the socket's peer and the request's headers.
pub fn address_from(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let peer = canonical(peer);
    if !trusted.iter().any(|range| range.contains(peer)) {
        return peer;
    }
    let joined = |name: &str| -> Option<String> {
        let values: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
        (!values.is_empty()).then(|| values.join(","))
    };
    let hops: Vec<IpAddr> = if let Some(list) = joined("x-forwarded-for") {
        list.split(',').filter_map(|hop| parse_hop(hop.trim())).collect()
    } else if let Some(list) = joined("forwarded") {
        list.split([',', ';'])
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
            .filter_map(|(_, value)| parse_hop(value.trim().trim_matches('"')))
            .collect()
    } else {
        Vec::new()
    };
    // From the right: skip the hops our own proxies added; the first other one is the
    // client. If every hop is a proxy of ours, the leftmost is the best we know.
    hops.iter()
        .rev()
        .find(|hop| !trusted.iter().any(|range| range.contains(**hop)))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

/// One hop: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711` or `2001:db8::1`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = hop.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']').and_then(|(address, _)| address.parse().ok()).map(canonical);
    }
    hop.rsplit_once(':').and_then(|(address, _)| address.parse().ok()).map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(peer: &str, headers: &[(&str, &str)], trusted: &[Cidr]) -> IpAddr {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(poem::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        address_from(peer.parse().unwrap(), &map, trusted)
    }

    #[test]
    fn ranges() {
        let range: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(range.contains("10.1.2.3".parse().unwrap()));
        assert!(range.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!range.contains("11.0.0.1".parse().unwrap()));
        let one: Cidr = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()) && !one.contains("::2".parse().unwrap()));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains("203.0.113.9".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0/8", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(parse_ranges("10.0.0.0/8, 127.0.0.1 ::1").unwrap().len(), 3);
    }

    #[test]
    fn headers_are_believed_only_from_trusted_proxies() {
        let trusted = parse_ranges("10.0.0.0/8").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // A client talking to us directly cannot pick its own address.
        assert_eq!(client("203.0.113.9", &[("x-forwarded-for", "1.2.3.4")], &trusted), ip("203.0.113.9"));
        // Through our proxy: the nearest hop the proxy did not add; a spoofed leftmost entry is ignored.
        let via = [("x-forwarded-for", "6.6.6.6, 198.51.100.7"), ("x-forwarded-for", "10.0.0.3")];
        assert_eq!(client("10.0.0.2", &via, &trusted), ip("198.51.100.7"));
        let forwarded = [("forwarded", "for=\"[2001:db8::7]:4711\";proto=https")];
        assert_eq!(client("10.0.0.2", &forwarded, &trusted), ip("2001:db8::7"));
        assert_eq!(client("10.0.0.2", &[], &trusted), ip("10.0.0.2"));
        assert_eq!(client("::ffff:10.0.0.2", &[("x-forwarded-for", "192.0.2.5:443")], &trusted), ip("192.0.2.5"));
    }
}
