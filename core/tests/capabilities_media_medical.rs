//! Media and medical capabilities end to end through the emulator: every
//! capability falls back across its providers when the first fails in each
//! of its error classes, answers with the same shape whichever provider
//! answers, and works with no keys at all.

mod common;

use std::time::Duration;

use common::*;
use polyrelay::capability::CapabilityId;
use serde_json::{json, Value};

/// Fake keys for every keyed provider of the group.
const KEYS: &[(&str, &str)] = &[
    ("TMDB_ACCESS_TOKEN", "tmdb-test-token"),
    ("OMDB_API_KEY", "omdb-test-key"),
    ("YOUTUBE_API_KEY", "youtube-test-key"),
    ("GOOGLE_BOOKS_API_KEY", "books-test-key"),
    ("OPENFDA_API_KEY", "openfda-test-key"),
    ("NCBI_API_KEY", "ncbi-test-key"),
];

fn chain_config(capability: &str, chain: &[&str]) -> String {
    let ids: Vec<String> = chain.iter().map(|id| format!("{id:?}")).collect();
    format!(
        "[capabilities.\"{capability}\"]\nchain = [{}]\n",
        ids.join(", ")
    )
}

/// The shape of a JSON value: its keys and the types of its values, with
/// the first element standing for a whole list.
fn shape(value: &Value) -> Value {
    match value {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
    }
}

/// Whether two shapes match: the same keys everywhere, the same types
/// where both sides have a value (`null` stands for "unknown here").
fn same_shape(a: &Value, b: &Value, at: &str) -> Result<(), String> {
    match (a, b) {
        (Value::String(x), _) | (_, Value::String(x)) if x == "null" => Ok(()),
        (Value::Object(x), Value::Object(y)) => {
            let (kx, ky): (Vec<_>, Vec<_>) = (x.keys().collect(), y.keys().collect());
            if kx != ky {
                return Err(format!("{at}: keys {kx:?} != {ky:?}"));
            }
            x.iter()
                .try_for_each(|(k, v)| same_shape(v, &y[k], &format!("{at}.{k}")))
        }
        (Value::Array(x), Value::Array(y)) => match (x.first(), y.first()) {
            (Some(p), Some(q)) => same_shape(p, q, &format!("{at}[0]")),
            _ => Ok(()),
        },
        (x, y) if x == y => Ok(()),
        (x, y) => Err(format!("{at}: {x} != {y}")),
    }
}

/// Calls `capability` with a chain of one provider and returns the answer.
async fn answer_from(capability: &str, provider: &str, params: &Value) -> Value {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(
        &emulator,
        &clock,
        &chain_config(capability, &[provider]),
        KEYS,
    );
    let reply = client
        .call(capability, params.clone())
        .await
        .unwrap_or_else(|e| panic!("{provider} did not answer {capability}: {e}"));
    assert_eq!(reply.provider, provider);
    reply.data().to_json()
}

/// Every provider of `capability` answers with the same shape, and with at
/// least one result (so the comparison covers the result items).
async fn assert_same_shape(capability: &str, providers: &[&str], params: Value) {
    let mut first: Option<(&str, Value)> = None;
    for provider in providers {
        let data = answer_from(capability, provider, &params).await;
        let list = ["results", "labels"]
            .iter()
            .find_map(|k| data.get(*k))
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{provider}: no result list in {data}"));
        assert!(!list.is_empty(), "{provider} answered no results");
        let this = shape(&data);
        match &first {
            None => first = Some((provider, this)),
            Some((base, base_shape)) => {
                if let Err(diff) = same_shape(base_shape, &this, capability) {
                    panic!("{base} and {provider} answer in different shapes: {diff}");
                }
            }
        }
    }
}

/// A fault on the primary and the outcome it must be recorded as.
struct Failing {
    primary: &'static str,
    fault: Fault,
    outcome: &'static str,
}

fn transient(primary: &'static str) -> Failing {
    Failing {
        primary,
        fault: Fault::status(503),
        outcome: "transient",
    }
}

fn rate_limited(primary: &'static str) -> Failing {
    Failing {
        primary,
        fault: Fault::Respond(Reply::new(429).with_retry_after(Duration::from_secs(30))),
        outcome: "rate_limited",
    }
}

fn malformed(primary: &'static str) -> Failing {
    Failing {
        primary,
        fault: Fault::Malformed,
        outcome: "malformed_response",
    }
}

