//! Assistant conversations kept by id in the analytics store: saved,
//! loaded, listed (most recent first) and deleted in memory, in the SQLite
//! file (surviving a new client) and in a real Redis (one expiring key per
//! conversation, a typed error while it is down); an assistant resumed by
//! id over the emulator's scripted model sends the earlier turns, plain and
//! streamed; a failed or interrupted ask saves nothing; bad ids are refused
//! before any I/O; the retention hides, then prunes, old conversations (on
//! a fake clock).

mod common;
#[cfg(feature = "redis")]
#[path = "common/redis_server.rs"]
mod redis_server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::future::BoxFuture;
use polyrelay::analytics::{AnalyticsQuery, AnalyticsStore, BucketKey, BucketTotals, MemoryStore};
use polyrelay::assistant::{Assistant, AssistantEvent, Conversation, Limits};
use polyrelay::capability::llm::{ChatMessage, Role};
use polyrelay::clock::FakeClock;
use polyrelay::emulation::script_chat;
use polyrelay::{Client, ErrorKind};
use serde_json::{json, Value};

const CONFIG: &str = r#"
[capabilities."llm.chat"]
chain = ["openai"]
[capabilities."weather.current"]
chain = ["open-meteo"]
"#;

const CHAT: &str = "/openai/v1/chat/completions";

/// A conversation of one question and its answer.
fn exchange(question: &str, answer: &str) -> Conversation {
    Conversation {
        messages: vec![
            ChatMessage::text(Role::User, question),
            ChatMessage::text(Role::Assistant, answer),
        ],
    }
}

fn client_on(emulator: &Emulator, clock: &FakeClock, analytics: &str) -> Client {
    client(
        emulator,
        clock,
        &format!("{CONFIG}\n[analytics]\n{analytics}\n"),
        LLM_KEYS,
    )
}

/// Save, load, list (most recent first, limited), replace and delete.
async fn save_load_list_delete(client: &Client, clock: &FakeClock) {
    assert_eq!(client.conversation("user-1").await.unwrap(), None);
    assert!(client.conversation_ids(10).await.unwrap().is_empty());
    for (id, answer) in [
        ("user-1", "one"),
        ("user-2", "two"),
        ("team:a.b_c-3", "three"),
    ] {
        client
            .save_conversation(id, &exchange("hi", answer))
            .await
            .unwrap();
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(
        client.conversation("user-2").await.unwrap(),
        Some(exchange("hi", "two"))
    );
    assert_eq!(
        client.conversation_ids(10).await.unwrap(),
        ["team:a.b_c-3", "user-2", "user-1"]
    );
    assert_eq!(
        client.conversation_ids(2).await.unwrap(),
        ["team:a.b_c-3", "user-2"]
    );
    // Saving again replaces it and makes it the most recent.
    client
        .save_conversation("user-1", &exchange("hi", "one, again"))
        .await
        .unwrap();
    assert_eq!(
        client.conversation("user-1").await.unwrap(),
        Some(exchange("hi", "one, again"))
    );
    assert_eq!(client.conversation_ids(1).await.unwrap(), ["user-1"]);
    assert!(client.delete_conversation("user-2").await.unwrap());
    assert!(!client.delete_conversation("user-2").await.unwrap());
    assert_eq!(client.conversation("user-2").await.unwrap(), None);
    assert_eq!(
        client.conversation_ids(10).await.unwrap(),
        ["user-1", "team:a.b_c-3"]
    );
    let zero = client.conversation_ids(0).await.unwrap_err();
    assert_eq!(zero.kind(), ErrorKind::InvalidRequest, "{zero}");
}

/// Every id a caller could get wrong, refused as `conversation_id`.
async fn bad_ids_are_refused(client: &Client) {
    let long = "x".repeat(129);
    for id in [
        "",
        "has space",
        "a{b}",
        "slash/no",
        "ünï",
        "new\nline",
        long.as_str(),
    ] {
        let checks = [
            client
                .save_conversation(id, &exchange("q", "a"))
                .await
                .map(drop),
            client.conversation(id).await.map(drop),
            client.delete_conversation(id).await.map(drop),
            Assistant::new(client).ask_saved("Hi?", id).await.map(drop),
            Assistant::new(client).ask_stream_saved("Hi?", id).map(drop),
        ];
        for result in checks {
            let error = result.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{id:?}: {error}");
            assert!(error.to_string().contains("conversation_id"), "{error}");
            if !id.is_empty() {
                assert!(
                    !error.to_string().contains(id),
                    "the id is not echoed: {error}"
                );
            }
        }
    }
    let fine = "a".repeat(128);
    client
        .save_conversation(&fine, &exchange("q", "a"))
        .await
        .unwrap();
    assert!(client.delete_conversation(&fine).await.unwrap());
}

#[tokio::test]
async fn memory_saves_loads_lists_and_deletes_and_refuses_bad_ids() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, CONFIG, LLM_KEYS);
    save_load_list_delete(&client, &clock).await;
    bad_ids_are_refused(&client).await;
    assert_eq!(emulator.hits(CHAT), 0, "nothing was sent for a bad id");
}

