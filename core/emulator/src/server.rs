//! The emulator itself: a loopback HTTP/1.1 server, its connections and its answers.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Either};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::{Mutex, RwLock};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::fault::{Fault, FaultChooser, FaultPlan};
use crate::log::{Delivery, RecordedRequest, RequestLog, WaitTimedOut};
use crate::oversized::OversizedBody;
use crate::reply::{Reply, ResponseBody};
use crate::route::{self, Handler, Lookup, PathPattern, ReplyFn, Route, Routes};

/// A loopback HTTP/1.1 server that plays providers, with faults on command.
///
/// Start one per test with [`Emulator::start`]; give it routes ([`route`](Self::route),
/// [`mount`](Self::mount)), inject faults ([`fault_next`](Self::fault_next),
/// [`fault_with`](Self::fault_with), [`fault_always`](Self::fault_always)) and read what clients sent
/// ([`requests`](Self::requests), [`wait_for_requests`](Self::wait_for_requests)).
/// Every method takes `&self`, so share it behind an `Arc` if several tasks need it.
/// Dropping it (or [`shutdown`](Self::shutdown)) stops the server and closes every
/// connection.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    accept_loop: Option<JoinHandle<()>>,
    /// The dedicated runtime of [`Emulator::start_background`].
    runtime: Option<Runtime>,
}

struct Shared {
    routes: RwLock<Vec<Route>>,
    faults: Mutex<FaultPlan>,
    log: Arc<RequestLog>,
    served: AtomicU64,
    /// Requests being answered right now, and the most there ever were at once.
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    next_connection: AtomicU64,
}

