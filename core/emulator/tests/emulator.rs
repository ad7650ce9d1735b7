//! Black-box tests: a raw HTTP/1.1 client over a real socket against the emulator.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use polyrelay_emulator::{Bytes, Emulator, Fault, Method, Reply, Routes};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn content_length(&self) -> usize {
        self.header("content-length").unwrap().parse().unwrap()
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Client {
    stream: BufReader<TcpStream>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::new(stream),
        })
    }

    async fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<()> {
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nhost: emulator\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let stream = self.stream.get_mut();
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await
    }

    /// Reads the status line and headers.
    async fn read_head(&mut self) -> io::Result<RawResponse> {
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the response",
            ));
        }
        let status = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        Ok(RawResponse {
            status,
            headers,
            body: Vec::new(),
        })
    }

    async fn read_response(&mut self) -> io::Result<RawResponse> {
        let mut response = self.read_head().await?;
        let mut body = vec![0; response.content_length()];
        self.stream.read_exact(&mut body).await?;
        response.body = body;
        Ok(response)
    }

    async fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<RawResponse> {
        self.send(method, target, headers, body).await?;
        self.read_response().await
    }
}

async fn get(emulator: &Emulator, target: &str) -> io::Result<RawResponse> {
    Client::connect(emulator.addr())
        .await?
        .request("GET", target, &[], b"")
        .await
}

async fn emulator_with_hello() -> Emulator {
    let emulator = Emulator::start().await.unwrap();
    emulator.route(
        Method::GET,
        "/hello",
        Reply::json(&json!({"greeting": "hello", "items": [1, 2, 3]})),
    );
    emulator
}

#[tokio::test]
async fn a_route_answers_with_its_reply() {
    let emulator = emulator_with_hello().await;
    emulator.route(
        Method::POST,
        "/echo",
        Reply::text("created")
            .with_status(201)
            .with_header("x-provider", "test"),
    );
    assert!(emulator.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(
        emulator.url("/hello"),
        format!("{}/hello", emulator.base_url())
    );

    let hello = get(&emulator, "/hello?ignored=1").await.unwrap();
    assert_eq!(hello.status, 200);
    assert_eq!(hello.header("content-type"), Some("application/json"));
    assert_eq!(
        hello.json(),
        json!({"greeting": "hello", "items": [1, 2, 3]})
    );

    let mut client = Client::connect(emulator.addr()).await.unwrap();
    let created = client.request("POST", "/echo", &[], b"x").await.unwrap();
    assert_eq!(created.status, 201);
    assert_eq!(created.header("x-provider"), Some("test"));
    assert_eq!(
        created.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(created.body, b"created");
}

#[tokio::test]
async fn mounted_services_and_prefix_routes_share_one_emulator() {
    let emulator = Emulator::start().await.unwrap();
    emulator.mount(
        "/open-meteo",
        Routes::new()
            .route(Method::GET, "/v1/forecast", Reply::text("forecast"))
            .route(Method::GET, "/v1/*", Reply::text("any v1")),
    );
    emulator.mount(
        "/nominatim",
        Routes::new().route(Method::GET, "/search", Reply::text("places")),
    );
    emulator.route(
        Method::GET,
        "/echo/*",
        Reply::text("unused"), // replaced below: same method and pattern
    );
    emulator.route_with(Method::GET, "/echo/*", |request| {
        Reply::text(format!(
            "{} name={}",
            request.path,
            request.query_param("name").unwrap_or("-")
        ))
    });

    let body = |r: RawResponse| String::from_utf8(r.body).unwrap();
    assert_eq!(
        body(get(&emulator, "/open-meteo/v1/forecast?x=1").await.unwrap()),
        "forecast"
    );
    assert_eq!(
        body(get(&emulator, "/open-meteo/v1/archive").await.unwrap()),
        "any v1"
    );
    assert_eq!(
        body(get(&emulator, "/nominatim/search").await.unwrap()),
        "places"
    );
    assert_eq!(
        body(get(&emulator, "/echo/a/b?name=Berlin").await.unwrap()),
        "/echo/a/b name=Berlin"
    );
    assert_eq!(get(&emulator, "/v1/forecast").await.unwrap().status, 404);
}

#[tokio::test]
async fn unknown_routes_get_404_and_wrong_methods_405_with_json() {
    let emulator = emulator_with_hello().await;
    let missing = get(&emulator, "/nope").await.unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-type"), Some("application/json"));
    assert_eq!(missing.json()["error"], "not_found");
    assert!(missing.json()["message"]
        .as_str()
        .unwrap()
        .contains("GET /nope"));

    let mut client = Client::connect(emulator.addr()).await.unwrap();
    let wrong = client.request("DELETE", "/hello", &[], b"").await.unwrap();
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("GET"));
    assert_eq!(wrong.json()["error"], "method_not_allowed");
}

#[tokio::test]
async fn respond_faults_send_any_status_headers_and_body() {
    let emulator = emulator_with_hello().await;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00
    emulator.fault_next("/hello", Fault::status(503), 1);
    emulator.fault_next(
        "/hello",
        Fault::Respond(
            Reply::json(&json!({"error": "slow down"}))
                .with_status(429)
                .with_retry_after(Duration::from_millis(2500)),
        ),
        1,
    );
    emulator.fault_next(
        "/hello",
        Fault::Respond(Reply::new(429).with_retry_after_at(at)),
        1,
    );
    emulator.fault_next(
        "/hello",
        Fault::Respond(Reply::json(&json!({"error": true, "reason": "quota"}))),
        1,
    );

    let unavailable = get(&emulator, "/hello").await.unwrap();
    assert_eq!(unavailable.status, 503);
    assert_eq!(
        unavailable.json(),
        json!({"error": {"code": 503, "message": "Service Unavailable"}})
    );

    let limited = get(&emulator, "/hello").await.unwrap();
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("3"));
    assert_eq!(limited.json(), json!({"error": "slow down"}));

    let dated = get(&emulator, "/hello").await.unwrap();
    assert_eq!(
        dated.header("retry-after"),
        Some("Wed, 21 Oct 2015 07:28:00 GMT")
    );

    let error_in_body = get(&emulator, "/hello").await.unwrap();
    assert_eq!(error_in_body.status, 200);
    assert_eq!(error_in_body.json()["reason"], "quota");

    assert_eq!(
        get(&emulator, "/hello").await.unwrap().json()["greeting"],
        "hello"
    );
}

