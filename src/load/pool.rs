//! A shard's idle keep-alive connections, and how many it may be opening at
//! once.
//!
//! An HTTP/1.1 request owns its connection until the response is read, so
//! an open loop needs as many connections as requests in flight. When the
//! target (or the generator's own thread) stalls for a moment, the overdue
//! requests leave together on the next wake; opening a connection for each
//! of them turned a 50 ms hiccup at 5,000 rps into thousands of connects,
//! which cost more CPU than the requests, put the generator further behind
//! and ended in the server's connection limit (measured: 35,000 connections
//! and 13,000 connection errors in a 5 s run). Here at most
//! [`MAX_OPENING`] connects run at once. A request that finds no idle
//! connection connects at once when nobody is waiting and a connect slot is
//! free; otherwise it waits, first come first served, for a connection
//! handed back, and only after [`PATIENCE`] without one takes a connect
//! slot (a connection busy for longer than that is real demand: rate ×
//! latency).
//! The wait is the target's slowness, so it counts in the request's corrected
//! latency, not in the scheduler lag, and it is bounded by the request
//! timeout, after which the request opens a connection of its own.
//!
//! HTTP/2 handles and no-keep-alive targets are not bounded: a shared HTTP/2
//! connection carries many requests, and without keep-alive every request
//! connects anyway (a bound would close the loop).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::{Instant, timeout_at};

use super::client::Client;
use super::connect::Conn;

/// Connects one shard runs at once. On loopback a connect takes tens of µs,
/// so 8 still open thousands per second when the demand is real (a latency
/// spike needs rate × latency connections); against a remote target at
/// 20 ms RTT, 400 per second.
pub const MAX_OPENING: usize = 8;

/// How long a request waits for a connection to be handed back before it
/// opens one. Against a fast target (sub-ms) the overdue requests of a
/// stall are served by connections coming back within it; against a slow
/// one it adds at most this much to the first requests on each new
/// connection, which the corrected latency shows.
pub const PATIENCE: Duration = Duration::from_millis(1);

/// What a waiting request is given.
enum Grant {
    /// A kept-alive connection handed back by a finished request.
    Reuse(Conn),
    /// A connect slot, passed on by a request whose connect finished.
    Open,
}

pub struct Pool {
    idle: RefCell<Vec<Conn>>,
    /// Waiting requests and when each began to wait.
    waiters: RefCell<VecDeque<(Instant, oneshot::Sender<Grant>)>>,
    opening: Cell<usize>,
    /// Whether connects are bounded (HTTP/1.1 with keep-alive).
    bounded: bool,
    /// [`PATIENCE`] (shorter or longer in tests).
    patience: Duration,
}

impl Pool {
    pub fn new(bounded: bool) -> Pool {
        Pool::with_patience(bounded, PATIENCE)
    }

    fn with_patience(bounded: bool, patience: Duration) -> Pool {
        Pool {
            idle: RefCell::new(Vec::new()),
            waiters: RefCell::new(VecDeque::new()),
            opening: Cell::new(0),
            bounded,
            patience,
        }
    }

    /// The most recently returned idle connection (warm, and the fewest
    /// connections stay busy), without waiting.
    pub fn take_idle(&self) -> Option<Conn> {
        self.idle.borrow_mut().pop()
    }