/// The primary answers `body` with `status`.
fn replies(primary: &'static str, status: u16, body: Value, outcome: &'static str) -> Failing {
    Failing {
        primary,
        fault: Fault::Respond(Reply::json(&body).with_status(status)),
        outcome,
    }
}

/// The primary fails as `failing` says on every request; the call is
/// answered by `secondary`, and the trail records why.
async fn assert_falls_back(capability: &str, params: Value, failing: Failing, secondary: &str) {
    let emulator = emulator().await;
    let clock = clock();
    // Without its client-side rate limit, so that the primary's retries are
    // not throttled locally (which would hide the class under test).
    let config = format!(
        "{}\n[providers.{}]\nrate_limit = \"off\"\n",
        chain_config(capability, &[failing.primary, secondary]),
        failing.primary
    );
    let client = client(&emulator, &clock, &config, KEYS);
    emulator.fault_always(&format!("/{}/*", failing.primary), failing.fault);

    let reply = client
        .call(capability, params)
        .await
        .unwrap_or_else(|e| panic!("{capability} via {secondary}: {e}"));

    let first = &reply.attempts[0];
    assert_eq!(
        (reply.provider, first.provider, first.outcome.as_str()),
        (secondary, failing.primary, failing.outcome),
        "{capability}: {}",
        first.reason
    );
    assert!(reply.attempts[1].succeeded());
    assert!(emulator.hits(&format!("/{}/*", failing.primary)) >= 1);
}

/// The primary's client-side daily quota is spent by a first call; the
/// second is answered by `secondary` without asking the primary.
async fn assert_quota_falls_back(
    capability: &str,
    primary: &str,
    secondary: &str,
    first: Value,
    second: Value,
) {
    let emulator = emulator().await;
    let clock = clock();
    let config = format!(
        "{}\n[providers.{primary}]\ndaily_quota = 1\n",
        chain_config(capability, &[primary, secondary])
    );
    let client = client(&emulator, &clock, &config, KEYS);
    assert_eq!(
        client.call(capability, first).await.unwrap().provider,
        primary
    );
    let hits = emulator.hits(&format!("/{primary}/*"));

    let reply = client.call(capability, second).await.unwrap();

    assert_eq!(reply.provider, secondary);
    assert_eq!(
        (
            reply.attempts[0].provider,
            reply.attempts[0].outcome.as_str()
        ),
        (primary, "skipped_quota")
    );
    assert_eq!(emulator.hits(&format!("/{primary}/*")), hits);
}

// ---------------------------------------------------------------- medical

#[tokio::test]
async fn drug_label_falls_back_in_every_error_class() {
    let cap = "medical.drug_label";
    let p = || json!({"name": "ibuprofen"});
    assert_falls_back(cap, p(), transient("openfda"), "dailymed").await;
    assert_falls_back(cap, p(), rate_limited("openfda"), "dailymed").await;
    assert_falls_back(cap, p(), malformed("openfda"), "dailymed").await;
    let bad_key = json!({"error": {"code": "API_KEY_INVALID", "message": "An invalid api_key was supplied."}});
    assert_falls_back(
        cap,
        p(),
        replies("openfda", 403, bad_key, "auth"),
        "dailymed",
    )
    .await;
    let none = json!({"error": {"code": "NOT_FOUND", "message": "No matches found!"}});
    assert_falls_back(
        cap,
        p(),
        replies("openfda", 404, none, "not_found"),
        "rxnav",
    )
    .await;
    let empty = json!({"data": [], "metadata": {"total_elements": 0}});
    assert_falls_back(
        cap,
        p(),
        replies("dailymed", 200, empty, "not_found"),
        "openfda",
    )
    .await;
    assert_quota_falls_back(cap, "openfda", "dailymed", p(), json!({"name": "naproxen"})).await;
}

#[tokio::test]
async fn drug_label_answers_in_one_shape_from_every_provider() {
    assert_same_shape(
        "medical.drug_label",
        &["openfda", "dailymed", "rxnav"],
        json!({"name": "atorvastatin"}),
    )
    .await;
}