#[tokio::test]
async fn latency_delays_the_normal_reply() {
    let emulator = emulator_with_hello().await;
    let delay = Duration::from_millis(40);
    emulator.fault_next("/hello", Fault::Latency(delay), 1);

    let started = Instant::now();
    let slow = get(&emulator, "/hello").await.unwrap();
    assert!(
        started.elapsed() >= delay,
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(slow.json()["greeting"], "hello");
    assert!(!emulator.requests_to("/hello")[0].closed_early);
}

#[tokio::test]
async fn hang_never_answers_and_notices_the_client_leaving() {
    let emulator = emulator_with_hello().await;
    emulator.fault_next("/hello", Fault::Hang, 1);

    let mut client = Client::connect(emulator.addr()).await.unwrap();
    client.send("GET", "/hello", &[], b"").await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(50), client.read_head()).await;
    assert!(waited.is_err(), "a hung request must not be answered");
    let before = emulator.wait_for_requests("/hello", 1, WAIT).await.unwrap();
    assert!(!before[0].closed_early, "still waiting, not closed yet");

    drop(client);
    let closed = emulator
        .wait_for_closed_early("/hello", 1, WAIT)
        .await
        .unwrap();
    assert_eq!(closed.len(), 1);

    // The fault was consumed: the next request is answered normally.
    assert_eq!(get(&emulator, "/hello").await.unwrap().status, 200);
}

#[tokio::test]
async fn reset_closes_the_connection_without_a_response() {
    let emulator = emulator_with_hello().await;
    emulator.fault_next("/hello", Fault::Reset, 1);

    let mut client = Client::connect(emulator.addr()).await.unwrap();
    client.send("GET", "/hello", &[], b"").await.unwrap();
    let mut received = Vec::new();
    let read = client.stream.read_to_end(&mut received).await;
    let err = read.expect_err("a reset connection must fail the read");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    assert!(received.is_empty(), "no response bytes: {received:?}");

    let logged = emulator.requests_to("/hello");
    assert_eq!(logged.len(), 1);
    assert!(
        !logged[0].closed_early,
        "the server closed it, not the client"
    );
    assert_eq!(get(&emulator, "/hello").await.unwrap().status, 200);
}

