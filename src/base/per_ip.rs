//! [`PerIp`]: how many connections each peer address has open, against one limit shared by
//! every IO loop (nginx's `limit_conn` on the remote address). Admission hands out an
//! [`IpSlot`] that the connection keeps; dropping it, wherever the connection ends, gives the
//! place back.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use parking_lot::Mutex;

/// What is counted per peer: an IPv4 address (IPv4-mapped IPv6 ones included), or the /64
/// network of an IPv6 address — one host is given a whole /64, so counting its addresses one
/// by one would limit nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum IpKey {
    V4([u8; 4]),
    V6Net(u64),
}

impl IpKey {
    pub(crate) fn of(ip: IpAddr) -> IpKey {
        match ip {
            IpAddr::V4(v4) => IpKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpKey::V4(v4.octets()),
                None => IpKey::V6Net(net64(&v6)),
            },
        }
    }
}

fn net64(v6: &Ipv6Addr) -> u64 {
    (u128::from_be_bytes(v6.octets()) >> 64) as u64
}

/// Open connections per peer address, with the most each may have.
#[derive(Debug)]
pub(crate) struct PerIp {
    limit: u32,
    open: Mutex<HashMap<IpKey, u32>>,
}

impl PerIp {
    pub(crate) fn new(limit: u32) -> Arc<PerIp> {
        Arc::new(PerIp { limit: limit.max(1), open: Mutex::new(HashMap::new()) })
    }

    /// Counts one more connection from `ip`, or `None` if it already has the limit open.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let key = IpKey::of(ip);
        let mut open = self.open.lock();
        let n = open.entry(key).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(IpSlot { table: self.clone(), key })
    }

    /// Connections open from `ip`'s address (or /64).
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> u32 {
        self.open.lock().get(&IpKey::of(ip)).copied().unwrap_or(0)
    }

    /// Addresses with a connection open.
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.open.lock().len()
    }
}

/// One admitted connection's place in its address's count, given back on drop.
#[derive(Debug)]
pub(crate) struct IpSlot {
    table: Arc<PerIp>,
    key: IpKey,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock();
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_per_address_and_gives_back_on_drop() {
        let t = PerIp::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = t.admit(a).unwrap();
        let _s2 = t.admit(a).unwrap();
        assert!(t.admit(a).is_none(), "a third from the same address");
        let _s3 = t.admit(b).expect("another address has its own count");
        drop(s1);
        assert_eq!(t.open(a), 1);
        let _s4 = t.admit(a).expect("a place was given back");
        drop((_s2, _s3, _s4));
        assert_eq!(t.addresses(), 0, "no entry left for addresses with nothing open");
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        let t = PerIp::new(1);
        let _x = t.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(t.admit("2001:db8:1:2:ffff::9".parse().unwrap()).is_none(), "same /64");
        let _y = t.admit("2001:db8:1:3::1".parse().unwrap()).expect("another /64");
        let _z = t.admit("192.0.2.7".parse().unwrap()).unwrap();
        assert!(t.admit("::ffff:192.0.2.7".parse().unwrap()).is_none(), "mapped: the same IPv4 peer");
    }
}