#[tokio::test]
async fn conversations_are_kept_with_analytics_recording_off() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client_on(&emulator, &clock, "enabled = false");
    client
        .save_conversation("kept", &exchange("q", "a"))
        .await
        .unwrap();
    assert_eq!(client.conversation_ids(5).await.unwrap(), ["kept"]);
}

fn temp_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "polyrelay-conversations-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("analytics.sqlite")
}

fn sqlite_toml(path: &std::path::Path) -> String {
    format!("sqlite = {:?}", path.display().to_string())
}

fn sqlite_rows(path: &std::path::Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("SELECT count(*) FROM assistant_conversations", [], |row| {
            row.get(0)
        })
        .unwrap()
}

#[tokio::test]
async fn the_sqlite_file_keeps_conversations_for_a_new_client() {
    let emulator = emulator().await;
    let clock = clock();
    let path = temp_file("survive");
    let first = client_on(&emulator, &clock, &sqlite_toml(&path));
    save_load_list_delete(&first, &clock).await;
    bad_ids_are_refused(&first).await;
    drop(first);
    let second = client_on(&emulator, &clock, &sqlite_toml(&path));
    assert_eq!(
        second.conversation("user-1").await.unwrap(),
        Some(exchange("hi", "one, again"))
    );
    assert_eq!(
        second.conversation_ids(10).await.unwrap(),
        ["user-1", "team:a.b_c-3"]
    );
    assert_eq!(sqlite_rows(&path), 2);
}

/// Two turns, then an answer: the first conversation; then the answer to
/// the resumed one.
fn two_question_script() -> Value {
    json!([
        {"tool_calls": [{"name": "weather_current", "arguments": {"lat": 59.91, "lon": 10.75}}]},
        {"text": "It is 3 °C in Oslo."},
        {"text": "Tomorrow looks the same."},
    ])
}

/// The non-system, non-tool contents of the last chat request.
fn last_chat_contents(emulator: &Emulator) -> Vec<String> {
    let last = emulator.requests_to(CHAT).pop().unwrap();
    let body: Value = serde_json::from_slice(&last.body).unwrap();
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] != "system" && m["role"] != "tool")
        .map(|m| m["content"].as_str().unwrap_or("").to_string())
        .collect()
}

/// An assistant asked twice under one id: the second request carries the
/// first question, its tool call and answer; the stored conversation
/// holds both turns.
async fn resumed_by_id(client: &Client, emulator: &Emulator) {
    let assistant = Assistant::new(client);
    let first = assistant
        .ask_saved("Weather in Oslo?", "chat-7")
        .await
        .unwrap();
    assert_eq!(first.text, "It is 3 °C in Oslo.");
    assert_eq!(
        client.conversation("chat-7").await.unwrap(),
        Some(first.conversation.clone())
    );
    let second = assistant
        .ask_saved("And tomorrow?", "chat-7")
        .await
        .unwrap();
    assert_eq!(second.text, "Tomorrow looks the same.");
    assert_eq!(
        last_chat_contents(emulator),
        [
            "Weather in Oslo?",
            "",
            "It is 3 °C in Oslo.",
            "And tomorrow?"
        ]
    );
    let stored = client.conversation("chat-7").await.unwrap().unwrap();
    assert_eq!(stored, second.conversation);
    assert_eq!(stored.messages.len(), 6);
}

