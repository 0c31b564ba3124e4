//! Handshakes in progress on a TCP listener, bounded in all and per client, for the pages'
//! HTTPS (`crate::web::tls`) and the hubs' TCP fallback (`crate::run`). A client that opens
//! connections and never finishes a handshake holds a slot until its handshake times out; one
//! client holds at most its share, so one machine stalling handshakes does not keep the others
//! out, and a connection beyond either bound is closed at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How clients are counted: an IPv4 address, or an IPv6 /64 (one household or office, which a
/// provider hands out as many addresses as they like). The look-up's rate limits, sign-in's
/// guard and the handshake slots all count clients so. An IPv4 client on a dual-stack socket
/// (`[::]`) arrives as `::ffff:a.b.c.d`: it is counted by its IPv4 address, not in the one /64
/// every such client shares.
#[must_use]
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1_u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
    }
}

/// Handshakes in progress, in all and per client.
#[derive(Debug)]
pub struct HandshakeSlots {
    global: Arc<Semaphore>,
    per_client_max: usize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

/// A handshake's place among those in progress; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<HandshakeSlots>,
    client: IpAddr,
    _global: OwnedSemaphorePermit,
}

impl HandshakeSlots {
    /// At most `total` handshakes at once, `per_client` of them from one client.
    #[must_use]
    pub fn new(total: usize, per_client: usize) -> Arc<Self> {
        Arc::new(HandshakeSlots {
            global: Arc::new(Semaphore::new(total)),
            per_client_max: per_client,
            per_client: Mutex::default(),
        })
    }

    /// A slot for a handshake from `client`, or `None` when either bound is reached.
    pub fn take(self: &Arc<Self>, client: IpAddr) -> Option<Slot> {
        let client = client_key(client);
        let permit = self.global.clone().try_acquire_owned().ok()?;
        let mut per_client = self
            .per_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = per_client.entry(client).or_insert(0);
        if *count >= self.per_client_max {
            return None;
        }
        *count += 1;
        Some(Slot {
            slots: self.clone(),
            client,
            _global: permit,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut per_client = self
            .slots
            .per_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = per_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                per_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a dual-stack socket IPv4 clients arrive IPv4-mapped: each is still its own client,
    /// not one /64 shared by all of them; IPv6 clients are counted by their /64.
    #[test]
    fn an_ipv4_client_on_a_dual_stack_socket_is_its_own_client() {
        let key = |text: &str| client_key(text.parse().unwrap());
        assert_eq!(key("::ffff:10.0.0.1"), key("10.0.0.1"));
        assert_ne!(key("::ffff:10.0.0.1"), key("::ffff:10.0.0.2"));
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }

    #[test]
    fn a_client_takes_its_share_and_all_take_the_total_and_slots_come_back() {
        let slots = HandshakeSlots::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = slots.take(a).expect("a's first");
        let _second = slots.take(a).expect("a's second");
        assert!(slots.take(a).is_none(), "a holds its share");
        let _third = slots.take(b).expect("b's first");
        assert!(slots.take(b).is_none(), "the total is taken");
        drop(first);
        assert!(slots.take(a).is_some(), "a slot came back");
        // One /64 is one client.
        let v6 = HandshakeSlots::new(8, 1);
        let _held = v6.take("2001:db8::1".parse().unwrap()).unwrap();
        assert!(v6.take("2001:db8::ffff".parse().unwrap()).is_none());
        assert!(v6.take("2001:db8:0:1::1".parse().unwrap()).is_some());
    }
}
