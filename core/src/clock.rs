//! Time, injected.
//!
//! Every piece of polyrelay that depends on time (breaker windows, backoff,
//! rate limits, daily quotas, cache freshness, deadlines) reads it through a
//! [`Clock`]. Production uses [`SystemClock`]; tests use [`FakeClock`] and move
//! time by hand, so no test ever has to sleep to see a timeout or a reset.
//!
//! Monotonic time is a [`Duration`] since the clock's own origin: it never goes
//! backwards and is what durations are measured with. Wall time is UTC and is
//! only used where the calendar matters (daily quotas, `Retry-After` dates,
//! `fetched_at` stamps).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

/// A boxed future that completes when a timer fires.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The source of time for everything in polyrelay.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Monotonic time since this clock's origin.
    fn now(&self) -> Duration;

    /// Current wall-clock time in UTC.
    fn wall(&self) -> DateTime<Utc>;

    /// Completes once [`Clock::now`] has reached `deadline`. Used for timeouts
    /// and deadlines.
    fn sleep_until(&self, deadline: Duration) -> Sleep;

    /// Waits `delay` between retries. Same as a timer by default; a
    /// [`FakeClock`] in auto-advance mode jumps time forward instead.
    fn backoff(&self, delay: Duration) -> Sleep {
        self.sleep_until(self.now().saturating_add(delay))
    }
}

/// A shared clock handle, as stored by every component.
pub type SharedClock = Arc<dyn Clock>;

/// The real clock: `std::time::Instant` for monotonic time, the system
/// time for wall time, and tokio timers for sleeping.
#[derive(Debug, Clone)]
pub struct SystemClock {
    origin: std::time::Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: std::time::Instant::now(),
        }
    }

    /// The shared handle most callers want.
    pub fn shared() -> SharedClock {
        Arc::new(Self::new())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn wall(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: Duration) -> Sleep {
        timer_anchor::keep_armed();
        let at = tokio::time::Instant::from_std(self.origin + deadline);
        Box::pin(tokio::time::sleep_until(at))
    }
}

/// Keeps the runtime's timer wheel from running empty while calls come.
///
/// Tokio wakes a parked runtime thread (an eventfd write, then a context
/// switch) whenever a timer is registered earlier than the wheel's next
/// expiry, and an empty wheel has none. Between calls every deadline timer
/// is gone, so each call's first timer woke a thread for nothing: measured
/// at about two extra context switches per streamed answer, most of what
/// polyrelay added to the time to first token. One timer per thread kept up
/// to a second ahead makes call deadlines, seconds away, land after the
/// wheel's next expiry, so registering them wakes no one. The cost is one
/// wake-up per second per thread while calls keep coming, and none once they
/// stop: only a call re-arms it.
mod timer_anchor {
    use std::cell::RefCell;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Waker};
    use std::time::Duration;

    use tokio::time::Instant;

    const AHEAD: Duration = Duration::from_secs(1);

    thread_local! {
        static ANCHOR: RefCell<Option<(Instant, Pin<Box<tokio::time::Sleep>>)>> =
            const { RefCell::new(None) };
    }

    /// Arms this thread's anchor if it is missing or has fired. A new timer
    /// each time (not a reset) so that it follows the thread to whichever
    /// runtime it now runs on.
    pub(super) fn keep_armed() {
        let now = Instant::now();
        // `try_with`: nothing to do while the thread is being torn down.
        let _ = ANCHOR.try_with(|anchor| {
            let Ok(mut anchor) = anchor.try_borrow_mut() else {
                return;
            };
            if anchor.as_ref().is_some_and(|(at, _)| *at > now) {
                return;
            }
            let at = now + AHEAD;
            let mut sleep = Box::pin(tokio::time::sleep_until(at));
            // The first poll registers it; nobody awaits it.
            let _ = sleep.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            *anchor = Some((at, sleep));
        });
    }

    #[cfg(test)]
    pub(super) fn armed_until() -> Option<Instant> {
        ANCHOR.with(|anchor| anchor.borrow().as_ref().map(|(at, _)| *at))
    }
}

/// A clock that only moves when told to.
///
/// Timers registered with [`Clock::sleep_until`] fire when [`FakeClock::advance`]
/// or [`FakeClock::set`] moves time to or past their deadline. With
/// [`FakeClock::auto_advance`] on, [`Clock::backoff`] moves time forward by the
/// requested delay at once (firing any timer it passes), so retry loops run
/// instantly while still seeing the exact virtual delays.
///
/// ```
/// use polyrelay::clock::{Clock, FakeClock};
/// use std::time::Duration;
///
/// let clock = FakeClock::new("2025-10-21T07:27:30Z".parse().unwrap());
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(clock.now(), Duration::from_secs(30));
/// assert_eq!(clock.wall().to_rfc3339(), "2025-10-21T07:28:00+00:00");
/// ```
#[derive(Clone)]
pub struct FakeClock {
    inner: Arc<FakeInner>,
}

struct FakeInner {
    state: Mutex<FakeState>,
    wall_origin: DateTime<Utc>,
}

struct FakeState {
    now: Duration,
    auto_advance: bool,
    next_id: u64,
    timers: BTreeMap<(Duration, u64), Waker>,
}

impl fmt::Debug for FakeClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeClock")
            .field("now", &self.now())
            .field("wall", &self.wall())
            .finish()
    }
}