#[tokio::test]
async fn an_assistant_resumed_by_id_sends_the_earlier_turns() {
    let emulator = emulator().await;
    script_chat(&emulator, "openai", "gpt-4.1", &two_question_script()).unwrap();
    let client = client(&emulator, &clock(), CONFIG, LLM_KEYS);
    resumed_by_id(&client, &emulator).await;
}

#[tokio::test]
async fn a_streamed_ask_by_id_saves_when_done_and_not_when_dropped() {
    let emulator = emulator().await;
    script_chat(&emulator, "openai", "gpt-4.1", &two_question_script()).unwrap();
    let client = client(&emulator, &clock(), CONFIG, LLM_KEYS);
    let assistant = Assistant::new(&client);

    // Dropped after the tool event, before the answer: nothing saved.
    let mut stream = assistant
        .ask_stream_saved("Weather in Oslo?", "chat-s")
        .unwrap();
    let event = stream.next().await.unwrap().unwrap();
    assert!(matches!(event, AssistantEvent::Tool(_)), "{event:?}");
    drop(stream);
    assert_eq!(client.conversation("chat-s").await.unwrap(), None);

    // Read to the end: saved by the time `Done` arrives.
    let mut stream = assistant
        .ask_stream_saved("Weather in Oslo?", "chat-s")
        .unwrap();
    let mut text = String::new();
    let mut done = None;
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            AssistantEvent::Text(part) => text.push_str(&part),
            AssistantEvent::Done(reply) => {
                assert_eq!(
                    client.conversation("chat-s").await.unwrap().as_ref(),
                    Some(&reply.conversation)
                );
                done = Some(reply);
            }
            _ => {}
        }
    }
    assert_eq!(text, "It is 3 °C in Oslo.");
    assert_eq!(done.unwrap().conversation.messages.len(), 4);

    // The next streamed question continues it.
    let mut stream = assistant
        .ask_stream_saved("And tomorrow?", "chat-s")
        .unwrap();
    while let Some(event) = stream.next().await {
        event.unwrap();
    }
    assert_eq!(
        last_chat_contents(&emulator),
        [
            "Weather in Oslo?",
            "",
            "It is 3 °C in Oslo.",
            "And tomorrow?"
        ]
    );
    let stored = client.conversation("chat-s").await.unwrap().unwrap();
    assert_eq!(stored.messages.len(), 6);
}

#[tokio::test]
async fn a_failed_ask_by_id_leaves_the_stored_conversation_as_it_was() {
    let emulator = emulator().await;
    // The model only ever calls tools: the step limit stops it.
    let script = json!([
        {"tool_calls": [{"name": "weather_current", "arguments": {"lat": 1.0, "lon": 2.0}}]},
    ]);
    script_chat(&emulator, "openai", "gpt-4.1", &script).unwrap();
    let client = client(&emulator, &clock(), CONFIG, LLM_KEYS);
    let before = exchange("earlier", "kept");
    client.save_conversation("loop", &before).await.unwrap();
    let assistant = Assistant::new(&client)
        .with_limits(Limits {
            max_steps: 2,
            ..Limits::default()
        })
        .unwrap();
    let error = assistant.ask_saved("Loop?", "loop").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::LimitReached, "{error}");
    let mut stream = assistant.ask_stream_saved("Loop?", "loop").unwrap();
    let mut last = None;
    while let Some(event) = stream.next().await {
        last = Some(event);
    }
    assert_eq!(last.unwrap().unwrap_err().kind(), ErrorKind::LimitReached);
    assert_eq!(client.conversation("loop").await.unwrap(), Some(before));
    // The earlier turn was sent with the question.
    assert_eq!(
        last_chat_contents(&emulator)[..3],
        ["earlier", "kept", "Loop?"]
    );
}