#[tokio::test]
async fn literature_search_falls_back_in_every_error_class() {
    let cap = "medical.literature_search";
    let p = || json!({"query": "malaria vaccine"});
    assert_falls_back(cap, p(), transient("pubmed"), "europepmc").await;
    assert_falls_back(cap, p(), rate_limited("pubmed"), "europepmc").await;
    assert_falls_back(cap, p(), malformed("pubmed"), "openalex").await;
    let bad_key =
        json!({"error": "API key invalid", "api-key": "ncbi-test-key", "type": "invalid"});
    assert_falls_back(
        cap,
        p(),
        replies("pubmed", 400, bad_key, "auth"),
        "europepmc",
    )
    .await;
    let bad_query = json!({"esearchresult": {"ERROR": "Invalid query"}});
    assert_falls_back(
        cap,
        p(),
        replies("pubmed", 200, bad_query, "invalid_request"),
        "openalex",
    )
    .await;
    let backend = json!({"error": "Search Backend failed: read timeout"});
    assert_falls_back(
        cap,
        p(),
        replies("pubmed", 200, backend, "transient"),
        "europepmc",
    )
    .await;
    assert_quota_falls_back(
        cap,
        "openalex",
        "europepmc",
        p(),
        json!({"query": "dengue"}),
    )
    .await;
}

#[tokio::test]
async fn literature_search_answers_in_one_shape_and_pubmed_chains_two_requests() {
    assert_same_shape(
        "medical.literature_search",
        &["pubmed", "europepmc", "openalex"],
        json!({"query": "malaria vaccine"}),
    )
    .await;

    let emulator = emulator().await;
    let clock = clock();
    let config = format!(
        "contact = \"ops@example.com\"\n{}",
        chain_config("medical.literature_search", &["pubmed"])
    );
    let client = client(
        &emulator,
        &clock,
        &config,
        &[("NCBI_API_KEY", "ncbi-test-key")],
    );
    let reply = client
        .call(
            "medical.literature_search",
            json!({"query": "malaria vaccine", "limit": 2}),
        )
        .await
        .unwrap();
    assert_eq!(reply.attempts[0].tries, 1, "both steps are one try");
    let search = &emulator.requests_to("/pubmed/entrez/eutils/esearch.fcgi")[0];
    let summary = &emulator.requests_to("/pubmed/entrez/eutils/esummary.fcgi")[0];
    assert_eq!(summary.query_param("id"), Some("36038614,34310955"));
    for request in [search, summary] {
        assert_eq!(request.query_param("email"), Some("ops@example.com"));
        assert_eq!(request.query_param("tool"), Some("polyrelay"));
        assert_eq!(request.query_param("api_key"), Some("ncbi-test-key"));
    }
}

#[tokio::test]
async fn openalex_joins_the_polite_pool_with_the_contact() {
    let emulator = emulator().await;
    let clock = clock();
    let config = format!(
        "contact = \"ops@example.com\"\n{}",
        chain_config("medical.literature_search", &["openalex"])
    );
    let client = client(&emulator, &clock, &config, &[]);
    client
        .call("medical.literature_search", json!({"query": "malaria"}))
        .await
        .unwrap();
    let request = &emulator.requests_to("/openalex/works")[0];
    assert_eq!(request.query_param("mailto"), Some("ops@example.com"));
    assert!(request
        .header("user-agent")
        .unwrap()
        .contains("ops@example.com"));
}

#[tokio::test]
async fn clinical_trials_fall_back_in_every_error_class() {
    let cap = "medical.clinical_trials";
    let p = || json!({"condition": "malaria"});
    assert_falls_back(cap, p(), transient("clinicaltrials-gov"), "europepmc").await;
    assert_falls_back(cap, p(), rate_limited("clinicaltrials-gov"), "europepmc").await;
    assert_falls_back(cap, p(), malformed("clinicaltrials-gov"), "europepmc").await;
    let bad =
        Fault::Respond(Reply::text("Parameter `query.cond` has incorrect format").with_status(400));
    let failing = Failing {
        primary: "clinicaltrials-gov",
        fault: bad,
        outcome: "invalid_request",
    };
    assert_falls_back(cap, p(), failing, "europepmc").await;
    assert_quota_falls_back(
        cap,
        "clinicaltrials-gov",
        "europepmc",
        p(),
        json!({"condition": "dengue"}),
    )
    .await;
}

