//! A second thread for the engines' share of the simulated network's work.
//!
//! Most of a large region's run is engines at work: taking in frames (`Engine::handle` with
//! `Input::Received`), and making the changes of the entries staff make. Many of these fall
//! due close together at different nodes (a hub's answer to all its schools; every school's
//! room log at the same minute; the РЦОИ's frames beside its hubs' and schools' work), within
//! less than a link's latency of each other, so that none can reach another's node first.
//! [`Region::run`](super::Region::run) lends those nodes' engines out as one [`Batch`]
//! ([`Helper::post`]): the main thread and the helper claim its [`Work`] in order, each engine
//! doing its own, and the main thread gives each event its turn (the node's outputs carried
//! out, an entry acknowledged) one after another, in the order the events were queued, as
//! soon as its work is done ([`Posted::take`]) while the helper goes on with the later jobs.
//! An engine sees the same inputs at the same times in the same order as when one thread does
//! it all, so the run is the same run, frame for frame: its trace digest does not depend on
//! the thread count.
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

/// How many times the main thread spins for a job the helper is doing before it yields its
/// core.
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

/// One node's engine, lent out of its node for the batch, and its work, done at `now_ms` (its
/// event's time).
#[derive(Debug)]
pub(super) struct Job {
    /// The node (its index in the region) the engine belongs to.
    pub node: usize,
    pub engine: Engine,
    pub work: Work,
    pub now_ms: i64,
}

/// A batch of jobs, taken by whichever thread claims each first, in order.
#[derive(Debug)]
struct Batch {
    jobs: Vec<Mutex<Option<Job>>>,
    next: AtomicUsize,
    /// Per job: whether its work is done.
    finished: Vec<AtomicBool>,
    /// What a job panicked with, raised again on the main thread.
    panicked: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

impl Batch {
    /// Claims and runs jobs until none is left unclaimed.
    fn work(&self) {
        while self.work_one() {}
    }

    /// Claims and runs the next job not yet claimed; false when there is none.
    fn work_one(&self) -> bool {
        let i = self.next.fetch_add(1, Ordering::AcqRel);
        let (Some(slot), Some(finished)) = (self.jobs.get(i), self.finished.get(i)) else {
            return false;
        };
        let mut job = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(job) = job.as_mut() {
            let now_ms = job.now_ms;
            let outcome = catch_unwind(AssertUnwindSafe(|| match &mut job.work {
                Work::Frame { peer, bytes, .. } => job
                    .engine
                    .handle(now_ms, Input::Received { peer: *peer, bytes }),
                Work::Tick => job.engine.handle(now_ms, Input::Tick),
                Work::Entry {
                    writes, outcome, ..
                } => {
                    *outcome = Some(writes.apply(&mut job.engine, now_ms));
                }
            }));
            if let Err(payload) = outcome {
                *self.panicked.lock().unwrap_or_else(PoisonError::into_inner) = Some(payload);
            }
        }
        drop(job);
        finished.store(true, Ordering::Release);
        true
    }

    /// Until `done`: does the jobs no thread has claimed yet, then spins (yielding now and
    /// then: the helper may need this core to finish the job it holds).
    fn help_until(&self, done: impl Fn(&Batch) -> bool) {
        let mut spins = 0u32;
        while !done(self) {
            if self.work_one() {
                continue;
            }
            spins += 1;
            if spins < SPINS_BEFORE_YIELD {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Whether job `k` is done (or there is no such job).
    fn finished(&self, k: usize) -> bool {
        self.finished
            .get(k)
            .is_none_or(|f| f.load(Ordering::Acquire))
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

    /// Posts `jobs` to be done, shared between this thread and the helper; they are taken
    /// back one by one, in the order given ([`Posted::take`]).
    pub fn post(&self, jobs: Vec<Job>) -> Posted<'_> {
        let batch = Arc::new(Batch {
            finished: jobs.iter().map(|_| AtomicBool::new(false)).collect(),
            jobs: jobs.into_iter().map(|j| Mutex::new(Some(j))).collect(),
            next: AtomicUsize::new(0),
            panicked: Mutex::new(None),
        });
        *self
            .shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&batch));
        self.shared.posted.fetch_add(1, Ordering::AcqRel);
        self.thread.unpark();
        Posted {
            helper: self,
            batch,
            taken: 0,
        }
    }
}

/// A batch posted to the helper, its jobs taken back in order as they are done. Dropping it
/// waits for every job (a job whose engine is not taken back is dropped with it).
#[derive(Debug)]
pub(super) struct Posted<'a> {
    helper: &'a Helper,
    batch: Arc<Batch>,
    taken: usize,
}

impl Posted<'_> {
    /// The next job in the order posted, its work done: while it is not, this thread does
    /// the jobs no thread has claimed yet, then waits for the helper's. `None` once every job
    /// was taken. A panic in any job done so far is raised here.
    pub fn take(&mut self) -> Option<Job> {
        let k = self.taken;
        self.taken += 1;
        self.batch.help_until(|b| b.finished(k));
        if let Some(payload) = self
            .batch
            .panicked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            resume_unwind(payload);
        }
        self.batch
            .jobs
            .get(k)?
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl Drop for Posted<'_> {
    fn drop(&mut self) {
        // A job's panic is not raised here (it may be dropped while unwinding already): the
        // helper must only be done with the batch.
        let last = self.batch.jobs.len();
        self.batch.help_until(|b| (0..last).all(|k| b.finished(k)));
        *self
            .helper
            .shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
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