/// Counts one request as in flight until dropped (also when hyper drops the
/// answer because the client went away).
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        shared.peak_in_flight.fetch_max(now, Ordering::AcqRel);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Emulator {
    /// Starts on `127.0.0.1` with a free port, serving from the current tokio runtime.
    pub async fn start() -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts on `addr` (port 0 picks a free port), serving from the current tokio runtime.
    pub async fn start_on(addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Self::launch(listener, None)
    }

    /// Starts on `127.0.0.1` with a free port, on its own two-thread runtime.
    ///
    /// For benchmarks, where the server must not compete with the code under test
    /// for the caller's runtime, and for blocking tests that have no runtime. Can be
    /// called and dropped from inside or outside a runtime.
    pub fn start_background() -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("polyrelay-emulator")
            .enable_all()
            .build()?;
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let _entered = runtime.enter();
        let listener = TcpListener::from_std(listener)?;
        Self::launch(listener, Some(runtime))
    }

    /// Spawns the accept loop on the runtime entered by the caller.
    fn launch(listener: TcpListener, runtime: Option<Runtime>) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            routes: RwLock::new(Vec::new()),
            faults: Mutex::new(FaultPlan::default()),
            log: Arc::new(RequestLog::new()),
            served: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            next_connection: AtomicU64::new(0),
        });
        let (stop, stopped) = watch::channel(false);
        let accept_loop = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stopped));
        Ok(Self {
            shared,
            addr,
            stop,
            accept_loop: Some(accept_loop),
            runtime,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The absolute URL of `path` on this server, e.g. `url("/v1/forecast")`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers `method` requests to `path` with `reply`.
    ///
    /// `path` is exact (`/v1/forecast`) or a prefix ending in `*` (`/v1/*`); the
    /// query string never takes part. The most specific route wins: exact before
    /// prefix, longer prefix before shorter. Routing the same method and pattern
    /// again replaces the earlier reply. Unrouted paths get `404`, routed paths
    /// with another method `405`, both with a JSON body.
    pub fn route(&self, method: Method, path: &str, reply: Reply) {
        self.mount("", Routes::new().route(method, path, reply));
    }

    /// Like [`route`](Self::route), but computes the reply from each request.
    pub fn route_with<F>(&self, method: Method, path: &str, reply: F)
    where
        F: Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
    {
        self.mount("", Routes::new().route_with(method, path, reply));
    }

    /// Serves `routes` under `prefix`, e.g. a provider's routes under `/open-meteo`,
    /// so that one emulator plays many providers at once.
    pub fn mount(&self, prefix: &str, routes: Routes) {
        routes.mount_into(prefix, &mut self.shared.routes.write());
    }

    /// Removes every route.
    pub fn clear_routes(&self) {
        self.shared.routes.write().clear();
    }

    /// Injects `fault` into the next `times` requests whose path matches `path`
    /// (exact, a prefix ending in `*`, or `*` for every request, routed or not).
    ///
    /// Queued faults are consumed in FIFO order, one per matching request, and
    /// take precedence over [`fault_always`](Self::fault_always).
    pub fn fault_next(&self, path: &str, fault: Fault, times: usize) {
        self.shared
            .faults
            .lock()
            .queue(PathPattern::parse(path), fault, times);
    }

    /// Injects `fault` into every request whose path matches `path` until
    /// [`clear_faults`](Self::clear_faults). Setting another sticky fault for the
    /// same `path` replaces it; among different matching targets the latest set wins.
    pub fn fault_always(&self, path: &str, fault: Fault) {
        self.shared
            .faults
            .lock()
            .stick(PathPattern::parse(path), fault);
    }

    /// Draws a fault for every request whose path matches `path` by calling
    /// `choose`, which returns the fault or `None` for none: random faults at a
    /// chosen rate, or faults that follow a schedule of the test's own.
    ///
    /// Queued faults ([`fault_next`](Self::fault_next)) still come first; when
    /// `choose` returns `None`, a sticky fault ([`fault_always`](Self::fault_always))
    /// for the path applies if there is one, else the normal reply. Setting another
    /// chooser for the same `path` replaces it; among different matching targets the
    /// latest set wins. `choose` runs outside the emulator's locks, so it may set
    /// faults itself. Removed by [`clear_faults`](Self::clear_faults).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use polyrelay_emulator::{Emulator, Fault};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let emulator = Emulator::start().await?;
    /// // Every third request to the provider gets a 503.
    /// let seen = AtomicU64::new(0);
    /// emulator.fault_with("/open-meteo/*", move || {
    ///     (seen.fetch_add(1, Ordering::Relaxed) % 3 == 2).then(|| Fault::status(503))
    /// });
    /// # Ok(())
    /// # }
    /// ```
    pub fn fault_with<F>(&self, path: &str, choose: F)
    where
        F: Fn() -> Option<Fault> + Send + Sync + 'static,
    {
        let chooser: FaultChooser = Arc::new(choose);
        self.shared
            .faults
            .lock()
            .choose(PathPattern::parse(path), chooser);
    }

    /// Removes every queued, drawn and sticky fault.
    pub fn clear_faults(&self) {
        self.shared.faults.lock().clear();
    }

    /// Every logged request, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log.matching(None)
    }

    /// The logged requests whose path matches `path` (exact or a `*` prefix).
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.shared.log.matching(Some(&PathPattern::parse(path)))
    }

    /// How many logged requests match `path` (exact or a `*` prefix).
    pub fn hits(&self, path: &str) -> usize {
        self.shared.log.count(&PathPattern::parse(path))
    }

    /// Forgets every logged request.
    pub fn clear_log(&self) {
        self.shared.log.clear();
    }

    /// Turns the request log on (the default) or off. Off, requests are still
    /// served and counted by [`served`](Self::served) but not recorded, so
    /// benchmarks neither pay for recording nor grow memory.
    pub fn set_logging(&self, enabled: bool) {
        self.shared.log.set_enabled(enabled);
    }

    /// How many requests have been received since start, logged or not.
    pub fn served(&self) -> u64 {
        self.shared.served.load(Ordering::Relaxed)
    }

    /// The most requests that were being answered at the same time since
    /// start or the last [`reset_peak_in_flight`](Self::reset_peak_in_flight):
    /// how much concurrency clients really used.
    pub fn peak_in_flight(&self) -> u64 {
        self.shared.peak_in_flight.load(Ordering::Acquire)
    }

    /// Starts measuring [`peak_in_flight`](Self::peak_in_flight) afresh.
    pub fn reset_peak_in_flight(&self) {
        let now = self.shared.in_flight.load(Ordering::Acquire);
        self.shared.peak_in_flight.store(now, Ordering::Release);
    }

    /// Waits until at least `count` requests matching `path` have been logged and
    /// returns them, or gives up after `timeout`.
    pub async fn wait_for_requests(
        &self,
        path: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<RecordedRequest>, WaitTimedOut> {
        self.shared
            .log
            .wait_for(
                &PathPattern::parse(path),
                |_| true,
                count,
                timeout,
                || format!("requests to {path}"),
            )
            .await
    }

    /// Waits until at least `count` requests matching `path` have been abandoned by
    /// their client before the response was complete (cancellation), and returns them.
    pub async fn wait_for_closed_early(
        &self,
        path: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<RecordedRequest>, WaitTimedOut> {
        self.shared
            .log
            .wait_for(
                &PathPattern::parse(path),
                |r| r.closed_early,
                count,
                timeout,
                || format!("requests to {path} closed early"),
            )
            .await
    }

    /// Stops accepting, closes every connection, and waits until the port is released.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(accept_loop) = self.accept_loop.take() {
            // The loop never panics; a cancelled runtime means it is gone anyway.
            let _ = accept_loop.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .field("served", &self.served())
            .finish_non_exhaustive()
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%err, "emulator accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "emulator could not set TCP_NODELAY");
        }
        let connection = Arc::new(Connection {
            shared: Arc::clone(&shared),
            id: shared.next_connection.fetch_add(1, Ordering::Relaxed),
            reset: Arc::new(AtomicBool::new(false)),
        });
        tokio::spawn(serve(stream, connection, stop.clone()));
    }
}

