//! A second thread for the engines' share of the simulated network's work.
//!
//! Most of a large region's run is engines at work: taking in frames (`Engine::handle` with
//! `Input::Received`), and making the changes of the entries staff make. Many of these fall
//! due in the same simulated millisecond at different nodes (a hub's answer to all its
//! schools; every school's room log at the same minute). [`Region::run`](super::Region::run)
//! lends those nodes' engines out as one [`Batch`]: the main thread and the helper claim its
//! [`Work`] in turn, each engine doing its own, and the main thread then gives each event its
//! turn (the node's outputs carried out, an entry acknowledged) one after another, in the order
//! the events were queued. An engine sees the same inputs in the same order as when one thread
//! does it all, so the run is the same run, frame for frame: its trace digest does not depend
//! on the thread count.
//!
//! The helper waits for a batch by spinning briefly ([`SPIN_WAIT`]), then parks until the main
//! thread posts the next one; a batch it is late for is simply done by the main thread.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{Scope, Thread};
use std::time::{Duration, Instant};

use giasync_shared::sync::{Engine, Input, PeerId};

/// How long the helper spins for the next batch before it parks. Batches come every few
/// hundred microseconds in a busy region; waking a parked thread costs tens of them.
const SPIN_WAIT: Duration = Duration::from_micros(200);

/// How many times the main thread spins for the helper's last job before it yields its core.
const SPINS_BEFORE_YIELD: u32 = 10_000;

/// What a lent engine is to do, with what its event's turn needs afterwards.
#[derive(Debug)]
pub(super) enum Work {
    /// Take in a frame from a peer, come on end `to` of connection `conn`.
    Frame {
        conn: usize,
        to: usize,
        peer: PeerId,
        bytes: Vec<u8>,
    },
    /// Its timer fired.
    Tick,
    /// School `school`'s `entry`: its changes, made; `outcome` once they are.
    Entry {
        school: usize,
        entry: crate::plan::Entry,
        made: super::Made,
        writes: super::Writes,
        outcome: Option<Result<(), String>>,
    },
}

/// One node's engine, lent out of its node for the batch, and its work.
#[derive(Debug)]
pub(super) struct Job {
    /// The node (its index in the region) the engine belongs to.
    pub node: usize,
    pub engine: Engine,
    pub work: Work,
}

/// A batch of jobs at one simulated time, taken by whichever thread claims each first.
#[derive(Debug)]
struct Batch {
    now_ms: i64,
    jobs: Vec<Mutex<Option<Job>>>,
    next: AtomicUsize,
    done: AtomicUsize,
    /// What a job panicked with, raised again on the main thread.
    panicked: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

impl Batch {
    /// Claims and runs jobs until none is left unclaimed.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::AcqRel);
            let Some(slot) = self.jobs.get(i) else {
                return;
            };
            let mut job = slot.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(job) = job.as_mut() {
                let outcome = catch_unwind(AssertUnwindSafe(|| match &mut job.work {
                    Work::Frame { peer, bytes, .. } => job
                        .engine
                        .handle(self.now_ms, Input::Received { peer: *peer, bytes }),
                    Work::Tick => job.engine.handle(self.now_ms, Input::Tick),
                    Work::Entry {
                        writes, outcome, ..
                    } => {
                        *outcome = Some(writes.apply(&mut job.engine, self.now_ms));
                    }
                }));
                if let Err(payload) = outcome {
                    *self.panicked.lock().unwrap_or_else(PoisonError::into_inner) = Some(payload);
                }
            }
            drop(job);
            self.done.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// What the main thread and the helper share.
#[derive(Debug, Default)]
struct Shared {
    /// The batch being worked on, if any.
    current: Mutex<Option<Arc<Batch>>>,
    /// How many batches have been posted.
    posted: AtomicU64,
    stop: AtomicBool,
}

/// The helper thread, from the main thread's side. Stops when dropped.
#[derive(Debug)]
pub(super) struct Helper {
    shared: Arc<Shared>,
    thread: Thread,
}

impl Helper {
    /// Starts the helper in `scope`.
    pub fn start<'scope>(scope: &'scope Scope<'scope, '_>) -> Helper {
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let handle = scope.spawn(move || help(&theirs));
        Helper {
            shared,
            thread: handle.thread().clone(),
        }
    }

    /// Has every job's engine do its work at `now_ms`, the jobs shared between this thread
    /// and the helper; returns them in the order given.
    pub fn run(&self, now_ms: i64, jobs: Vec<Job>) -> Vec<Job> {
        let batch = Arc::new(Batch {
            now_ms,
            jobs: jobs.into_iter().map(|j| Mutex::new(Some(j))).collect(),
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panicked: Mutex::new(None),
        });
        *self
            .shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&batch));
        self.shared.posted.fetch_add(1, Ordering::AcqRel);
        self.thread.unpark();
        batch.work();
        // The helper may still be finishing the job it claimed last; on a machine with fewer
        // free cores than threads it may need this one to do so.
        let mut spins = 0u32;
        while batch.done.load(Ordering::Acquire) < batch.jobs.len() {
            spins += 1;
            if spins < SPINS_BEFORE_YIELD {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        *self
            .shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        if let Some(payload) = batch
            .panicked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            resume_unwind(payload);
        }
        batch
            .jobs
            .iter()
            .filter_map(|slot| slot.lock().unwrap_or_else(PoisonError::into_inner).take())
            .collect()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// The helper's loop: wait for a batch, take part in it, until stopped.
fn help(shared: &Shared) {
    let mut seen = 0;
    loop {
        let waiting_from = Instant::now();
        loop {
            if shared.stop.load(Ordering::Acquire) {
                return;
            }
            if shared.posted.load(Ordering::Acquire) != seen {
                break;
            }
            if waiting_from.elapsed() < SPIN_WAIT {
                std::hint::spin_loop();
            } else {
                std::thread::park();
            }
        }
        seen = shared.posted.load(Ordering::Acquire);
        let batch = shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(batch) = batch {
            batch.work();
        }
    }
}