    /// A connection for the next request. `None` means "no connection yet":
    /// the exchange opens one itself (unbounded pools, a failed connect, or
    /// a wait that reached `deadline`).
    pub async fn acquire(&self, client: &Client, deadline: Instant) -> Option<Conn> {
        if let Some(conn) = self.take_idle() {
            return Some(conn);
        }
        if !self.bounded {
            return None;
        }
        let grant = if self.waiters.borrow().is_empty() && self.take_slot() {
            Grant::Open
        } else {
            let now = Instant::now();
            let (tx, mut rx) = oneshot::channel();
            self.waiters.borrow_mut().push_back((now, tx));
            match timeout_at((now + self.patience).min(deadline), &mut rx).await {
                Ok(Ok(grant)) => grant,
                Ok(Err(_)) => return None,
                // Patience is over: a free connect slot, else whichever
                // comes first (a slot is passed on to a waiter this old).
                Err(_) if self.take_slot() => {
                    rx.close();
                    // Closed after a send raced the timeout: keep what came.
                    match rx.try_recv() {
                        Ok(Grant::Reuse(conn)) => {
                            self.connect_done();
                            return Some(conn);
                        }
                        Ok(Grant::Open) => self.connect_done(),
                        Err(_) => {}
                    }
                    Grant::Open
                }
                Err(_) => match timeout_at(deadline, rx).await {
                    Ok(Ok(grant)) => grant,
                    // Waited a whole request timeout: connect outside the
                    // bound rather than wait more (the timeout bounds every
                    // request).
                    _ => return None,
                },
            }
        };
        match grant {
            Grant::Reuse(conn) => Some(conn),
            Grant::Open => {
                // Passes the slot on even if this request is abandoned
                // mid-connect.
                let _slot = OpenSlot(self);
                client.connect(deadline).await
            }
        }
    }

    /// A finished request's connection: to the longest waiter, else idle.
    /// A closed one is dropped.
    pub fn release(&self, conn: Option<Conn>) {
        let Some(mut conn) = conn.filter(|c| !c.is_closed()) else {
            return;
        };
        loop {
            let Some((_, waiter)) = self.waiters.borrow_mut().pop_front() else {
                break;
            };
            // An error gives the grant back: that request timed out waiting
            // or was abandoned, so the next one is asked.
            match waiter.send(Grant::Reuse(conn)) {
                Ok(()) | Err(Grant::Open) => return,
                Err(Grant::Reuse(back)) => conn = back,
            }
        }
        self.idle.borrow_mut().push(conn);
    }

    fn take_slot(&self) -> bool {
        let free = self.opening.get() < MAX_OPENING;
        if free {
            self.opening.set(self.opening.get() + 1);
        }
        free
    }

    /// A connect finished (or was abandoned): its slot goes to the longest
    /// waiter if that one has waited out its patience, else it is freed.
    fn connect_done(&self) {
        let now = Instant::now();
        let mut waiters = self.waiters.borrow_mut();
        while let Some((since, _)) = waiters.front() {
            if now.saturating_duration_since(*since) < self.patience {
                break;
            }
            let (_, waiter) = waiters.pop_front().expect("front exists");
            if waiter.send(Grant::Open).is_ok() {
                return;
            }
        }
        drop(waiters);
        self.opening.set(self.opening.get().saturating_sub(1));
    }

    #[cfg(test)]
    fn counts(&self) -> (usize, usize, usize) {
        (
            self.idle.borrow().len(),
            self.waiters.borrow().len(),
            self.opening.get(),
        )
    }
}

/// A held connect slot; dropping it passes the slot on.
struct OpenSlot<'a>(&'a Pool);