#[tokio::test]
async fn malformed_sends_200_json_that_does_not_parse() {
    let emulator = emulator_with_hello().await;
    emulator.route(Method::GET, "/plain", Reply::text("not json"));
    emulator.fault_always("*", Fault::Malformed);

    for path in ["/hello", "/plain", "/unrouted"] {
        let broken = get(&emulator, path).await.unwrap();
        assert_eq!(broken.status, 200, "{path}");
        assert_eq!(broken.header("content-type"), Some("application/json"));
        assert!(!broken.body.is_empty());
        assert!(
            serde_json::from_slice::<Value>(&broken.body).is_err(),
            "{path}: {:?}",
            String::from_utf8_lossy(&broken.body)
        );
    }
    let hello = get(&emulator, "/hello").await.unwrap();
    assert!(br#"{"greeting":"hello","items":[1,2,3]}"#.starts_with(&hello.body));
}

#[tokio::test]
async fn oversized_streams_exactly_the_requested_size() {
    let emulator = emulator_with_hello().await;
    let size = 4 * 1024 * 1024 + 1;
    emulator.fault_next("/hello", Fault::Oversized(size), 1);

    let mut client = Client::connect(emulator.addr()).await.unwrap();
    client.send("GET", "/hello", &[], b"").await.unwrap();
    let head = client.read_head().await.unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.content_length() as u64, size);
    let mut body = Vec::new();
    let read = (&mut client.stream)
        .take(size)
        .read_to_end(&mut body)
        .await
        .unwrap();
    assert_eq!(read as u64, size);
    assert_eq!((body[0], body[body.len() - 1]), (b'[', b']'));

    // The connection is still usable afterwards.
    let next = client.request("GET", "/hello", &[], b"").await.unwrap();
    assert_eq!(next.status, 200);
    assert!(!emulator.requests()[0].closed_early);
}

#[tokio::test]
async fn abandoning_an_oversized_body_is_logged_as_closed_early() {
    let emulator = emulator_with_hello().await;
    emulator.fault_next("/hello", Fault::Oversized(64 * 1024 * 1024), 1);

    let mut client = Client::connect(emulator.addr()).await.unwrap();
    client.send("GET", "/hello", &[], b"").await.unwrap();
    assert_eq!(client.read_head().await.unwrap().status, 200);
    drop(client);

    emulator
        .wait_for_closed_early("/hello", 1, WAIT)
        .await
        .unwrap();
}

#[tokio::test]
async fn replace_body_keeps_status_and_headers() {
    let emulator = emulator_with_hello().await;
    emulator.fault_next("/hello", Fault::ReplaceBody(Bytes::from_static(b"[]")), 1);
    let replaced = get(&emulator, "/hello").await.unwrap();
    assert_eq!(replaced.status, 200);
    assert_eq!(replaced.header("content-type"), Some("application/json"));
    assert_eq!(replaced.body, b"[]");
}

#[tokio::test]
async fn fault_next_affects_exactly_the_next_n_requests_in_fifo_order() {
    let emulator = emulator_with_hello().await;
    emulator.fault_next("/hello", Fault::status(503), 2);
    emulator.fault_next("/hello", Fault::status(429), 1);
    emulator.fault_next("/other", Fault::status(418), 1);

    let mut client = Client::connect(emulator.addr()).await.unwrap();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            client
                .request("GET", "/hello", &[], b"")
                .await
                .unwrap()
                .status,
        );
    }
    assert_eq!(statuses, [503, 503, 429, 200]);
    assert_eq!(get(&emulator, "/other").await.unwrap().status, 418);
}

#[tokio::test]
async fn fault_always_sticks_until_cleared_and_star_targets_everything() {
    let emulator = emulator_with_hello().await;
    emulator.fault_always("*", Fault::status(500));
    for path in ["/hello", "/hello", "/unrouted"] {
        assert_eq!(get(&emulator, path).await.unwrap().status, 500);
    }
    emulator.clear_faults();
    assert_eq!(get(&emulator, "/hello").await.unwrap().status, 200);
}

