//! Layer 1: accepting agent connections, within a limit.
//!
//! Every connection, tunnels included, holds one of [`Limits::max_connections`]
//! slots for as long as it lives. A connection that has not yet delivered a
//! complete request (still handshaking, or a tunnel that never got past its
//! first bytes) is *pending*; when every slot is taken, the oldest pending
//! connection is closed to make room, so stalled connections cannot starve
//! the agent's real requests. Pending connections also time out on their own
//! ([`Limits::handshake_timeout`]).

use super::Proxy;
use crate::netinfo::NetView;
use anyhow::Result;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The proxy's bounds on connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Agent connections (tunnels included) served at once.
    pub max_connections: usize,
    /// How long a connection may take to deliver its first complete request
    /// (a tunnel: its TLS handshake and first request inside).
    pub handshake_timeout: Duration,
    /// How long the agent may take to send a request head, and how long an
    /// idle keep-alive connection is kept.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(20),
        }
    }
}

/// One connection's place within the limit.
pub struct Slot {
    /// Since when the connection has been waiting for a complete request;
    /// `None` while it is serving one.
    pending_since: Mutex<Option<tokio::time::Instant>>,
    changed: Notify,
    evicted: AtomicBool,
    evict: Notify,
}

impl Slot {
    fn new() -> Self {
        Slot {
            pending_since: Mutex::new(Some(tokio::time::Instant::now())),
            changed: Notify::new(),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
        }
    }

    /// A complete request arrived: the connection is no longer pending.
    pub fn activate(&self) {
        if self.pending_since.lock().unwrap().take().is_some() {
            self.changed.notify_one();
        }
    }

    /// The connection became a tunnel: pending again until a request arrives inside.
    pub fn set_pending(&self) {
        *self.pending_since.lock().unwrap() = Some(tokio::time::Instant::now());
        self.changed.notify_one();
    }

    fn is_pending(&self) -> bool {
        self.pending_since.lock().unwrap().is_some()
    }

    /// Completes when the connection is chosen to make room.
    pub async fn evicted(&self) {
        let notified = self.evict.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.evicted.load(Ordering::Acquire) {
            return;
        }
        notified.await
    }

