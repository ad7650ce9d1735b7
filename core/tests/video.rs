//! `video.details` and `video.transcript` end to end through the emulator:
//! each provider answers from its fixtures, a failing or empty first
//! provider falls back to the next, a URL of one site asks only that site's
//! provider, and bad parameters fail before any request.

mod common;

use common::*;
use polyrelay::capability::Data;
use polyrelay::ErrorKind;
use serde_json::{json, Value};

const KEYS: &[(&str, &str)] = &[("YOUTUBE_API_KEY", "youtube-test-key")];

fn chain_config(capability: &str, chain: &[&str]) -> String {
    let ids: Vec<String> = chain.iter().map(|id| format!("{id:?}")).collect();
    format!(
        "[capabilities.\"{capability}\"]\nchain = [{}]\n\n[providers.{}]\nrate_limit = \"off\"\n",
        ids.join(", "),
        chain[0]
    )
}

async fn call(chain: &[&str], capability: &str, params: Value) -> (Emulator, polyrelay::Envelope) {
    let emulator = emulator().await;
    let client = client(&emulator, &clock(), &chain_config(capability, chain), KEYS);
    let reply = client
        .call(capability, params)
        .await
        .unwrap_or_else(|e| panic!("{capability} via {chain:?}: {e}"));
    (emulator, reply)
}

#[tokio::test]
async fn each_provider_answers_details_in_one_shape() {
    let cases = [
        (
            "dailymotion",
            "x7tgad0",
            "Apollo 11: the first steps on the Moon",
            Some(634),
        ),
        (
            "internet-archive",
            "Apollo11Highlights",
            "Apollo 11 Highlights",
            Some(1421),
        ),
        (
            "youtube",
            "S9HdPi9Ikhk",
            "Apollo 11 Launch & Landing",
            Some(3723),
        ),
    ];
    let mut keys: Option<Vec<String>> = None;
    for (provider, id, title, duration) in cases {
        let (emulator, reply) = call(&[provider], "video.details", json!({ "id": id })).await;
        assert_eq!(reply.provider, provider);
        let Data::VideoDetails(v) = reply.data() else {
            panic!("{provider}: {:?}", reply.data())
        };
        assert_eq!(
            (v.id.as_str(), v.title.as_str(), v.duration_s),
            (id, title, duration)
        );
        assert!(
            v.channel.is_some() && v.published_at.is_some(),
            "{provider}"
        );
        assert!(!v.thumbnails.is_empty(), "{provider}");
        assert_eq!(
            emulator.hits(&format!("/{provider}/*")),
            1,
            "{provider}: one request"
        );
        let json = reply.data().to_json();
        let these: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
        match &keys {
            None => keys = Some(these),
            Some(first) => assert_eq!(first, &these, "{provider}"),
        }
    }
}

#[tokio::test]
async fn details_fall_back_when_the_first_fails_or_does_not_know_the_video() {
    let emulator = emulator().await;
    let config = chain_config("video.details", &["dailymotion", "internet-archive"]);
    let client = client(&emulator, &clock(), &config, KEYS);
    emulator.fault_always("/dailymotion/*", Fault::status(503));
    let reply = client
        .call("video.details", json!({"id": "x7tgad0"}))
        .await
        .unwrap();
    assert_eq!(reply.provider, "internet-archive");
    assert_eq!(reply.attempts[0].outcome.as_str(), "transient");

    let emulator = common::emulator().await;
    let client = common::client(&emulator, &clock(), &config, KEYS);
    let missing = json!({"error": {"code": 404, "message": "Can not find the object \"x7tgad0\".", "type": "not_found"}});
    emulator.fault_always(
        "/dailymotion/*",
        Fault::Respond(Reply::json(&missing).with_status(404)),
    );
    let reply = client
        .call("video.details", json!({"id": "x7tgad0"}))
        .await
        .unwrap();
    assert_eq!(reply.provider, "internet-archive");
    assert_eq!(reply.attempts[0].outcome.as_str(), "not_found");
}

#[tokio::test]
async fn a_sites_url_asks_only_that_sites_provider() {
    let (emulator, reply) = call(
        &["youtube", "internet-archive", "dailymotion"],
        "video.details",
        json!({"id": "https://www.dailymotion.com/video/x7tgad0_apollo-11"}),
    )
    .await;
    assert_eq!(reply.provider, "dailymotion");
    let outcomes: Vec<&str> = reply.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes[..2], ["unsupported", "unsupported"]);
    assert_eq!(
        emulator.hits("/youtube/*") + emulator.hits("/internet-archive/*"),
        0
    );
    assert_eq!(emulator.requests_to("/dailymotion/video/x7tgad0").len(), 1);
}