#[tokio::test]
async fn clinical_trials_answer_in_one_shape_and_status_filters_skip_europe_pmc() {
    assert_same_shape(
        "medical.clinical_trials",
        &["clinicaltrials-gov", "europepmc"],
        json!({"condition": "malaria"}),
    )
    .await;

    let emulator = emulator().await;
    let clock = clock();
    let config = chain_config(
        "medical.clinical_trials",
        &["europepmc", "clinicaltrials-gov"],
    );
    let client = client(&emulator, &clock, &config, &[]);
    let reply = client
        .call(
            "medical.clinical_trials",
            json!({"condition": "malaria", "status": "recruiting"}),
        )
        .await
        .unwrap();
    assert_eq!(reply.provider, "clinicaltrials-gov");
    assert_eq!(reply.attempts[0].outcome, "unsupported");
    assert_eq!(emulator.hits("/europepmc/*"), 0);
}

// ------------------------------------------------------------------ media

#[tokio::test]
async fn movie_search_falls_back_in_every_error_class() {
    let cap = "entertainment.movie_search";
    let p = || json!({"query": "terminator"});
    assert_falls_back(cap, p(), transient("tmdb"), "itunes").await;
    assert_falls_back(cap, p(), rate_limited("tmdb"), "itunes").await;
    assert_falls_back(cap, p(), malformed("tmdb"), "omdb").await;
    let bad_token = json!({"status_code": 7, "status_message": "Invalid API key: You must be granted a valid key.", "success": false});
    assert_falls_back(cap, p(), replies("tmdb", 401, bad_token, "auth"), "itunes").await;
    let quota = json!({"Response": "False", "Error": "Request limit reached!"});
    assert_falls_back(
        cap,
        p(),
        replies("omdb", 401, quota, "quota_exhausted"),
        "itunes",
    )
    .await;
    let vague = json!({"Response": "False", "Error": "Too many results."});
    assert_falls_back(
        cap,
        p(),
        replies("omdb", 200, vague, "invalid_request"),
        "tmdb",
    )
    .await;
}

#[tokio::test]
async fn movie_search_answers_in_one_shape_and_places_keys_as_declared() {
    assert_same_shape(
        "entertainment.movie_search",
        &["itunes", "tmdb", "omdb"],
        json!({"query": "terminator"}),
    )
    .await;

    let emulator = emulator().await;
    let clock = clock();
    let config = chain_config("entertainment.movie_search", &["tmdb", "omdb"]);
    let client = client(&emulator, &clock, &config, KEYS);
    emulator.fault_always("/tmdb/*", Fault::status(503));
    client
        .call("entertainment.movie_search", json!({"query": "terminator"}))
        .await
        .unwrap();
    let tmdb = &emulator.requests_to("/tmdb/3/search/movie")[0];
    assert_eq!(tmdb.header("authorization"), Some("Bearer tmdb-test-token"));
    assert_eq!(tmdb.query_param("api_key"), None);
    let omdb = &emulator.requests_to("/omdb/")[0];
    assert_eq!(omdb.query_param("apikey"), Some("omdb-test-key"));
}

#[tokio::test]
async fn imdb_ids_are_mapped_so_a_fallback_answers_the_same_title() {
    let emulator = emulator().await;
    let clock = clock();
    let config = chain_config("entertainment.movie_search", &["itunes", "tmdb"]);
    let client = client(&emulator, &clock, &config, KEYS);
    let reply = client
        .call(
            "entertainment.movie_search",
            json!({"imdb_id": "tt0088247"}),
        )
        .await
        .unwrap();
    // iTunes knows no IMDb ids; TMDB maps it to its own id 218.
    assert_eq!(reply.attempts[0].outcome, "unsupported");
    assert_eq!(reply.provider, "tmdb");
    assert_eq!(emulator.hits("/tmdb/3/find/tt0088247"), 1);
    let data = reply.data().to_json();
    assert_eq!(data["results"][0]["ids"]["tmdb"], 218);
    assert_eq!(data["results"][0]["title"], "The Terminator");
}