    /// Completes once the connection has been pending for `limit` in one go.
    pub async fn stalled(&self, limit: Duration) {
        loop {
            let since = *self.pending_since.lock().unwrap();
            match since {
                Some(t) if tokio::time::Instant::now() >= t + limit => return,
                Some(t) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(t + limit) => {}
                        _ = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// A slot and the permit it holds; dropping it frees the place.
pub struct Admission {
    /// The connection's slot.
    pub slot: Arc<Slot>,
    _permit: OwnedSemaphorePermit,
}

/// The limit on connections, and who may be evicted.
pub struct Slots {
    permits: Arc<Semaphore>,
    order: Mutex<VecDeque<Weak<Slot>>>,
    max: usize,
}

impl Slots {
    /// Room for `max` connections.
    pub fn new(max: usize) -> Self {
        Slots {
            permits: Arc::new(Semaphore::new(max)),
            order: Mutex::new(VecDeque::new()),
            max,
        }
    }

    /// Connections admitted now.
    #[cfg(test)]
    pub fn in_use(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    /// A place for a new connection: at once if one is free, else after
    /// evicting the oldest pending connection (or waiting for one to end).
    pub async fn admit(&self) -> Admission {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                self.evict_oldest_pending();
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore is never closed")
            }
        };
        let slot = Arc::new(Slot::new());
        let mut order = self.order.lock().unwrap();
        if order.len() > 2 * self.max {
            order.retain(|w| w.strong_count() > 0);
        }
        order.push_back(Arc::downgrade(&slot));
        Admission {
            slot,
            _permit: permit,
        }
    }

    fn evict_oldest_pending(&self) {
        let mut order = self.order.lock().unwrap();
        order.retain(|w| w.strong_count() > 0);
        for w in order.iter() {
            let Some(slot) = w.upgrade() else { continue };
            if slot.is_pending() && !slot.evicted.swap(true, Ordering::AcqRel) {
                slot.evict.notify_waiters();
                tracing::warn!("connection limit reached: closing the oldest stalled connection");
                return;
            }
        }
    }
}

/// Who may use the proxy: the agent's networks and loopback, never the
/// egress side.
#[derive(Debug, Clone)]
pub enum PeerFilter {
    /// Anyone who reaches the listener (tests, tools).
    Any,
    /// Loopback, and peers on the agent's networks.
    AgentNetworks(NetView),
}

impl PeerFilter {
    /// Whether a connection from `peer` is served.
    pub fn admits(&self, peer: SocketAddr) -> bool {
        match self {
            PeerFilter::Any => true,
            PeerFilter::AgentNetworks(view) => {
                peer.ip().is_loopback() || view.on_agent_side(peer.ip())
            }
        }
    }
}

/// Serves the proxy on `listeners` until `stop` completes.
pub async fn serve_on(
    proxy: Arc<Proxy>,
    listeners: Vec<TcpListener>,
    filter: PeerFilter,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let slots = Arc::new(Slots::new(proxy.limits.max_connections));
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    for listener in listeners {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok(accepted) => {
                        if tx.send(accepted).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        // Out of descriptors and the like: back off, don't spin.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }
    drop(tx);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            a = rx.recv() => match a { Some(a) => a, None => return Ok(()) },
            _ = &mut stop => return Ok(()),
        };
        if !filter.admits(peer) {
            // Not from the agent's side: closed without a byte.
            tracing::warn!(%peer, "connection from outside the agent's networks refused");
            proxy.record_refused_peer(peer);
            continue;
        }
        let admission = tokio::select! {
            a = slots.admit() => a,
            _ = &mut stop => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        let proxy = proxy.clone();
        tokio::spawn(async move {
            proxy.serve_admitted(stream, local, peer, admission).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_house_evicts_the_oldest_pending_connection_only() {
        let slots = Slots::new(2);
        let a = slots.admit().await;
        let b = slots.admit().await;
        a.slot.activate();
        assert_eq!(slots.in_use(), 2);
        // The third waits for room: `b` (pending) is chosen, `a` (active) is not.
        let third = tokio::spawn({
            let b_slot = b.slot.clone();
            async move {
                b_slot.evicted().await;
            }
        });
        let slots = Arc::new(slots);
        let admitting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.admit().await }
        });
        tokio::time::timeout(Duration::from_secs(1), third)
            .await
            .expect("the pending connection is evicted")
            .unwrap();
        assert!(!a.slot.evicted.load(Ordering::Relaxed));
        drop(b); // the evicted connection ends and frees its place
        let c = tokio::time::timeout(Duration::from_secs(1), admitting)
            .await
            .expect("admitted once room is made")
            .unwrap();
        assert_eq!(slots.in_use(), 2);
        drop(c);
    }

    #[tokio::test]
    async fn a_pending_connection_stalls_out_and_an_active_one_does_not() {
        let slots = Slots::new(4);
        let pending = slots.admit().await;
        let active = slots.admit().await;
        active.slot.activate();
        tokio::time::timeout(
            Duration::from_secs(1),
            pending.slot.stalled(Duration::from_millis(50)),
        )
        .await
        .expect("pending past its limit");
        assert!(tokio::time::timeout(
            Duration::from_millis(200),
            active.slot.stalled(Duration::from_millis(50))
        )
        .await
        .is_err());
    }

    #[test]
    fn only_the_agent_side_and_loopback_are_admitted() {
        let view = NetView {
            addrs: vec![
                crate::netinfo::InterfaceAddr {
                    interface: "eth0".into(),
                    ip: "172.18.0.2".parse().unwrap(),
                    prefix: 16,
                },
                crate::netinfo::InterfaceAddr {
                    interface: "eth1".into(),
                    ip: "10.213.0.3".parse().unwrap(),
                    prefix: 28,
                },
            ],
            default_interfaces: vec!["eth0".into()],
            gateways: vec![],
        };
        let f = PeerFilter::AgentNetworks(view);
        assert!(f.admits("10.213.0.2:5000".parse().unwrap()));
        assert!(f.admits("127.0.0.1:5000".parse().unwrap()));
        assert!(!f.admits("172.18.0.1:5000".parse().unwrap()));
        assert!(!f.admits("172.18.0.9:5000".parse().unwrap()));
    }
}