#[tokio::test]
async fn fault_with_draws_per_request_after_queued_faults_and_before_sticky_ones() {
    let emulator = emulator_with_hello().await;
    // A fixed schedule stands for a random draw: 503, none, 429, none, ...
    let drawn = Arc::new(AtomicUsize::new(0));
    emulator.fault_with("/hello", {
        let drawn = Arc::clone(&drawn);
        move || match drawn.fetch_add(1, Ordering::Relaxed) % 4 {
            0 => Some(Fault::status(503)),
            2 => Some(Fault::status(429)),
            _ => None,
        }
    });
    emulator.fault_next("/hello", Fault::status(418), 1);

    let mut client = Client::connect(emulator.addr()).await.unwrap();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            client
                .request("GET", "/hello", &[], b"")
                .await
                .unwrap()
                .status,
        );
    }
    assert_eq!(statuses, [418, 503, 200, 429, 200]);
    assert_eq!(
        drawn.load(Ordering::Relaxed),
        4,
        "the queued fault drew nothing"
    );
    assert_eq!(
        get(&emulator, "/other").await.unwrap().status,
        404,
        "other paths untouched"
    );

    // A draw of none falls through to a sticky fault of the path.
    emulator.fault_always("*", Fault::status(500));
    let mut statuses = Vec::new();
    for _ in 0..2 {
        statuses.push(
            client
                .request("GET", "/hello", &[], b"")
                .await
                .unwrap()
                .status,
        );
    }
    assert_eq!(statuses, [503, 500]);

    emulator.clear_faults();
    assert_eq!(
        client
            .request("GET", "/hello", &[], b"")
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(drawn.load(Ordering::Relaxed), 6, "cleared: no more draws");
}

#[tokio::test]
async fn a_chooser_may_set_faults_on_the_emulator_it_serves() {
    let emulator = Arc::new(emulator_with_hello().await);
    // Each draw queues a 502 for the next request: no deadlock on the fault lock.
    emulator.fault_with("/hello", {
        let emulator = Arc::downgrade(&emulator);
        move || {
            if let Some(emulator) = emulator.upgrade() {
                emulator.fault_next("/hello", Fault::status(502), 1);
            }
            None
        }
    });
    let mut client = Client::connect(emulator.addr()).await.unwrap();
    let first = tokio::time::timeout(WAIT, client.request("GET", "/hello", &[], b""))
        .await
        .expect("the chooser did not deadlock the emulator")
        .unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(
        client
            .request("GET", "/hello", &[], b"")
            .await
            .unwrap()
            .status,
        502
    );
}