#[tokio::test]
async fn tv_search_falls_back_in_every_error_class() {
    let cap = "tv.show_search";
    let p = || json!({"query": "breaking bad"});
    assert_falls_back(cap, p(), transient("tvmaze"), "itunes").await;
    assert_falls_back(cap, p(), rate_limited("tvmaze"), "itunes").await;
    assert_falls_back(cap, p(), malformed("tvmaze"), "tmdb").await;
    let bad_token = json!({"status_code": 7, "status_message": "Invalid API key: You must be granted a valid key.", "success": false});
    assert_falls_back(cap, p(), replies("tmdb", 401, bad_token, "auth"), "tvmaze").await;
    let quota = json!({"Response": "False", "Error": "Request limit reached!"});
    assert_falls_back(
        cap,
        p(),
        replies("omdb", 401, quota, "quota_exhausted"),
        "tvmaze",
    )
    .await;
    let vague = json!({"Response": "False", "Error": "Too many results."});
    assert_falls_back(
        cap,
        p(),
        replies("omdb", 200, vague, "invalid_request"),
        "tvmaze",
    )
    .await;
}

#[tokio::test]
async fn tv_search_answers_in_one_shape_from_every_provider() {
    assert_same_shape(
        "tv.show_search",
        &["tvmaze", "itunes", "tmdb", "omdb"],
        json!({"query": "breaking bad"}),
    )
    .await;
}

#[tokio::test]
async fn books_search_falls_back_in_every_error_class() {
    let cap = "books.search";
    let p = || json!({"query": "dune"});
    assert_falls_back(cap, p(), transient("openlibrary"), "gutendex").await;
    assert_falls_back(cap, p(), rate_limited("openlibrary"), "google-books").await;
    assert_falls_back(cap, p(), malformed("openlibrary"), "itunes").await;
    let daily = json!({"error": {"code": 429, "message": "Quota exceeded for quota metric 'Queries' and limit 'Queries per day' of service 'books.googleapis.com'.", "errors": [{"reason": "rateLimitExceeded"}], "status": "RESOURCE_EXHAUSTED"}});
    assert_falls_back(
        cap,
        p(),
        replies("google-books", 429, daily, "quota_exhausted"),
        "openlibrary",
    )
    .await;
    let bad_key = json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "errors": [{"reason": "badRequest"}], "status": "INVALID_ARGUMENT"}});
    assert_falls_back(
        cap,
        p(),
        replies("google-books", 400, bad_key, "auth"),
        "openlibrary",
    )
    .await;
}

#[tokio::test]
async fn books_search_answers_in_one_shape_from_every_provider() {
    assert_same_shape(
        "books.search",
        &["openlibrary", "gutendex", "google-books", "itunes"],
        json!({"query": "dune"}),
    )
    .await;
}

#[tokio::test]
async fn music_search_falls_back_in_every_error_class() {
    let cap = "music.search";
    let p = || json!({"query": "daft punk"});
    assert_falls_back(cap, p(), transient("deezer"), "itunes").await;
    assert_falls_back(cap, p(), rate_limited("deezer"), "musicbrainz").await;
    assert_falls_back(cap, p(), malformed("deezer"), "itunes").await;
    let quota =
        json!({"error": {"type": "Exception", "message": "Quota limit exceeded", "code": 4}});
    assert_falls_back(
        cap,
        p(),
        replies("deezer", 200, quota, "rate_limited"),
        "itunes",
    )
    .await;
    let token = json!({"error": {"type": "OAuthException", "message": "Invalid OAuth access token.", "code": 300}});
    assert_falls_back(cap, p(), replies("deezer", 200, token, "auth"), "itunes").await;
    let throttled = json!({"error": "Your requests are exceeding the allowable rate limit."});
    assert_falls_back(
        cap,
        p(),
        replies("musicbrainz", 503, throttled, "rate_limited"),
        "deezer",
    )
    .await;
    assert_quota_falls_back(cap, "itunes", "deezer", p(), json!({"query": "justice"})).await;
}

#[tokio::test]
async fn music_search_answers_in_one_shape_for_every_kind() {
    for kind in ["track", "album", "artist"] {
        assert_same_shape(
            "music.search",
            &["itunes", "deezer", "musicbrainz"],
            json!({"query": "daft punk", "type": kind}),
        )
        .await;
    }
}