/// One accepted TCP connection.
struct Connection {
    shared: Arc<Shared>,
    id: u64,
    /// Set by [`Fault::Reset`]: close with an RST instead of a FIN.
    reset: Arc<AtomicBool>,
}

async fn serve(stream: TcpStream, connection: Arc<Connection>, mut stop: watch::Receiver<bool>) {
    let socket = Socket {
        io: TokioIo::new(stream),
        reset: Arc::clone(&connection.reset),
    };
    let service = service_fn(move |request| respond(Arc::clone(&connection), request));
    let served = http1::Builder::new().serve_connection(socket, service);
    tokio::select! {
        result = served => {
            if let Err(err) = result {
                tracing::debug!(%err, "emulator connection ended with an error");
            }
        }
        _ = stop.wait_for(|stopped| *stopped) => {}
    }
}

/// Why a request got no response at all.
#[derive(Debug)]
enum Aborted {
    /// A [`Fault::Reset`] was injected.
    Reset,
    /// The client went away while sending the request body.
    ClientGone,
}

impl fmt::Display for Aborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Reset => "connection reset by an injected fault",
            Self::ClientGone => "client closed the connection while sending the request",
        })
    }
}

impl std::error::Error for Aborted {}

/// The route's answer before any fault: ready, or to be computed from the request.
enum Normal {
    Ready(Arc<Reply>),
    Computed(ReplyFn),
}

fn normal_reply(lookup: Lookup, method: &Method, path: &str) -> Normal {
    match lookup {
        Lookup::Found(Handler::Fixed(reply)) => Normal::Ready(reply),
        Lookup::Found(Handler::Computed(reply)) => Normal::Computed(reply),
        Lookup::MethodNotAllowed(allow) => Normal::Ready(Arc::new(
            Reply::error(
                405,
                "method_not_allowed",
                format!("{path} does not accept {method}"),
            )
            .with_header(ALLOW, allow),
        )),
        Lookup::NotFound => Normal::Ready(Arc::new(Reply::error(
            404,
            "not_found",
            format!("no route for {method} {path}"),
        ))),
    }
}