#[tokio::test]
async fn the_retention_hides_then_prunes_old_conversations() {
    let emulator = emulator().await;
    let clock = clock();
    let store = Arc::new(MemoryStore::new());
    let config = format!("{CONFIG}\n[analytics]\nretention = \"2h\"\n");
    let client = builder(&emulator, &clock, &config, LLM_KEYS)
        .analytics_store(store.clone())
        .build()
        .unwrap();
    client
        .save_conversation("old", &exchange("q", "a"))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(3600));
    client
        .save_conversation("new", &exchange("q", "a"))
        .await
        .unwrap();
    // Updated 1 h 59 min ago: still kept.
    clock.advance(Duration::from_secs(3540));
    assert!(client.conversation("old").await.unwrap().is_some());
    // 2 h 1 min ago: gone from loads and lists at once…
    clock.advance(Duration::from_secs(120));
    assert_eq!(client.conversation("old").await.unwrap(), None);
    assert_eq!(client.conversation_ids(10).await.unwrap(), ["new"]);
    // …and deleted with the old hours by the analytics pruning (which
    // the query's flush runs, if the background drain has not yet).
    client.analytics(&AnalyticsQuery::default()).await.unwrap();
    assert_eq!(store.conversation_count(), 1);
    // A save keeps one alive.
    client
        .save_conversation("new", &exchange("q", "b"))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(7000));
    assert!(client.conversation("new").await.unwrap().is_some());
}

#[tokio::test]
async fn the_sqlite_file_prunes_old_conversations() {
    let emulator = emulator().await;
    let clock = clock();
    let path = temp_file("prune");
    let client = client_on(
        &emulator,
        &clock,
        &format!("{}\nretention = \"2h\"", sqlite_toml(&path)),
    );
    for id in ["a", "b"] {
        client
            .save_conversation(id, &exchange("q", id))
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(3 * 3600));
    client
        .save_conversation("c", &exchange("q", "c"))
        .await
        .unwrap();
    assert_eq!(client.conversation_ids(10).await.unwrap(), ["c"]);
    assert_eq!(client.conversation("a").await.unwrap(), None);
    client.analytics(&AnalyticsQuery::default()).await.unwrap();
    assert_eq!(sqlite_rows(&path), 1);
}

/// A store of calls only (the trait's conversation methods left to their
/// defaults): conversations fail with a typed error, never vanish.
#[derive(Debug, Default)]
struct CallsOnly(MemoryStore);

impl AnalyticsStore for CallsOnly {
    fn kind(&self) -> &'static str {
        "calls-only"
    }
    fn write<'a>(
        &'a self,
        buckets: &'a [(BucketKey, BucketTotals)],
    ) -> BoxFuture<'a, Result<(), String>> {
        self.0.write(buckets)
    }
    fn read(
        &self,
        from: i64,
        to: i64,
    ) -> BoxFuture<'_, Result<Vec<(BucketKey, BucketTotals)>, String>> {
        self.0.read(from, to)
    }
    fn prune(&self, hour: i64) -> BoxFuture<'_, Result<(), String>> {
        self.0.prune(hour)
    }
}

