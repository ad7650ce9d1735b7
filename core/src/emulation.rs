//! An offline stand-in for every built-in provider (feature `emulator`, on by
//! default): a loopback HTTP server that answers in each provider's real wire
//! format and injects faults on command.
//!
//! ```no_run
//! # fn demo() -> std::io::Result<()> {
//! let emulator = polyrelay::emulation::start()?;
//! // Point every provider at it: provider `x` is served under `{url}/x`.
//! std::env::set_var("POLYRELAY_EMULATOR_URL", emulator.base_url());
//! # Ok(()) }
//! ```

use std::time::Duration;

pub use polyrelay_emulator::{
    Chunk, ChunkFault, Emulator, Fault, Method, RecordedRequest, Reply, Routes,
};

use crate::provider::{Framing, Provider};

mod scripted;

pub use scripted::script_chat;

/// Serves `provider`'s fixtures under `/{id}` on `emulator`.
pub fn mount(emulator: &Emulator, provider: &dyn Provider) {
    let id = provider.info().id;
    for fixture in provider.fixtures() {
        let Ok(method) = Method::from_bytes(fixture.method.as_bytes()) else {
            continue;
        };
        emulator.route(
            method,
            &format!("/{id}{}", fixture.path),
            Reply::bytes(fixture.body.as_bytes().to_vec())
                .with_status(fixture.status)
                .with_header("content-type", "application/json"),
        );
    }
}

/// `provider`'s recorded `llm.chat` stream as a streamed reply, one event
/// per chunk, each sent `delay` after the previous; `None` for a provider
/// that does not stream. Routed by the caller, since it answers the same
/// path as the plain reply (Gemini's aside).
pub fn stream_reply(provider: &dyn Provider, delay: Duration) -> Option<Reply> {
    let streams = provider.streams_chat()?;
    let fixture = streams.stream_fixtures().first()?;
    Some(
        Reply::stream(Chunk::events(fixture.body.as_bytes(), delay))
            .with_status(fixture.status)
            .with_header("content-type", content_type(streams.framing())),
    )
}

/// The content type of a stream in `framing`.
fn content_type(framing: Framing) -> &'static str {
    match framing {
        Framing::Sse => "text/event-stream",
        Framing::Ndjson => "application/x-ndjson",
    }
}

/// Serves every built-in provider on `emulator`.
pub fn mount_builtin(emulator: &Emulator) {
    for provider in crate::providers::builtin() {
        mount(emulator, *provider);
    }
}

/// Starts an emulator of every built-in provider on its own thread.
pub fn start() -> std::io::Result<Emulator> {
    let emulator = Emulator::start_background()?;
    mount_builtin(&emulator);
    Ok(emulator)
}
