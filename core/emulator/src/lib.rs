//! Loopback upstream.
