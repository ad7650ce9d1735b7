//! [`ReadAhead`]: a [`ChatStream`] read on the runtime ahead of its
//! consumer, into a bounded queue.
//!
//! For consumers on threads of their own (a Python event loop, a blocking
//! caller, a C program). hyper reads a response's next piece only when
//! asked, so a consumer that polled the stream from its own thread would
//! cross to the runtime and back for every chunk; on a virtual machine a
//! wake-up of a sleeping CPU costs tens of microseconds. Read ahead, a
//! consumer takes what is queued without leaving its thread and waits
//! only when the queue is empty.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures::FutureExt;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{ChatChunk, ChatStream};
use crate::error::{Error, Result};

/// A [`ChatStream`] read ahead by a *pump* (the future
/// [`ChatStream::read_ahead`] returns, to run on the runtime), at most
/// `capacity` chunks ahead of [`poll_next`](Self::poll_next).
///
/// Dropping it, or [`close`](Self::close), stops the pump, which drops the
/// stream and so cancels the upstream request.
///
/// ```no_run
/// # fn demo(client: &polyrelay::Client) -> polyrelay::Result<()> {
/// use std::task::{Context, Poll, Waker};
/// let stream = client.stream(
///     "llm.chat",
///     serde_json::json!({"messages": [{"role": "user", "content": "Hello"}]}),
/// )?;
/// let (ahead, pump) = stream.read_ahead(256);
/// polyrelay::internal::shared_runtime()?.spawn(pump);
/// // A chunk already read is taken without waiting:
/// if let Poll::Ready(Some(chunk)) = ahead.poll_next(&mut Context::from_waker(Waker::noop())) {
///     println!("{chunk:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ReadAhead {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Stops the pump.
    closing: Notify,
    /// Tells a pump waiting for room that there is some.
    room: Notify,
}

#[derive(Debug)]
struct State {
    /// Read, not yet taken.
    queue: VecDeque<Result<ChatChunk>>,
    capacity: usize,
    /// The pump queued the stream's last item, or was stopped.
    over: bool,
    /// The pump waits for room in `queue`.
    full: bool,
    /// The consumer waiting for the next item.
    waiter: Option<Waker>,
}

impl ChatStream {
    /// Reads this stream ahead of its consumer, at most `capacity` chunks
    /// (at least 1): the [`ReadAhead`] to take them from, and the pump to
    /// run on the runtime (polling it once on the caller's thread first is
    /// fine: it sends the request from there).
    pub fn read_ahead(self, capacity: usize) -> (ReadAhead, impl Future<Output = ()> + Send) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                capacity: capacity.max(1),
                over: false,
                full: false,
                waiter: None,
            }),
            closing: Notify::new(),
            room: Notify::new(),
        });
        let pump = pump(self, Arc::clone(&shared));
        (ReadAhead { shared }, pump)
    }
}

impl ReadAhead {
    /// A bound for consumers with no reason to pick another: plenty to
    /// absorb a burst, and a bound on what a consumer that stopped reading
    /// holds.
    pub const DEFAULT_CAPACITY: usize = 256;

    /// The next chunk if one was read, `Ready(None)` after the last (or
    /// once closed); otherwise `Pending`, and `cx`'s waker is woken when
    /// there is one. One consumer: a second one's waker replaces the first.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Result<ChatChunk>>> {
        let mut state = self.shared.state.lock();
        if let Some(item) = state.queue.pop_front() {
            let room = std::mem::take(&mut state.full);
            drop(state);
            if room {
                self.shared.room.notify_one();
            }
            return Poll::Ready(Some(item));
        }
        if state.over {
            return Poll::Ready(None);
        }
        match &mut state.waiter {
            Some(waiter) => waiter.clone_from(cx.waker()),
            waiter => *waiter = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Chunks read and not yet taken.
    pub fn buffered(&self) -> usize {
        self.shared.state.lock().queue.len()
    }

    /// Stops reading: the pump drops the stream (cancelling the upstream
    /// request if it was not over) and what was read is dropped; a waiting
    /// consumer is woken, to find the end.
    pub fn close(&self) {
        self.shared.end(true);
        // Stops the pump, now or as soon as it next looks.
        self.shared.closing.notify_one();
    }
}

impl Shared {
    /// Marks the end (dropping what was read if `drop_read`) and wakes a
    /// waiting consumer, to find it.
    fn end(&self, drop_read: bool) {
        let waiter = {
            let mut state = self.state.lock();
            state.over = true;
            if drop_read {
                state.queue.clear();
            }
            state.waiter.take()
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.close();
    }
}

/// Ends the read-ahead when its pump ends, however it ends: dropped
/// before the stream's end (its task aborted, its runtime shut down), it
/// still wakes the consumer, to find the end.
struct PumpEnd(Arc<Shared>);

impl Drop for PumpEnd {
    fn drop(&mut self) {
        self.0.end(false);
    }
}

/// Reads `stream` into `shared` until its last item or until closed.
async fn pump(mut stream: ChatStream, shared: Arc<Shared>) {
    let _end = PumpEnd(Arc::clone(&shared));
    loop {
        let next = tokio::select! {
            biased;
            () = shared.closing.notified() => return,
            next = AssertUnwindSafe(stream.next()).catch_unwind() => next,
        };
        let item = match next {
            Ok(Some(item)) => item,
            // Cannot happen: a stream ends with `Done` or an error.
            Ok(None) => Err(Error::Usage {
                message: "the stream ended without its final chunk".to_string(),
            }),
            // A bug: reported rather than leaving the consumer waiting.
            Err(_) => Err(Error::Usage {
                message: "the stream failed: a panic while reading it".to_string(),
            }),
        };
        let last = !matches!(item, Ok(ChatChunk::Text(_) | ChatChunk::Reasoning(_)));
        let (waiter, full) = {
            let mut state = shared.state.lock();
            if state.over {
                return; // closed meanwhile
            }
            state.queue.push_back(item);
            state.over = last;
            state.full = !last && state.queue.len() >= state.capacity;
            (state.waiter.take(), state.full)
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
        if last {
            return;
        }
        if full {
            tokio::select! {
                biased;
                () = shared.closing.notified() => return,
                () = shared.room.notified() => {}
            }
        }
    }
}
