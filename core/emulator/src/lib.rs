//! A loopback HTTP/1.1 upstream that plays providers and misbehaves on command.
//!
//! polyrelay's resilience features (retries, timeouts, circuit breakers, fallback,
//! cancellation) are only as good as the failures they were tested against. This
//! crate serves those failures over a real socket: a hyper server on `127.0.0.1`
//! with a free port, keep-alive and `TCP_NODELAY`, so a client under test goes
//! through its real connection pool, parser and timers.
//!
//! * **Routes**: [`Emulator::route`] answers a method and path (exact, or a prefix
//!   ending in `*`) with a [`Reply`]; [`Emulator::mount`] serves a set of [`Routes`]
//!   under a prefix, so one emulator plays many providers (`/open-meteo/v1/forecast`,
//!   `/nominatim/search`, …). Query strings are ignored for matching. Unrouted paths
//!   get `404` with a JSON body.
//! * **Faults**: [`Emulator::fault_next`] queues a [`Fault`] for the next `n` matching
//!   requests (FIFO); [`Emulator::fault_with`] draws one (or none) per request from a
//!   function, for random faults at a rate; [`Emulator::fault_always`] applies one
//!   until [`Emulator::clear_faults`]. Faults cover error statuses and `Retry-After`,
//!   latency, hanging, connection resets, malformed and oversized bodies.
//! * **Streams**: [`Reply::stream`] sends a body as timed [`Chunk`]s (an LLM's
//!   server-sent events or NDJSON lines, [`Chunk::events`] cuts a recorded one);
//!   [`Fault::AtChunk`] misbehaves at chunk N ([`ChunkFault`]: cut the connection,
//!   stall, insert a malformed event, end with an error event).
//! * **Request log**: every request is recorded as a [`RecordedRequest`] (method,
//!   path, query, headers, body, arrival time, connection, and `closed_early` when the
//!   client gave up before the response was complete, which is how cancellation is
//!   proven). [`Emulator::wait_for_requests`] waits for them without sleeping.
//! * **Speed**: no lock is held across an await; the log can be switched off with
//!   [`Emulator::set_logging`] for benchmarks, and [`Emulator::start_background`]
//!   runs the server on its own runtime.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use polyrelay_emulator::{Emulator, Fault, Method, Reply, Routes};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let emulator = Emulator::start().await?;
//! emulator.mount(
//!     "/open-meteo",
//!     Routes::new().route(
//!         Method::GET,
//!         "/v1/forecast",
//!         Reply::json(&serde_json::json!({"current": {"temperature_2m": 21.5}})),
//!     ),
//! );
//! // The first request gets a 429 asking to come back in 3 s.
//! emulator.fault_next(
//!     "/open-meteo/*",
//!     Fault::Respond(Reply::new(429).with_retry_after(Duration::from_secs(3))),
//!     1,
//! );
//!
//! let mut stream = tokio::net::TcpStream::connect(emulator.addr()).await?;
//! stream
//!     .write_all(b"GET /open-meteo/v1/forecast?latitude=52.52 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
//!     .await?;
//! let mut response = String::new();
//! stream.read_to_string(&mut response).await?;
//! assert!(response.starts_with("HTTP/1.1 429"));
//! assert!(response.contains("retry-after: 3"));
//!
//! let seen = emulator.wait_for_requests("/open-meteo/v1/forecast", 1, Duration::from_secs(1)).await?;
//! assert_eq!(seen[0].query_param("latitude"), Some("52.52"));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod fault;
mod log;
mod oversized;
mod reply;
mod route;
mod server;
mod streamed;

pub use bytes::Bytes;
pub use fault::Fault;
pub use hyper::{HeaderMap, Method};
pub use log::{RecordedRequest, WaitTimedOut};
pub use reply::Reply;
pub use route::Routes;
pub use server::Emulator;
pub use streamed::{Chunk, ChunkFault};