async fn respond(
    connection: Arc<Connection>,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Aborted> {
    let received_at = Instant::now();
    let shared = &connection.shared;
    shared.served.fetch_add(1, Ordering::Relaxed);
    let _in_flight = InFlight::enter(shared);
    let logging = shared.log.is_enabled();
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            if logging {
                // Dropping the guard at once marks the request `closed_early`.
                drop(shared.log.push(RecordedRequest::new(
                    parts,
                    Bytes::new(),
                    received_at,
                    connection.id,
                )));
            }
            return Err(Aborted::ClientGone);
        }
    };

    let path = parts.uri.path();
    // The lock is released before a chooser draws (see `Planned`).
    let planned = shared.faults.lock().take(path);
    let fault = planned.resolve();
    let lookup = route::lookup(&shared.routes.read(), &parts.method, path);
    let (normal, record) = match normal_reply(lookup, &parts.method, path) {
        Normal::Ready(reply) => (
            reply,
            logging.then(|| RecordedRequest::new(parts, body, received_at, connection.id)),
        ),
        Normal::Computed(compute) => {
            let record = RecordedRequest::new(parts, body, received_at, connection.id);
            (Arc::new(compute(&record)), logging.then_some(record))
        }
    };
    let delivery = record.map(|record| shared.log.push(record));

    let (response, delivery) = match fault {
        None => normal.to_delivered_response(None, delivery),
        Some(Fault::Respond(reply)) => reply.to_delivered_response(None, delivery),
        Some(Fault::Latency(delay)) => {
            tokio::time::sleep(delay).await;
            normal.to_delivered_response(None, delivery)
        }
        // Hyper drops this future when the client closes the connection, and the
        // delivery guard then marks the request `closed_early`.
        Some(Fault::Hang) => std::future::pending().await,
        Some(Fault::Reset) => {
            connection.reset.store(true, Ordering::Release);
            if let Some(delivery) = delivery {
                delivery.done();
            }
            return Err(Aborted::Reset);
        }
        Some(Fault::Malformed) => (malformed(&normal), delivery),
        Some(Fault::Oversized(len)) => return Ok(oversized(len, delivery)),
        Some(Fault::ReplaceBody(body)) => (normal.to_response_with_body(body), delivery),
        Some(Fault::AtChunk(at, fault)) => {
            normal.to_delivered_response(Some((at, fault)), delivery)
        }
    };
    if let Some(delivery) = delivery {
        delivery.done();
    }
    Ok(response)
}

/// `200` JSON whose body is cut in half, or a fixed broken document.
fn malformed(normal: &Reply) -> Response<ResponseBody> {
    let body = normal.body();
    let start = body.len() - body.trim_ascii_start().len();
    let len = body[start..].trim_ascii_end().len();
    // A strict prefix of a JSON object or array is never valid JSON.
    let broken = if len >= 2 && matches!(body[start], b'{' | b'[') {
        body.slice(start..start + len / 2)
    } else {
        Bytes::from_static(br#"{"data": [1, 2,"#)
    };
    Reply::bytes(broken)
        .with_header(CONTENT_TYPE, "application/json")
        .to_response()
}

fn oversized(len: u64, delivery: Option<Delivery>) -> Response<ResponseBody> {
    let mut response = Response::new(Either::Right(Either::Left(OversizedBody::new(
        len, delivery,
    ))));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The accepted TCP stream as hyper sees it; on drop after a [`Fault::Reset`] it
/// sets `SO_LINGER` to zero so that closing sends an RST instead of a FIN.
struct Socket {
    io: TokioIo<TcpStream>,
    reset: Arc<AtomicBool>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Acquire) {
            let socket = socket2::SockRef::from(self.io.inner());
            if let Err(err) = socket.set_linger(Some(Duration::ZERO)) {
                tracing::debug!(%err, "emulator could not set SO_LINGER 0 for a reset");
            }
        }
    }
}

impl Read for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}
