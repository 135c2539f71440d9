//! `--max-connections-per-ip`: how many WebSocket connections one address
//! holds at once, so one host cannot take every `--max-connections` slot.
//! A slot is taken at the upgrade and given back when its [`IpSlot`] is
//! dropped, however the connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Open connections per address. A std mutex: each use is a hash lookup
/// and an increment, never held across an await.
#[derive(Debug)]
pub(super) struct PerIp {
    limit: usize,
    /// Only addresses with connections open: an entry leaves with its
    /// last connection, so the map is as large as the set of clients.
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's slot; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct IpSlot {
    registry: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            limit,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for `ip`, or `None` when it holds `limit` already.
    pub(super) fn try_take(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let ip = normalise(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            registry: Arc::clone(self),
            ip,
        })
    }

    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&normalise(ip)).copied().unwrap_or(0)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self
            .registry
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// An IPv4 client of a dual-stack listener arrives as `::ffff:a.b.c.d`:
/// the same host as `a.b.c.d`, so it is counted as that.
fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn slots_are_counted_per_address_and_freed_on_drop() {
        let per_ip = Arc::new(PerIp::new(2));
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        let first = per_ip.try_take(a).expect("first slot");
        let _second = per_ip.try_take(a).expect("second slot");
        assert!(per_ip.try_take(a).is_none(), "third slot of a");
        let _other = per_ip.try_take(b).expect("b is unaffected");
        drop(first);
        assert_eq!(per_ip.open(a), 1);
        let _again = per_ip.try_take(a).expect("a freed slot is free at once");
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let per_ip = Arc::new(PerIp::new(1));
        let v4 = Ipv4Addr::new(198, 51, 100, 7);
        let _slot = per_ip.try_take(IpAddr::V4(v4)).expect("slot");
        assert!(per_ip.try_take(IpAddr::V6(v4.to_ipv6_mapped())).is_none());
        assert!(per_ip.try_take(IpAddr::V6(Ipv6Addr::LOCALHOST)).is_some());
    }

    #[test]
    fn an_address_leaves_the_map_with_its_last_slot() {
        let per_ip = Arc::new(PerIp::new(3));
        let a = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let slots: Vec<_> = (0..3).filter_map(|_| per_ip.try_take(a)).collect();
        assert_eq!(slots.len(), 3);
        drop(slots);
        assert!(per_ip.open.lock().expect("not poisoned").is_empty());
    }
}
