//! Newline-delimited JSON (Ollama's stream): an incremental splitter of a
//! body into lines, fed byte chunks split anywhere.

/// Splits a body into its non-blank lines, chunk by chunk. Lines end in LF
/// (a CR before it is dropped); a last line without LF is given by
/// [`end`](Self::end).
#[derive(Debug, Default)]
pub struct LineDecoder {
    line: Vec<u8>,
}

impl LineDecoder {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `bytes`, appending the lines they complete to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<String>) {
        while let Some(end) = memchr::memchr(b'\n', bytes) {
            if self.line.is_empty() {
                emit(&bytes[..end], out);
            } else {
                self.line.extend_from_slice(&bytes[..end]);
                emit(&self.line, out);
                self.line.clear();
            }
            bytes = &bytes[end + 1..];
        }
        self.line.extend_from_slice(bytes);
    }

    /// The body ended: its last line, if it had no LF.
    pub fn end(&mut self, out: &mut Vec<String>) {
        emit(&std::mem::take(&mut self.line), out);
    }
}

fn emit(line: &[u8], out: &mut Vec<String>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !line.trim_ascii().is_empty() {
        out.push(match std::str::from_utf8(line) {
            Ok(line) => line.to_string(),
            Err(_) => String::from_utf8_lossy(line).into_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_survive_any_split_and_blank_lines_are_skipped() {
        let body = "{\"a\":\"é\"}\r\n\n  \n{\"b\":2}\n{\"c\":3}".as_bytes();
        for size in 1..=body.len() {
            let mut decoder = LineDecoder::new();
            let mut out = Vec::new();
            for piece in body.chunks(size) {
                decoder.push(piece, &mut out);
            }
            assert_eq!(out, ["{\"a\":\"é\"}", "{\"b\":2}"], "split every {size}");
            decoder.end(&mut out);
            assert_eq!(out.last().map(String::as_str), Some("{\"c\":3}"));
            decoder.end(&mut out);
            assert_eq!(out.len(), 3, "nothing twice");
        }
    }
}
