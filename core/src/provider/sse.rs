//! Server-sent events: an incremental decoder of `text/event-stream` bodies,
//! fed byte chunks split anywhere (inside a line, a CRLF or a UTF-8
//! sequence), following the WHATWG HTML algorithm "interpreting an event
//! stream".
//!
//! Written here rather than taken from a crate: `eventsource-stream` (last
//! released in 2022) adapts a `Stream` of bytes rather than taking chunks
//! from the caller's own read loop, and the sans-IO `sse-parse` had a single,
//! first release. The algorithm is short; the tests replay the
//! specification's examples at every split.

use std::borrow::Cow;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The event type: the last `event:` field, `message` when none.
    pub event: Cow<'static, str>,
    /// The `data:` fields joined by `\n`.
    pub data: String,
    /// The last event id (the `id:` fields so far, this event's included).
    pub id: String,
}

/// The byte order mark a stream may start with, skipped once.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decodes a `text/event-stream` body chunk by chunk. An event is
/// dispatched at the blank line that ends it; an event the body ends in the
/// middle of is discarded, as the specification says.
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Bytes of the line not yet ended.
    line: Vec<u8>,
    /// The last chunk ended in CR: an LF starting the next belongs to it.
    after_cr: bool,
    /// BOM bytes matched at the start of the stream; `None` once past it.
    bom: Option<usize>,
    event: String,
    data: String,
    id: String,
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self {
            bom: Some(0),
            ..Self::default()
        }
    }

    /// Decodes `bytes`, appending the events they complete to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<SseEvent>) {
        if self.bom.is_some() {
            bytes = self.skip_bom(bytes);
        }
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
        }
        while let Some(end) = memchr::memchr2(b'\n', b'\r', bytes) {
            if self.line.is_empty() {
                self.line_ended(&bytes[..end], out);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&bytes[..end]);
                self.line_ended(&line, out);
                line.clear();
                self.line = line;
            }
            let mut next = end + 1;
            if bytes[end] == b'\r' {
                match bytes.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            bytes = &bytes[next..];
        }
        self.line.extend_from_slice(bytes);
    }

    fn skip_bom<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        let Some(mut matched) = self.bom else {
            return bytes;
        };
        for (i, &byte) in bytes.iter().enumerate() {
            if byte != BOM[matched] {
                // Not a BOM: what looked like its start is content.
                self.line.extend_from_slice(&BOM[..matched]);
                self.bom = None;
                return &bytes[i..];
            }
            matched += 1;
            if matched == BOM.len() {
                self.bom = None;
                return &bytes[i + 1..];
            }
        }
        self.bom = Some(matched);
        &[]
    }

    fn line_ended(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return; // A comment (keep-alives, OpenRouter's "PROCESSING").
        }
        // Valid UTF-8 (every provider's) is checked far faster than the
        // lossy conversion walks it; only invalid lines pay for that.
        let line = match std::str::from_utf8(line) {
            Ok(line) => Cow::Borrowed(line),
            Err(_) => String::from_utf8_lossy(line),
        };
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                self.data.reserve(value.len() + 1);
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => value.clone_into(&mut self.id),
            // `retry` sets a reconnection delay: polyrelay never reconnects
            // a stream (a cut one falls back instead), so it is ignored
            // like any unknown field.
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.data.is_empty() {
            self.event.clear();
            return;
        }
        self.data.pop(); // the `\n` after the last data line
        let event = match std::mem::take(&mut self.event) {
            event if event.is_empty() => Cow::Borrowed("message"),
            event => Cow::Owned(event),
        };
        out.push(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
            id: self.id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events of `body`, checked to be the same however it is split.
    fn events(body: &[u8]) -> Vec<SseEvent> {
        let mut whole = Vec::new();
        SseDecoder::new().push(body, &mut whole);
        for size in 1..=body.len().clamp(1, 9) {
            let mut decoder = SseDecoder::new();
            let mut split = Vec::new();
            for piece in body.chunks(size) {
                decoder.push(piece, &mut split);
            }
            assert_eq!(split, whole, "split every {size} bytes");
        }
        // Every cut in two.
        for cut in 0..=body.len() {
            let mut decoder = SseDecoder::new();
            let mut split = Vec::new();
            decoder.push(&body[..cut], &mut split);
            decoder.push(&body[cut..], &mut split);
            assert_eq!(split, whole, "cut at {cut}");
        }
        whole
    }

    fn event(event: &str, data: &str, id: &str) -> SseEvent {
        SseEvent {
            event: Cow::Owned(event.to_string()),
            data: data.into(),
            id: id.into(),
        }
    }

    #[test]
    fn whatwg_example_multi_line_data() {
        // "The stock ticker": three data lines make one event.
        assert_eq!(
            events(b"data: YHOO\ndata: +2\ndata: 10\n\n"),
            [event("message", "YHOO\n+2\n10", "")]
        );
    }

    #[test]
    fn whatwg_example_comments_ids_and_one_space_stripped() {
        let body = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n";
        assert_eq!(
            events(body),
            [
                event("message", "first event", "1"),
                // `id` without a colon resets the last event id.
                event("message", "second event", ""),
                event("message", " third event", ""),
            ]
        );
    }

    #[test]
    fn whatwg_example_empty_data_and_an_unterminated_last_event() {
        // The first block is an empty data; the middle one a newline; the
        // last is not followed by a blank line and is discarded.
        assert_eq!(
            events(b"data\n\ndata\ndata\n\ndata:"),
            [event("message", "", ""), event("message", "\n", "")]
        );
    }

    #[test]
    fn whatwg_example_space_after_colon_is_optional() {
        assert_eq!(
            events(b"data:test\n\ndata: test\n\n"),
            [event("message", "test", ""), event("message", "test", "")]
        );
    }

    #[test]
    fn event_types_and_ids_with_nul_and_retry_lines_change_no_event() {
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        decoder.push(
            b"retry: 1500\nevent: message_start\ndata: {}\nid: 7\n\nretry: soon\nid: a\0b\nevent: add\n\ndata: x\n\n",
            &mut out,
        );
        assert_eq!(
            out,
            [
                event("message_start", "{}", "7"),
                event("message", "x", "7")
            ],
            "an event without data dispatches nothing and resets the type"
        );
    }

    #[test]
    fn lines_end_in_crlf_cr_or_lf_even_when_split_between_reads() {
        let expected = [event("message", "a\nb", ""), event("e", "c", "")];
        assert_eq!(
            events(b"data: a\r\ndata: b\r\n\r\nevent: e\r\ndata: c\r\n\r\n"),
            expected
        );
        assert_eq!(
            events(b"data: a\rdata: b\r\revent: e\rdata: c\r\r"),
            expected
        );
        assert_eq!(
            events(b"data: a\ndata: b\r\n\revent: e\ndata: c\r\r\n"),
            expected
        );
    }

    #[test]
    fn a_leading_bom_is_skipped_once_and_utf8_survives_any_split() {
        let body = "\u{FEFF}data: café ☕\n\n\u{FEFF}data: x\n\n".as_bytes();
        assert_eq!(
            events(body),
            [
                event("message", "café ☕", ""),
                // A later BOM is content: a field named "\u{FEFF}data".
            ]
        );
        assert_eq!(
            events(b"\xEF\xBBdata: y\n\n").len(),
            0,
            "half a BOM is content"
        );
        assert!(events(b"\xEFdata: y\n\n").is_empty());
        // Invalid UTF-8 is replaced, never an error.
        assert_eq!(
            events(b"data: \xFF\n\n"),
            [event("message", "\u{FFFD}", "")]
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        assert_eq!(
            events(b"foo: bar\ndata: x\nbaz\n\n"),
            [event("message", "x", "")]
        );
    }
}