#[tokio::test]
async fn video_search_falls_back_in_every_error_class() {
    let cap = "video.search";
    let p = || json!({"query": "apollo 11"});
    assert_falls_back(cap, p(), transient("youtube"), "internet-archive").await;
    assert_falls_back(cap, p(), rate_limited("youtube"), "dailymotion").await;
    assert_falls_back(cap, p(), malformed("youtube"), "internet-archive").await;
    let quota = json!({"error": {"code": 403, "message": "The request cannot be completed because you have exceeded your quota.", "errors": [{"reason": "quotaExceeded", "domain": "youtube.quota"}]}});
    assert_falls_back(
        cap,
        p(),
        replies("youtube", 403, quota, "quota_exhausted"),
        "dailymotion",
    )
    .await;
    let bad_key = json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "errors": [{"reason": "badRequest"}], "status": "INVALID_ARGUMENT"}});
    assert_falls_back(
        cap,
        p(),
        replies("youtube", 400, bad_key, "auth"),
        "internet-archive",
    )
    .await;
    let solr = json!({"responseHeader": {"status": 400}, "error": {"msg": "Cannot parse query", "code": 400}});
    assert_falls_back(
        cap,
        p(),
        replies("internet-archive", 200, solr, "invalid_request"),
        "dailymotion",
    )
    .await;
}

#[tokio::test]
async fn video_search_answers_in_one_shape_and_youtube_chains_two_requests() {
    assert_same_shape(
        "video.search",
        &["internet-archive", "dailymotion", "youtube"],
        json!({"query": "apollo 11"}),
    )
    .await;

    let emulator = emulator().await;
    let clock = clock();
    let client = client(
        &emulator,
        &clock,
        &chain_config("video.search", &["youtube"]),
        KEYS,
    );
    client
        .call("video.search", json!({"query": "apollo 11"}))
        .await
        .unwrap();
    let videos = &emulator.requests_to("/youtube/youtube/v3/videos")[0];
    assert_eq!(videos.query_param("id"), Some("S9HdPi9Ikhk,cwZb2mqId0A"));
    for request in emulator.requests_to("/youtube/*") {
        assert_eq!(request.header("x-goog-api-key"), Some("youtube-test-key"));
        assert_eq!(request.query_param("key"), None);
    }
}

// ---------------------------------------------------------------- no keys

#[tokio::test]
async fn with_no_keys_every_capability_of_the_group_answers() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, "", &[]);
    let cases = [
        ("medical.drug_label", json!({"name": "ibuprofen"})),
        (
            "medical.literature_search",
            json!({"query": "malaria vaccine"}),
        ),
        ("medical.clinical_trials", json!({"condition": "malaria"})),
        ("entertainment.movie_search", json!({"query": "terminator"})),
        ("tv.show_search", json!({"query": "breaking bad"})),
        ("books.search", json!({"query": "dune"})),
        ("music.search", json!({"query": "daft punk"})),
        ("video.search", json!({"query": "apollo 11"})),
    ];
    for (capability, params) in cases {
        let chain = client.chain(capability.parse::<CapabilityId>().unwrap());
        let reply = client
            .call(capability, params)
            .await
            .unwrap_or_else(|e| panic!("{capability} without keys: {e}"));
        assert_eq!(
            reply.provider, chain[0],
            "{capability}: the first keyless provider answers"
        );
        assert!(
            polyrelay::internal::find_provider(reply.provider)
                .unwrap()
                .info()
                .is_keyless(),
            "{capability}"
        );
        let data = reply.data().to_json();
        let results = data
            .get("results")
            .or(data.get("labels"))
            .and_then(Value::as_array);
        assert!(
            results.is_some_and(|r| !r.is_empty()),
            "{capability}: {data}"
        );
    }
}

#[tokio::test]
async fn default_chains_put_keyless_providers_first() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, "", &[]);
    let expected: [(&str, &[&str]); 8] = [
        ("medical.drug_label", &["openfda", "dailymed", "rxnav"]),
        (
            "medical.literature_search",
            &["pubmed", "europepmc", "openalex"],
        ),
        (
            "medical.clinical_trials",
            &["clinicaltrials-gov", "europepmc"],
        ),
        ("entertainment.movie_search", &["itunes", "tmdb", "omdb"]),
        ("tv.show_search", &["tvmaze", "itunes", "tmdb", "omdb"]),
        (
            "books.search",
            &["openlibrary", "gutendex", "google-books", "itunes"],
        ),
        ("music.search", &["itunes", "deezer", "musicbrainz"]),
        (
            "video.search",
            &["internet-archive", "dailymotion", "youtube"],
        ),
    ];
    for (capability, chain) in expected {
        let id: CapabilityId = capability.parse().unwrap();
        assert_eq!(client.chain(id), chain, "{capability}");
    }
}
