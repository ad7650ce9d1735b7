//! A streamed JSON body of any size that costs no memory.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use crate::log::Delivery;

const CHUNK: usize = 64 * 1024;

/// `0,0,0,…,0,` : even length, so every chunk cut from its start begins with `0`,
/// and a chunk of odd length ends with `0`.
static FILLER: [u8; CHUNK] = filler();

const fn filler() -> [u8; CHUNK] {
    let mut bytes = [b','; CHUNK];
    let mut i = 0;
    while i < CHUNK {
        bytes[i] = b'0';
        i += 2;
    }
    bytes
}

/// The body of [`Fault::Oversized`](crate::Fault::Oversized): exactly `len` bytes of
/// valid JSON, `[0,0,…,0]` (with one space after `[` when needed for the length).
pub(crate) struct OversizedBody {
    head: &'static [u8],
    middle: u64,
    tail: &'static [u8],
    remaining: u64,
    delivery: Option<Delivery>,
}

impl OversizedBody {
    pub(crate) fn new(len: u64, delivery: Option<Delivery>) -> Self {
        let (head, middle, tail): (&'static [u8], u64, &'static [u8]) = match len {
            0 => (b"", 0, b""),
            1 => (b"0", 0, b""),
            2 => (b"[]", 0, b""),
            // The middle run must have odd length to end with `0`.
            _ if len % 2 == 1 => (b"[", len - 2, b"]"),
            _ => (b"[ ", len - 3, b"]"),
        };
        let mut body = Self {
            head,
            middle,
            tail,
            remaining: len,
            delivery,
        };
        body.finish_if_sent();
        body
    }

    fn finish_if_sent(&mut self) {
        if self.remaining == 0 {
            if let Some(delivery) = self.delivery.take() {
                delivery.done();
            }
        }
    }
}

impl Body for OversizedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let chunk = if !this.head.is_empty() {
            std::mem::take(&mut this.head)
        } else if this.middle > 0 {
            let len = this.middle.min(CHUNK as u64) as usize;
            this.middle -= len as u64;
            &FILLER[..len]
        } else if !this.tail.is_empty() {
            std::mem::take(&mut this.tail)
        } else {
            return Poll::Ready(None);
        };
        this.remaining -= chunk.len() as u64;
        this.finish_if_sent();
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(chunk)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn collect(len: u64) -> Vec<u8> {
        let body = OversizedBody::new(len, None);
        assert_eq!(body.size_hint().exact(), Some(len));
        body.collect().await.unwrap().to_bytes().to_vec()
    }

    #[tokio::test]
    async fn every_length_is_exact_and_valid_json() {
        let sizes = [
            0,
            1,
            2,
            3,
            4,
            5,
            100,
            101,
            CHUNK as u64 + 2,
            3 * CHUNK as u64 + 7,
        ];
        for len in sizes {
            let bytes = collect(len).await;
            assert_eq!(bytes.len() as u64, len);
            if len > 0 {
                serde_json::from_slice::<serde_json::Value>(&bytes)
                    .unwrap_or_else(|e| panic!("length {len}: {e}"));
            }
        }
    }
}