#[tokio::test]
async fn transcripts_follow_the_track_to_its_file() {
    let (emulator, reply) = call(
        &["dailymotion"],
        "video.transcript",
        json!({"id": "x7tgad0", "language": "en"}),
    )
    .await;
    let Data::VideoTranscript(t) = reply.data() else {
        panic!("{:?}", reply.data())
    };
    assert_eq!(
        (t.video_id.as_str(), t.language.as_deref()),
        ("x7tgad0", Some("en"))
    );
    assert_eq!(t.segments.len(), 2);
    assert!(t
        .text
        .starts_with("Fifty years ago, Apollo 11 landed on the Moon."));
    assert_eq!(
        emulator
            .requests_to("/dailymotion/video/x7tgad0/subtitles")
            .len(),
        1
    );
    assert_eq!(
        emulator
            .requests_to("/dailymotion/static/video/451/610/35016154_subtitle_en.srt")
            .len(),
        1
    );

    let (emulator, reply) = call(
        &["internet-archive"],
        "video.transcript",
        json!({"id": "Apollo11Highlights", "language": "fr"}),
    )
    .await;
    let Data::VideoTranscript(t) = reply.data() else {
        panic!()
    };
    assert_eq!(
        (t.language.as_deref(), t.text.as_str()),
        (Some("fr"), "L'Aigle a atterri.")
    );
    assert_eq!(
        emulator
            .requests_to("/internet-archive/download/Apollo11Highlights/Apollo11Highlights.fr.vtt")
            .len(),
        1
    );
}

#[tokio::test]
async fn a_missing_transcript_falls_back_like_a_failure() {
    // Dailymotion lists no subtitles: `not_found`, and the Archive answers.
    let emulator = emulator().await;
    let config = chain_config("video.transcript", &["dailymotion", "internet-archive"]);
    let client = client(&emulator, &clock(), &config, KEYS);
    let none = json!({"page": 1, "limit": 10, "explicit": false, "total": 0, "has_more": false, "list": []});
    emulator.fault_always(
        "/dailymotion/video/x7tgad0/subtitles",
        Fault::Respond(Reply::json(&none)),
    );
    let reply = client
        .call("video.transcript", json!({"id": "x7tgad0"}))
        .await
        .unwrap();
    assert_eq!(reply.provider, "internet-archive");
    assert_eq!(
        (
            reply.attempts[0].provider,
            reply.attempts[0].outcome.as_str()
        ),
        ("dailymotion", "not_found")
    );

    // The caption file itself fails: the next provider answers too.
    let emulator = common::emulator().await;
    let client = common::client(&emulator, &clock(), &config, KEYS);
    emulator.fault_always("/dailymotion/static/*", Fault::Respond(Reply::new(404)));
    let reply = client
        .call("video.transcript", json!({"id": "x7tgad0"}))
        .await
        .unwrap();
    assert_eq!(reply.provider, "internet-archive");
    assert_eq!(reply.attempts[0].outcome.as_str(), "not_found");

    // Every provider without one: the call is `not_found`.
    let emulator = common::emulator().await;
    let client = common::client(&emulator, &clock(), &config, KEYS);
    emulator.fault_always(
        "/dailymotion/video/x7tgad0/subtitles",
        Fault::Respond(Reply::json(&none)),
    );
    let no_files = json!({"metadata": {"identifier": "x7tgad0", "mediatype": "movies", "title": "x"}, "files": [{"name": "x.mp4"}]});
    emulator.fault_always(
        "/internet-archive/metadata/*",
        Fault::Respond(Reply::json(&no_files)),
    );
    let err = client
        .call("video.transcript", json!({"id": "x7tgad0"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn bad_parameters_fail_before_any_request() {
    let emulator = emulator().await;
    let client = client(&emulator, &clock(), "", KEYS);
    for (capability, params, field) in [
        ("video.details", json!({}), "id"),
        ("video.details", json!({"id": "not an id"}), "id"),
        (
            "video.details",
            json!({"id": "https://vimeo.com/76979871"}),
            "id",
        ),
        (
            "video.transcript",
            json!({"id": "x7tgad0", "language": "Klingonese"}),
            "language",
        ),
        (
            "video.transcript",
            json!({"id": "x7tgad0", "lang": "en"}),
            "lang",
        ),
    ] {
        match client.call(capability, params.clone()).await {
            Err(polyrelay::Error::InvalidRequest { field: f, .. }) => {
                assert_eq!(f, field, "{capability} {params}")
            }
            other => panic!("{capability} {params}: {other:?}"),
        }
    }
    assert!(emulator.requests().is_empty());
}