impl FakeClock {
    /// A clock at monotonic zero whose wall time starts at `wall_origin`.
    pub fn new(wall_origin: DateTime<Utc>) -> Self {
        Self {
            inner: Arc::new(FakeInner {
                state: Mutex::new(FakeState {
                    now: Duration::ZERO,
                    auto_advance: false,
                    next_id: 0,
                    timers: BTreeMap::new(),
                }),
                wall_origin,
            }),
        }
    }

    /// A clock starting at 2025-01-01T00:00:00Z.
    pub fn at_epoch() -> Self {
        Self::new(DateTime::<Utc>::from_timestamp(1_735_689_600, 0).unwrap_or_default())
    }

    /// The shared handle to give to polyrelay components.
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }

    /// Turns auto-advance of backoff sleeps on or off.
    pub fn auto_advance(&self, on: bool) -> &Self {
        self.inner.state.lock().auto_advance = on;
        self
    }

    /// Moves time forward by `by`, firing every timer that is now due.
    pub fn advance(&self, by: Duration) {
        let mut state = self.inner.state.lock();
        let target = state.now.saturating_add(by);
        Self::move_to(&mut state, target);
    }

    /// Moves time to `now` (never backwards), firing due timers.
    pub fn set(&self, now: Duration) {
        let mut state = self.inner.state.lock();
        Self::move_to(&mut state, now);
    }

    /// Moves time so that the wall clock reads `wall` (never backwards).
    pub fn set_wall(&self, wall: DateTime<Utc>) {
        let since = (wall - self.inner.wall_origin)
            .to_std()
            .unwrap_or(Duration::ZERO);
        self.set(since);
    }

    /// How many timers are waiting; lets a test wait until a task is parked.
    pub fn pending_timers(&self) -> usize {
        self.inner.state.lock().timers.len()
    }

    fn move_to(state: &mut FakeState, target: Duration) {
        if target > state.now {
            state.now = target;
        }
        let now = state.now;
        while let Some(entry) = state.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            entry.remove().wake();
        }
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Duration {
        self.inner.state.lock().now
    }

    fn wall(&self) -> DateTime<Utc> {
        let now = self.now();
        self.inner.wall_origin + chrono::Duration::from_std(now).unwrap_or(chrono::Duration::zero())
    }

    fn sleep_until(&self, deadline: Duration) -> Sleep {
        Box::pin(FakeSleep {
            clock: self.clone(),
            deadline,
            id: None,
        })
    }

    fn backoff(&self, delay: Duration) -> Sleep {
        let mut state = self.inner.state.lock();
        let deadline = state.now.saturating_add(delay);
        if state.auto_advance {
            Self::move_to(&mut state, deadline);
        }
        drop(state);
        self.sleep_until(deadline)
    }
}

struct FakeSleep {
    clock: FakeClock,
    deadline: Duration,
    id: Option<u64>,
}

impl Future for FakeSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let clock = self.clock.clone();
        let mut state = clock.inner.state.lock();
        if state.now >= self.deadline {
            if let Some(id) = self.id.take() {
                state.timers.remove(&(self.deadline, id));
            }
            return Poll::Ready(());
        }
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = state.next_id;
                state.next_id += 1;
                self.id = Some(id);
                id
            }
        };
        state.timers.insert((self.deadline, id), cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for FakeSleep {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.clock
                .inner
                .state
                .lock()
                .timers
                .remove(&(self.deadline, id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_system_timer_keeps_the_threads_anchor_a_second_ahead() {
        let clock = SystemClock::new();
        let _first = clock.sleep_until(Duration::from_secs(30));
        let armed = timer_anchor::armed_until().expect("armed by the first timer");
        let ahead = armed.saturating_duration_since(tokio::time::Instant::now());
        assert!(ahead > Duration::from_millis(900) && ahead <= Duration::from_secs(1));
        // Later timers within that second leave it as it is...
        let _second = clock.sleep_until(Duration::from_secs(31));
        assert_eq!(timer_anchor::armed_until(), Some(armed));
        // ...and once it has fired, the next one arms it again.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let _third = clock.sleep_until(Duration::from_secs(32));
        assert!(timer_anchor::armed_until().is_some_and(|at| at > armed));
    }

    #[tokio::test]
    async fn fake_timer_fires_only_when_time_reaches_deadline() {
        let clock = FakeClock::at_epoch();
        let sleep = clock.sleep_until(Duration::from_secs(5));
        let handle = tokio::spawn(sleep);
        tokio::task::yield_now().await;
        clock.advance(Duration::from_millis(4_999));
        tokio::task::yield_now().await;
        assert!(!handle.is_finished());
        clock.advance(Duration::from_millis(1));
        handle.await.unwrap();
        assert_eq!(clock.pending_timers(), 0);
    }

    #[tokio::test]
    async fn auto_advance_moves_time_by_the_backoff_delay() {
        let clock = FakeClock::at_epoch();
        clock.auto_advance(true);
        clock.backoff(Duration::from_secs(3)).await;
        assert_eq!(clock.now(), Duration::from_secs(3));
    }

    #[test]
    fn set_wall_never_moves_backwards() {
        let clock = FakeClock::at_epoch();
        clock.advance(Duration::from_secs(10));
        clock.set_wall(DateTime::<Utc>::from_timestamp(1_735_689_600, 0).unwrap());
        assert_eq!(clock.now(), Duration::from_secs(10));
    }
}
