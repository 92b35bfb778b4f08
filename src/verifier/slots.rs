//! Verification slots shared fairly between tenants (namespaces): when every slot is busy, the
//! next free slot goes to the tenant whose turn it is, round-robin, not to whoever queued
//! first. One namespace with 100,000 stranded mappings on a slow server therefore delays
//! another namespace's single verification by about one verification, not by 100,000.
//!
//! Owns: the count of free slots, the waiting queues per tenant and the turn order. Must not:
//! know what a slot is used for, or wait on anything but a slot.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// At most `n` holders at once, handed out round-robin between tenants.
pub struct FairSlots {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    free: usize,
    waiting: HashMap<String, VecDeque<oneshot::Sender<()>>>,
    /// Tenants with waiters, the next to be served first.
    turn: VecDeque<String>,
}

/// A held slot; dropping it hands the slot to the next waiter.
pub struct Slot {
    inner: Arc<Mutex<Inner>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        release(&self.inner);
    }
}

/// A place in a queue. Dropped before its slot arrived, it leaves the queue; dropped after the
/// slot was handed to it but before it was taken, it passes the slot on.
struct Waiting {
    rx: oneshot::Receiver<()>,
    inner: Arc<Mutex<Inner>>,
    taken: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.taken {
            return;
        }
        self.rx.close();
        if self.rx.try_recv().is_ok() {
            release(&self.inner);
        }
    }
}

impl FairSlots {
    /// `n` slots (at least one).
    pub fn new(n: usize) -> FairSlots {
        FairSlots {
            inner: Arc::new(Mutex::new(Inner {
                free: n.max(1),
                waiting: HashMap::new(),
                turn: VecDeque::new(),
            })),
        }
    }

    /// A slot for `tenant`, when its turn comes.
    pub async fn acquire(&self, tenant: &str) -> Slot {
        let rx = {
            let mut inner = lock(&self.inner);
            if inner.free > 0 {
                inner.free -= 1;
                return Slot {
                    inner: self.inner.clone(),
                };
            }
            let (tx, rx) = oneshot::channel();
            let queue = inner.waiting.entry(tenant.to_owned()).or_default();
            let first_of_tenant = queue.is_empty();
            queue.push_back(tx);
            if first_of_tenant {
                inner.turn.push_back(tenant.to_owned());
            }
            rx
        };
        let mut waiting = Waiting {
            rx,
            inner: self.inner.clone(),
            taken: false,
        };
        // The sender is only dropped after a send, or when the waiter is gone.
        let _ = (&mut waiting.rx).await;
        waiting.taken = true;
        Slot {
            inner: self.inner.clone(),
        }
    }
}

/// Hands a freed slot to the first waiter of the tenant whose turn it is (that tenant goes to
/// the back of the turn if it still waits), or counts it free when nobody waits.
fn release(inner: &Mutex<Inner>) {
    let mut inner = lock(inner);
    while let Some(tenant) = inner.turn.pop_front() {
        let Some(queue) = inner.waiting.get_mut(&tenant) else {
            continue;
        };
        let next = queue.pop_front();
        if queue.is_empty() {
            inner.waiting.remove(&tenant);
        } else {
            inner.turn.push_back(tenant);
        }
        // A waiter that went away took its queue place with it: serve the next.
        if next.is_some_and(|tx| tx.send(()).is_ok()) {
            return;
        }
    }
    inner.free += 1;
}

fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    // Every critical section leaves the counts consistent: a poisoned lock is still usable.
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Starts a task per `(tenant, label)` that takes a slot, records its label and holds the
    /// slot until told to go; returns the order in which slots were granted.
    async fn grant_order(slots: Arc<FairSlots>, queued: &[(&str, &str)]) -> Vec<String> {
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = slots.acquire("holder").await;
        let mut tasks = Vec::new();
        for (tenant, label) in queued {
            let (mine, order) = (slots.clone(), order.clone());
            let (tenant, label) = (tenant.to_string(), label.to_string());
            tasks.push(tokio::spawn(async move {
                let _slot = mine.acquire(&tenant).await;
                order.lock().unwrap().push(label);
            }));
            // Queue in this order: wait until the task is queued.
            while lock(&slots.inner)
                .waiting
                .values()
                .map(VecDeque::len)
                .sum::<usize>()
                < tasks.len()
            {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        Arc::try_unwrap(order).unwrap().into_inner().unwrap()
    }

    #[tokio::test]
    async fn a_late_tenant_is_served_after_one_grant_of_a_busy_one_not_after_its_whole_queue() {
        let slots = Arc::new(FairSlots::new(1));
        let order = grant_order(
            slots,
            &[
                ("a", "a1"),
                ("a", "a2"),
                ("a", "a3"),
                ("a", "a4"),
                ("b", "b1"),
            ],
        )
        .await;
        assert_eq!(order, ["a1", "b1", "a2", "a3", "a4"]);
    }

    #[tokio::test]
    async fn tenants_take_turns() {
        let slots = Arc::new(FairSlots::new(1));
        let order = grant_order(
            slots,
            &[
                ("a", "a1"),
                ("a", "a2"),
                ("b", "b1"),
                ("b", "b2"),
                ("c", "c1"),
            ],
        )
        .await;
        assert_eq!(order, ["a1", "b1", "c1", "a2", "b2"]);
    }

    #[tokio::test]
    async fn a_waiter_that_goes_away_loses_no_slot() {
        let slots = Arc::new(FairSlots::new(1));
        let held = slots.acquire("a").await;
        let gone = {
            let slots = slots.clone();
            tokio::spawn(async move {
                let _slot = slots.acquire("b").await;
            })
        };
        while lock(&slots.inner).waiting.is_empty() {
            tokio::task::yield_now().await;
        }
        gone.abort();
        let _ = gone.await;
        drop(held);
        // The one slot is free again: it can be taken at once.
        tokio::time::timeout(Duration::from_secs(5), slots.acquire("c"))
            .await
            .expect("the slot came back");
    }

    #[tokio::test]
    async fn free_slots_are_taken_without_waiting() {
        let slots = FairSlots::new(3);
        let _a = slots.acquire("a").await;
        let _b = slots.acquire("a").await;
        let _c = slots.acquire("b").await;
        assert_eq!(lock(&slots.inner).free, 0);
    }
}
