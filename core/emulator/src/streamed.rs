//! Streamed bodies: a reply sent as timed chunks (an LLM's server-sent
//! events, NDJSON lines), and the faults injected at one of its chunks.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use tokio::time::Sleep;

use crate::log::Delivery;

/// One piece of a streamed body, sent `delay` after the previous one (or
/// after the response head, for the first). Each chunk is a write of its
/// own, as each token of a real server's stream is, even with no delay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// How long to wait before sending it.
    pub delay: Duration,
    /// What to send.
    pub bytes: Bytes,
}

impl Chunk {
    /// A chunk sent at once.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        Self::after(Duration::ZERO, bytes)
    }

    /// A chunk sent `delay` after the previous one.
    pub fn after(delay: Duration, bytes: impl Into<Bytes>) -> Self {
        Self {
            delay,
            bytes: bytes.into(),
        }
    }

    /// A recorded stream cut into one chunk per event, each sent `delay`
    /// after the previous: a server-sent event ends at its blank line
    /// (LF, CRLF or CR line ends); a body without blank lines (NDJSON) is
    /// cut after each line.
    ///
    /// ```
    /// use polyrelay_emulator::Chunk;
    /// use std::time::Duration;
    /// let sse = Chunk::events(b": hi\r\n\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n", Duration::ZERO);
    /// assert_eq!(sse.len(), 3);
    /// assert_eq!(sse[1].bytes, "data: 1\r\n\r\n");
    /// let lines = Chunk::events(b"{\"a\":1}\n{\"b\":2}\n", Duration::from_millis(5));
    /// assert_eq!(lines[1].bytes, "{\"b\":2}\n");
    /// assert_eq!(lines[1].delay, Duration::from_millis(5));
    /// ```
    pub fn events(body: &[u8], delay: Duration) -> Vec<Chunk> {
        let lines = split_lines(body);
        let has_blank_line = lines.iter().any(|line| is_blank(line));
        let mut chunks = Vec::new();
        let mut start = 0;
        let mut end = 0;
        for line in lines {
            end += line.len();
            if !has_blank_line || is_blank(line) {
                chunks.push(Chunk::after(
                    delay,
                    Bytes::copy_from_slice(&body[start..end]),
                ));
                start = end;
            }
        }
        if start < body.len() {
            chunks.push(Chunk::after(delay, Bytes::copy_from_slice(&body[start..])));
        }
        chunks
    }
}

/// `body` as lines, each with its line end (LF, CRLF or CR).
fn split_lines(body: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut rest = body;
    while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
        let len = if rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n') {
            end + 2
        } else {
            end + 1
        };
        lines.push(&rest[..len]);
        rest = &rest[len..];
    }
    if !rest.is_empty() {
        lines.push(rest);
    }
    lines
}

fn is_blank(line: &[u8]) -> bool {
    matches!(line, b"\n" | b"\r\n" | b"\r")
}

/// What goes wrong at one chunk of a streamed body; see
/// [`Fault::AtChunk`](crate::Fault::AtChunk).
#[derive(Clone, Debug)]
pub enum ChunkFault {
    /// Close the connection instead of sending this chunk: the client sees
    /// the body end without its final chunk, an error.
    Cut,
    /// Send nothing more and never end the body. The request is logged
    /// `closed_early` once the client gives up and closes the connection.
    Stall,
    /// Send these bytes before the chunk, then the rest: a malformed event
    /// in the middle of a stream.
    Insert(Bytes),
    /// Send these bytes instead of this chunk and the rest, then end the
    /// body normally: an error event that ends a stream.
    EndWith(Bytes),
}

/// The body of a streamed reply, with its fault, if any, at one chunk.
pub(crate) struct StreamedBody {
    chunks: Arc<[Chunk]>,
    next: usize,
    fault: Option<(usize, ChunkFault)>,
    /// The delay of chunk `next`, running.
    sleep: Option<Pin<Box<Sleep>>>,
    /// Marked done once the body was sent whole; dropped earlier, it logs
    /// the request `closed_early`.
    delivery: Option<Delivery>,
    /// A cut waited one poll, so that hyper flushed what came before it.
    cut_ready: bool,
    /// Chunk `next` waited one poll, so that hyper wrote the one before it.
    flushed: bool,
}

impl StreamedBody {
    pub(crate) fn new(
        chunks: Arc<[Chunk]>,
        fault: Option<(usize, ChunkFault)>,
        delivery: Option<Delivery>,
    ) -> Self {
        Self {
            chunks,
            next: 0,
            fault,
            sleep: None,
            delivery,
            cut_ready: false,
            flushed: false,
        }
    }

    fn delivered(&mut self) {
        if let Some(delivery) = self.delivery.take() {
            delivery.done();
        }
    }
}

impl Body for StreamedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.fault.as_ref().is_some_and(|(at, _)| *at == this.next) {
            match this.fault.take() {
                Some((at, ChunkFault::Cut)) if !this.cut_ready => {
                    // Hyper flushes its buffer when the body is not ready;
                    // aborting at once would drop the chunks before the cut
                    // (and the head) unsent.
                    this.cut_ready = true;
                    this.fault = Some((at, ChunkFault::Cut));
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Some((_, ChunkFault::Cut)) => {
                    // The emulator's own doing, not the client's.
                    this.delivered();
                    this.next = this.chunks.len();
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "stream cut by an injected fault",
                    ))));
                }
                Some((at, ChunkFault::Stall)) => {
                    // Stays in place: every later poll stalls too.
                    this.fault = Some((at, ChunkFault::Stall));
                    return Poll::Pending;
                }
                Some((_, ChunkFault::Insert(bytes))) => {
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                Some((_, ChunkFault::EndWith(bytes))) => {
                    this.next = this.chunks.len();
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                None => {}
            }
        }
        let Some(chunk) = this.chunks.get(this.next) else {
            this.delivered();
            return Poll::Ready(None);
        };
        if !chunk.delay.is_zero() {
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(chunk.delay)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
        } else if this.next > 0 && !this.flushed {
            // Hyper buffers the frames a body has ready and writes them
            // together; not being ready once makes it write what it holds.
            // Without it a client would read a whole stream in a few reads.
            this.flushed = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.flushed = false;
        this.next += 1;
        Poll::Ready(Some(Ok(Frame::data(chunk.bytes.clone()))))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    use super::*;

    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hyper writes what it buffered when the body is not ready, so a
    /// chunk sent at once must still come one poll after the previous.
    #[test]
    fn chunks_without_delay_come_one_poll_apart() {
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let chunks: Arc<[Chunk]> = ["a", "b", "c"].into_iter().map(Chunk::new).collect();
        let mut body = StreamedBody::new(chunks, None, None);
        let mut polls = Vec::new();
        loop {
            match Pin::new(&mut body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    polls.push(String::from_utf8_lossy(frame.data_ref().unwrap()).into_owned())
                }
                Poll::Ready(None) => break,
                Poll::Ready(Some(Err(err))) => panic!("{err}"),
                Poll::Pending => polls.push("pending".into()),
            }
        }
        assert_eq!(polls, ["a", "pending", "b", "pending", "c"]);
        assert_eq!(wakes.0.load(Ordering::Relaxed), 2, "woken to go on at once");
    }
}
