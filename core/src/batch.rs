//! Many calls of one client at once, with bounded concurrency.

use std::collections::HashMap;
use std::num::NonZeroUsize;

use futures::stream::{self, Stream};
use tokio::task::{Id, JoinSet};

use crate::answer::Envelope;
use crate::capability::Request;
use crate::client::Client;
use crate::error::{Error, Result};

impl Client {
    /// Calls every request with at most `concurrency` calls in flight, each
    /// on its own task of the current runtime (so they spread over its
    /// worker threads). Yields `(index, outcome)` as each call finishes,
    /// `index` being the request's position in `requests`.
    ///
    /// Requests are taken from `requests` only as slots free up, so a long
    /// batch never holds more than `concurrency` calls. Dropping the stream
    /// cancels the calls still running. A panicking call resumes its panic
    /// in the stream's poller, as a single call would.
    ///
    /// Must be polled inside a tokio runtime.
    ///
    /// ```no_run
    /// # async fn demo(client: polyrelay::Client) -> polyrelay::Result<()> {
    /// use futures::StreamExt;
    /// use std::num::NonZeroUsize;
    /// let cities = ["Berlin", "Paris", "Rome"];
    /// let requests = cities
    ///     .iter()
    ///     .map(|city| polyrelay::Request::parse("weather.current", serde_json::json!({"city": city})))
    ///     .collect::<polyrelay::Result<Vec<_>>>()?;
    /// let concurrency = NonZeroUsize::new(2).expect("2 is not zero");
    /// let mut results = client.batch(requests, concurrency);
    /// while let Some((index, outcome)) = results.next().await {
    ///     println!("{}: {:?}", cities[index], outcome.map(|e| e.provider));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn batch<I>(
        &self,
        requests: I,
        concurrency: NonZeroUsize,
    ) -> impl Stream<Item = (usize, Result<Envelope>)> + Send + Unpin + 'static
    where
        I: IntoIterator<Item = Request>,
        I::IntoIter: Send + 'static,
    {
        let state = Batch {
            client: self.clone(),
            pending: requests.into_iter().enumerate(),
            running: JoinSet::new(),
            indices: HashMap::new(),
            concurrency: concurrency.get(),
        };
        // Boxed so that callers can poll it without pinning it themselves.
        Box::pin(stream::unfold(state, |mut batch| async move {
            batch.fill();
            let finished = batch.next_finished().await?;
            Some((finished, batch))
        }))
    }
}

/// The state of a running batch.
struct Batch<P> {
    client: Client,
    pending: P,
    /// Dropping it aborts every call still running.
    running: JoinSet<Result<Envelope>>,
    /// Which request each running task is calling.
    indices: HashMap<Id, usize>,
    concurrency: usize,
}

impl<P: Iterator<Item = (usize, Request)>> Batch<P> {
    /// Starts calls until `concurrency` are running or none are left.
    fn fill(&mut self) {
        while self.running.len() < self.concurrency {
            let Some((index, request)) = self.pending.next() else {
                return;
            };
            let client = self.client.clone();
            let task = self
                .running
                .spawn(async move { client.request(request).await });
            self.indices.insert(task.id(), index);
        }
    }

    /// The next call to finish, or `None` when all have.
    async fn next_finished(&mut self) -> Option<(usize, Result<Envelope>)> {
        let (id, outcome) = match self.running.join_next_with_id().await? {
            Ok((id, outcome)) => (id, outcome),
            Err(failed) => {
                if failed.is_panic() {
                    std::panic::resume_unwind(failed.into_panic());
                }
                // Only a runtime shutting down cancels tasks this set owns.
                let outcome = Err(Error::Usage {
                    message: "the runtime shut down while the batch was running".to_string(),
                });
                (failed.id(), outcome)
            }
        };
        // `fill` recorded every task it spawned.
        let index = self.indices.remove(&id)?;
        Some((index, outcome))
    }
}