impl Drop for OpenSlot<'_> {
    fn drop(&mut self) {
        self.0.connect_done();
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::time::Duration;

    use super::*;
    use crate::load::client::Target;
    use crate::plan::{LoadMode, Plan};

    /// A real HTTP/1.1 server on port 0 that accepts and holds connections
    /// (the pool only connects; no request is sent here).
    async fn server() -> (reqwest::Url, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        (format!("http://{addr}/").parse().unwrap(), task)
    }

    async fn client(url: &reqwest::Url) -> Client {
        let plan = Plan::single_phase("pool", LoadMode::Open, 1.0, Duration::from_secs(1));
        let (target, _) = Target::prepare(url, &plan.request, &plan.transport)
            .await
            .unwrap();
        Client::new(target, 0, 1)
    }

    /// 3 × MAX_OPENING requests at once, each holding its connection for a
    /// few polls: `patient` waiters are all served by connections handed
    /// back, first come first served, so the shard opens exactly
    /// MAX_OPENING; impatient ones (patience 0) open their own.
    async fn burst(patience: Duration) -> (u64, Vec<usize>) {
        let (url, server) = server().await;
        let local = tokio::task::LocalSet::new();
        let out = local
            .run_until(async move {
                let client = Rc::new(client(&url).await);
                let pool = Rc::new(Pool::with_patience(true, patience));
                let deadline = Instant::now() + Duration::from_secs(30);
                let served = Rc::new(RefCell::new(Vec::new()));
                let mut tasks = Vec::new();
                for i in 0..3 * MAX_OPENING {
                    let (pool, client, served) = (pool.clone(), client.clone(), served.clone());
                    tasks.push(tokio::task::spawn_local(async move {
                        let conn = pool.acquire(&client, deadline).await;
                        assert!(conn.is_some(), "request {i} got no connection");
                        served.borrow_mut().push(i);
                        if patience.is_zero() {
                            // Long enough for the others' patience to end.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        } else {
                            for _ in 0..3 {
                                tokio::task::yield_now().await;
                            }
                        }
                        pool.release(conn);
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
                let (idle, waiting, opening) = pool.counts();
                assert_eq!((waiting, opening), (0, 0));
                assert_eq!(idle as u64, client.record().connections_opened);
                let order = served.borrow().clone();
                (client.record().connections_opened, order)
            })
            .await;
        server.abort();
        out
    }

    #[tokio::test(flavor = "current_thread")]
    async fn bounded_pool_reuses_before_connecting_more() {
        let (opened, order) = burst(Duration::from_secs(30)).await;
        assert_eq!(opened, MAX_OPENING as u64);
        // The connecting ones in any order, then the waiters in theirs.
        let mut first: Vec<usize> = order[..MAX_OPENING].to_vec();
        first.sort_unstable();
        assert_eq!(first, (0..MAX_OPENING).collect::<Vec<_>>());
        assert_eq!(
            order[MAX_OPENING..],
            (MAX_OPENING..3 * MAX_OPENING).collect::<Vec<_>>()
        );
        // Without patience the waiters connect (8 at a time) instead.
        let (opened, _) = burst(Duration::ZERO).await;
        assert_eq!(opened, 3 * MAX_OPENING as u64);
    }

    /// A waiter that reaches its deadline gets `None` (it connects outside
    /// the bound), and a connection handed back afterwards skips its stale
    /// entry and goes idle; an unbounded pool never waits.
    #[tokio::test(flavor = "current_thread")]
    async fn waits_end_at_the_deadline_and_stale_waiters_are_skipped() {
        let (url, server) = server().await;
        let client = client(&url).await;
        let pool = Pool::with_patience(true, Duration::from_secs(30));
        let far = Instant::now() + Duration::from_secs(5);
        let mut held = Vec::new();
        for _ in 0..MAX_OPENING {
            held.push(pool.acquire(&client, far).await);
        }
        // All slots were passed back when the connects finished.
        assert_eq!(pool.counts(), (0, 0, 0));
        // Every connect slot taken (as by connects still in progress).
        pool.opening.set(MAX_OPENING);
        let soon = Instant::now() + Duration::from_millis(20);
        assert!(pool.acquire(&client, soon).await.is_none());
        assert_eq!(pool.counts(), (0, 1, MAX_OPENING));
        pool.release(held.pop().unwrap());
        assert_eq!(pool.counts(), (1, 0, MAX_OPENING));
        // A finished connect with nobody waiting frees its slot.
        pool.connect_done();
        assert_eq!(pool.counts().2, MAX_OPENING - 1);

        let unbounded = Pool::new(false);
        assert!(unbounded.acquire(&client, far).await.is_none());
        assert_eq!(unbounded.counts(), (0, 0, 0));
        server.abort();
    }
}