#[tokio::test]
async fn a_store_without_conversations_says_so() {
    let emulator = emulator().await;
    let clock = clock();
    let client = builder(&emulator, &clock, CONFIG, LLM_KEYS)
        .analytics_store(Arc::new(CallsOnly::default()))
        .build()
        .unwrap();
    let error = client
        .save_conversation("x", &exchange("q", "a"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Usage);
    assert!(error.to_string().contains("calls-only"), "{error}");
    assert_eq!(
        client.conversation("x").await.unwrap_err().kind(),
        ErrorKind::Usage
    );
    assert_eq!(
        client.conversation_ids(3).await.unwrap_err().kind(),
        ErrorKind::Usage
    );
    assert_eq!(
        client.delete_conversation("x").await.unwrap_err().kind(),
        ErrorKind::Usage
    );
    // The pruning of the rest is not disturbed.
    client.analytics(&AnalyticsQuery::default()).await.unwrap();
}

// ------------------------------------------------------------ redis

#[cfg(feature = "redis")]
fn redis_client(emulator: &Emulator, clock: &FakeClock, url: &str) -> Client {
    client_on(
        emulator,
        clock,
        &format!(
            "redis = true\n[redis]\nurl = \"{url}\"\ncache = false\nbreaker_open = \"50ms\"\n"
        ),
    )
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keeps_one_expiring_key_per_conversation_shared_by_clients() {
    let server = redis_server::RedisServer::start();
    let emulator = emulator().await;
    script_chat(&emulator, "openai", "gpt-4.1", &two_question_script()).unwrap();
    let clock = clock();
    let client = redis_client(&emulator, &clock, &server.url());
    save_load_list_delete(&client, &clock).await;
    // The first drain's pruning is done; none follows on this clock.
    client.flush_analytics().await;
    let calls = server.total_calls();
    bad_ids_are_refused(&client).await;
    // The one valid id at the end of `bad_ids_are_refused` took a save
    // and a delete (one pipeline each: SET + ZADD, DEL + ZREM); the bad
    // ones nothing.
    assert_eq!(server.total_calls() - calls, 4);
    clock.advance(Duration::from_secs(1));
    resumed_by_id(&client, &emulator).await;

    // One key per conversation, named by its id only, expiring after the
    // retention (30 days by default); and the index of ids.
    let mut keys = server.keys("polyrelay:conv*");
    keys.sort();
    assert_eq!(
        keys,
        [
            "polyrelay:conv-ids",
            "polyrelay:conv:{chat-7}",
            "polyrelay:conv:{team:a.b_c-3}",
            "polyrelay:conv:{user-1}",
        ]
    );
    let ttl = server.pttl("polyrelay:conv:{chat-7}");
    assert!(
        (29 * 24 * 3600 * 1000..=30 * 24 * 3600 * 1000).contains(&ttl),
        "{ttl}"
    );

    // Another client (another process) sees the same conversations.
    let other = redis_client(&emulator, &clock, &server.url());
    assert_eq!(
        other.conversation_ids(10).await.unwrap(),
        ["chat-7", "user-1", "team:a.b_c-3"]
    );
    assert_eq!(
        other
            .conversation("chat-7")
            .await
            .unwrap()
            .unwrap()
            .messages
            .len(),
        6
    );
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_conversation_calls_with_a_typed_error() {
    let mut server = redis_server::RedisServer::start();
    let emulator = emulator().await;
    script_chat(&emulator, "openai", "gpt-4.1", &two_question_script()).unwrap();
    let clock = clock();
    let client = redis_client(&emulator, &clock, &server.url());
    let before = exchange("earlier", "kept");
    client.save_conversation("u", &before).await.unwrap();
    server.kill();
    let save = client
        .save_conversation("u", &exchange("q", "lost?"))
        .await
        .unwrap_err();
    assert_eq!(save.kind(), ErrorKind::Usage, "{save}");
    assert!(save.to_string().contains("redis"), "{save}");
    // A load fails too, rather than answering "no conversation" and
    // starting the assistant afresh.
    assert_eq!(
        client.conversation("u").await.unwrap_err().kind(),
        ErrorKind::Usage
    );
    assert_eq!(
        client.conversation_ids(5).await.unwrap_err().kind(),
        ErrorKind::Usage
    );
    let ask = Assistant::new(&client)
        .ask_saved("Weather?", "u")
        .await
        .unwrap_err();
    assert_eq!(ask.kind(), ErrorKind::Usage, "{ask}");
    assert_eq!(emulator.hits(CHAT), 0, "nothing asked without the history");
    // Calls themselves still work, their records kept in memory.
    client
        .call("weather.current", json!({"lat": 1.0, "lon": 2.0}))
        .await
        .unwrap();
    client.flush_analytics().await;
    assert!(client.analytics_status().degraded);
}

#[tokio::test]
async fn the_memory_store_forgets_the_least_recently_updated_past_its_bound() {
    let emulator = emulator().await;
    let clock = clock();
    let store = Arc::new(MemoryStore::new());
    let client = builder(&emulator, &clock, CONFIG, LLM_KEYS)
        .analytics_store(store.clone())
        .build()
        .unwrap();
    let conversation = exchange("q", "a");
    for i in 0..polyrelay::analytics::MAX_MEMORY_CONVERSATIONS {
        client
            .save_conversation(&format!("c{i}"), &conversation)
            .await
            .unwrap();
        clock.advance(Duration::from_millis(1));
    }
    // c0 is updated again: c1 is now the oldest, and makes room.
    client.save_conversation("c0", &conversation).await.unwrap();
    client
        .save_conversation("one-more", &conversation)
        .await
        .unwrap();
    assert_eq!(
        store.conversation_count(),
        polyrelay::analytics::MAX_MEMORY_CONVERSATIONS
    );
    assert_eq!(client.conversation("c1").await.unwrap(), None);
    assert!(client.conversation("c0").await.unwrap().is_some());
    assert_eq!(
        client.conversation_ids(2).await.unwrap(),
        ["one-more", "c0"]
    );
}