#[tokio::test]
async fn the_log_records_method_path_query_headers_body_and_connection() {
    let emulator = emulator_with_hello().await;
    emulator.route(Method::POST, "/v1/search", Reply::json(&json!([])));

    let mut client = Client::connect(emulator.addr()).await.unwrap();
    client
        .request(
            "POST",
            "/v1/search?name=New+York&lang=en&q=%C3%A9t%C3%A9",
            &[("user-agent", "polyrelay-test/1"), ("x-api-key", "k1")],
            br#"{"limit":3}"#,
        )
        .await
        .unwrap();
    client.request("GET", "/hello", &[], b"").await.unwrap();
    get(&emulator, "/hello").await.unwrap();

    let search = emulator
        .wait_for_requests("/v1/search", 1, WAIT)
        .await
        .unwrap();
    let search = &search[0];
    assert_eq!(search.method, Method::POST);
    assert_eq!(search.path, "/v1/search");
    assert_eq!(
        search.query.as_deref(),
        Some("name=New+York&lang=en&q=%C3%A9t%C3%A9")
    );
    assert_eq!(
        search.query_pairs,
        [
            ("name".to_owned(), "New York".to_owned()),
            ("lang".to_owned(), "en".to_owned()),
            ("q".to_owned(), "été".to_owned()),
        ]
    );
    assert_eq!(search.query_param("name"), Some("New York"));
    assert_eq!(search.header("user-agent"), Some("polyrelay-test/1"));
    assert_eq!(search.header("X-Api-Key"), Some("k1"));
    assert_eq!(search.body.as_ref(), br#"{"limit":3}"#);
    assert!(!search.closed_early);

    let all = emulator.requests();
    assert_eq!(all.len(), 3);
    assert_eq!(
        all[0].connection, all[1].connection,
        "keep-alive reuses the connection"
    );
    assert_ne!(all[1].connection, all[2].connection);
    assert!(all[0].received_at <= all[1].received_at);
    assert_eq!(emulator.hits("/hello"), 2);
    assert_eq!(emulator.hits("/v1/*"), 1);
    assert_eq!(emulator.requests_to("*").len(), 3);

    emulator.clear_log();
    assert!(emulator.requests().is_empty());
    assert_eq!(emulator.served(), 3);
}

#[tokio::test]
async fn waiting_for_requests_times_out_with_what_it_saw() {
    let emulator = emulator_with_hello().await;
    get(&emulator, "/hello").await.unwrap();
    let err = emulator
        .wait_for_requests("/hello", 2, Duration::from_millis(20))
        .await
        .unwrap_err();
    assert_eq!((err.wanted, err.seen), (2, 1));
    assert!(err.to_string().contains("requests to /hello"), "{err}");

    // A request arriving while waiting wakes the waiter.
    let (waited, _) = tokio::join!(
        emulator.wait_for_requests("/hello", 2, WAIT),
        get(&emulator, "/hello")
    );
    assert_eq!(waited.unwrap().len(), 2);
}

#[tokio::test]
async fn logging_off_still_serves_and_counts() {
    let emulator = emulator_with_hello().await;
    emulator.set_logging(false);
    assert_eq!(get(&emulator, "/hello").await.unwrap().status, 200);
    assert!(emulator.requests().is_empty());
    assert_eq!(emulator.served(), 1);
    emulator.set_logging(true);
    get(&emulator, "/hello").await.unwrap();
    assert_eq!(emulator.hits("/hello"), 1);
}

#[tokio::test]
async fn a_misconfigured_reply_answers_500_naming_the_mistake() {
    let emulator = Emulator::start().await.unwrap();
    emulator.route(
        Method::GET,
        "/bad",
        Reply::text("x").with_header("bad header", "v"),
    );
    emulator.route(Method::GET, "/bad-status", Reply::new(1000));
    for path in ["/bad", "/bad-status"] {
        let response = get(&emulator, path).await.unwrap();
        assert_eq!(response.status, 500);
        assert_eq!(response.json()["error"], "emulator_misconfigured");
    }
}

#[tokio::test]
async fn shutdown_releases_the_port_and_closes_connections() {
    let emulator = emulator_with_hello().await;
    let addr = emulator.addr();
    let mut idle = Client::connect(addr).await.unwrap();
    idle.request("GET", "/hello", &[], b"").await.unwrap();
    emulator.shutdown().await;

    assert!(TcpStream::connect(addr).await.is_err());
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(WAIT, idle.stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the idle connection is closed by shutdown");
}

#[test]
fn a_background_emulator_serves_blocking_clients() {
    use std::io::{Read, Write};

    let emulator = Emulator::start_background().unwrap();
    emulator.route(Method::GET, "/ping", Reply::text("pong"));
    let mut stream = std::net::TcpStream::connect(emulator.addr()).unwrap();
    stream
        .write_all(b"GET /ping HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("pong"));
    assert_eq!(emulator.hits("/ping"), 1);
}

#[tokio::test]
async fn a_background_emulator_can_be_dropped_inside_a_runtime() {
    let emulator = Emulator::start_background().unwrap();
    emulator.route(Method::GET, "/ping", Reply::text("pong"));
    assert_eq!(get(&emulator, "/ping").await.unwrap().body, b"pong");
    drop(emulator);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_keep_alive_connections_are_served_concurrently() {
    let emulator = emulator_with_hello().await;
    let clients = (0..64).map(|_| {
        let addr = emulator.addr();
        tokio::spawn(async move {
            let mut client = Client::connect(addr).await.unwrap();
            for _ in 0..10 {
                let response = client.request("GET", "/hello", &[], b"").await.unwrap();
                assert_eq!(response.status, 200);
            }
        })
    });
    for client in clients.collect::<Vec<_>>() {
        client.await.unwrap();
    }
    let requests = emulator.requests_to("/hello");
    assert_eq!(requests.len(), 640);
    let mut connections: Vec<u64> = requests.iter().map(|r| r.connection).collect();
    connections.sort_unstable();
    connections.dedup();
    assert_eq!(connections.len(), 64, "each client kept its one connection");
    assert_eq!(emulator.served(), 640);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_in_flight_counts_requests_answered_at_the_same_time() {
    let emulator = emulator_with_hello().await;
    emulator.fault_always("/hello", Fault::Latency(Duration::from_millis(50)));
    assert_eq!(emulator.peak_in_flight(), 0);
    get(&emulator, "/hello").await.unwrap();
    assert_eq!(emulator.peak_in_flight(), 1, "one at a time");
    let together = (0..3).map(|_| {
        let addr = emulator.addr();
        tokio::spawn(async move {
            let mut client = Client::connect(addr).await.unwrap();
            client.request("GET", "/hello", &[], b"").await.unwrap()
        })
    });
    for response in together.collect::<Vec<_>>() {
        assert_eq!(response.await.unwrap().status, 200);
    }
    assert_eq!(emulator.peak_in_flight(), 3);
    emulator.reset_peak_in_flight();
    assert_eq!(emulator.peak_in_flight(), 0, "nothing is in flight now");
}
