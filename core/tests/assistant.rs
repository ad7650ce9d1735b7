//! The assistant end to end on the emulator: a scripted model
//! (`emulation::script_chat`) calls polyrelay's capabilities as tools, each
//! through the normal pipeline (a weather provider down → the next one
//! answers, in the step trail); the step, token and cost limits stop a
//! model that keeps calling tools with `Error::LimitReached`; a serialised
//! conversation resumes; an unknown tool or invalid arguments reach the
//! model as an error result without any network call; and the streamed
//! variant yields tool progress, then the answer's text.

mod common;

use common::*;
use polyrelay::assistant::{Assistant, AssistantEvent, Conversation, Limit, Limits};
use polyrelay::capability::CapabilityId;
use polyrelay::emulation::script_chat;
use polyrelay::{Error, ErrorKind};
use serde_json::{json, Value};

/// The model is OpenAI's; the weather chain has a known order.
const CONFIG: &str = r#"
[capabilities."llm.chat"]
chain = ["openai"]
[capabilities."weather.current"]
chain = ["open-meteo", "met-norway", "wttr-in"]
[capabilities."finance.fx_rates"]
chain = ["frankfurter"]
"#;

const CHAT: &str = "/openai/v1/chat/completions";

fn oslo_weather() -> Value {
    json!({"name": "weather_current", "arguments": {"lat": 59.91, "lon": 10.75}})
}

fn eur_nok() -> Value {
    json!({"name": "finance_fx_rates", "arguments": {"base": "EUR", "symbols": ["NOK"]}})
}

const ANSWER: &str = "Oslo is cloudy at 3 °C, and 1 EUR buys 11.75 NOK.";

/// Weather and FX in one turn, then the answer.
fn oslo_script() -> Value {
    json!([
        {"tool_calls": [oslo_weather(), eur_nok()]},
        {"text": ANSWER},
    ])
}

/// The JSON bodies of the chat requests the model received.
fn chat_bodies(emulator: &Emulator) -> Vec<Value> {
    emulator
        .requests_to(CHAT)
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// The `tool` messages of a chat request body, by call id.
fn tool_results(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap().to_string(),
                m["content"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn two_tools_answer_through_the_pipeline_and_the_weather_call_falls_back() {
    let emulator = emulator().await;
    script_chat(&emulator, "openai", "gpt-4.1", &oslo_script()).unwrap();
    // The first weather provider is down.
    emulator.fault_always("/open-meteo/*", Fault::status(503));
    let client = client(&emulator, &clock(), CONFIG, LLM_KEYS);
    let reply = Assistant::new(&client)
        .ask("What is the weather in Oslo and the EUR→NOK rate?", None)
        .await
        .unwrap();

    assert_eq!(reply.text, ANSWER);
    assert!(reply.cost_usd > 0.0, "gpt-4.1 is priced");
    assert_eq!(reply.steps.len(), 2, "a tool turn, then the answer");
    let step = &reply.steps[0];
    assert_eq!(step.provider, "openai");
    assert_eq!(step.tools.len(), 2);
    let weather = &step.tools[0];
    assert_eq!(weather.capability, Some(CapabilityId::WeatherCurrent));
    assert_eq!(weather.error, None);
    assert_eq!(weather.provider, Some("met-norway"), "{weather:?}");
    assert_eq!(weather.attempts[0].provider, "open-meteo");
    assert!(!weather.attempts[0].succeeded());
    assert!(emulator.hits("/open-meteo/*") > 0, "open-meteo was asked");
    let fx = &step.tools[1];
    assert_eq!(fx.capability, Some(CapabilityId::FxRates));
    assert_eq!(fx.provider, Some("frankfurter"));
    assert!(reply.steps[1].tools.is_empty());

    // The model saw both results as the normalised data.
    let bodies = chat_bodies(&emulator);
    assert_eq!(bodies.len(), 2);
    let results = tool_results(&bodies[1]);
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].0, "call_0_0");
    let weather_data: Value = serde_json::from_str(&results[0].1).unwrap();
    assert!(weather_data["temperature_c"].is_number(), "{weather_data}");
    let fx_data: Value = serde_json::from_str(&results[1].1).unwrap();
    assert!(fx_data["rates"]["NOK"].is_number(), "{fx_data}");

    // The tools were declared with the capabilities' published schemas.
    let declared = bodies[0]["tools"].as_array().unwrap();
    let weather_tool = declared
        .iter()
        .find(|t| t["function"]["name"] == "weather_current")
        .unwrap();
    let mut schema = CapabilityId::WeatherCurrent.parameter_schema();
    schema.as_object_mut().unwrap().remove("$schema");
    schema.as_object_mut().unwrap().remove("title");
    assert_eq!(weather_tool["function"]["parameters"], schema);
    assert_eq!(declared.len(), polyrelay::assistant::DEFAULT_TOOLS.len());

    // The conversation: question, the calls, two results, the answer.
    let roles: Vec<&str> = reply
        .conversation
        .messages
        .iter()
        .map(|m| m.role.as_str())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "tool", "assistant"]);

    // The same question again: the cache answers the turns and the tools,
    // as it does any call, and nothing is spent.
    let again = Assistant::new(&client)
        .ask("What is the weather in Oslo and the EUR→NOK rate?", None)
        .await
        .unwrap();
    assert_eq!(again.text, ANSWER);
    assert!(again.steps.iter().all(|s| s.cached));
    assert!(again.steps[0].tools.iter().all(|t| t.cached));
    assert_eq!(again.cost_usd, 0.0);
    assert_eq!(chat_bodies(&emulator).len(), 2, "no new LLM request");
}

/// A model that calls a tool forever.
fn looping_script(input_tokens: u64, output_tokens: u64) -> Value {
    json!([{
        "tool_calls": [{"name": "crypto_price", "arguments": {"assets": ["BTC"], "vs_currencies": ["USD"]}}],
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }])
}

fn limit_of(error: Error) -> (Limit, Conversation, usize) {
    assert_eq!(error.kind(), ErrorKind::LimitReached);
    match error {
        Error::LimitReached {
            limit,
            conversation,
            steps,
            ..
        } => {
            let limit = [Limit::Steps, Limit::Tokens, Limit::CostUsd]
                .into_iter()
                .find(|l| l.as_str() == limit)
                .unwrap();
            let conversation = Conversation::from_json(*conversation).unwrap();
            (limit, conversation, steps.as_array().unwrap().len())
        }
        other => panic!("expected LimitReached, got {other:?}"),
    }
}

#[tokio::test]
async fn the_step_limit_stops_a_model_that_keeps_calling_tools() {
    let emulator = emulator().await;
    script_chat(&emulator, "openai", "gpt-4.1", &looping_script(10, 5)).unwrap();
    let client = client(&emulator, &clock(), CONFIG, LLM_KEYS);
    let assistant = Assistant::new(&client)
        .with_limits(Limits {
            max_steps: 3,
            ..Limits::default()
        })
        .unwrap();
    let error = assistant.ask("Bitcoin?", None).await.unwrap_err();
    assert!(error.to_string().contains("max_steps"), "{error}");
    let (limit, conversation, steps) = limit_of(error);
    assert_eq!(limit, Limit::Steps);
    assert_eq!(steps, 3);
    assert_eq!(emulator.hits(CHAT), 3, "no fourth LLM turn");
    // The question and three rounds of call and result.
    assert_eq!(conversation.messages.len(), 1 + 3 * 2);

    // The conversation so far continues: the model now answers.
    script_chat(
        &emulator,
        "openai",
        "gpt-4.1",
        &json!([looping_script(10, 5)[0], {"text": "Bitcoin is up."}]),
    )
    .unwrap();
    let resumed = assistant
        .ask("Just tell me what you found.", Some(conversation))
        .await
        .unwrap();
    assert_eq!(resumed.text, "Bitcoin is up.");
    assert_eq!(resumed.conversation.messages.len(), 7 + 2);
}

#[tokio::test]
async fn the_cost_and_token_limits_stop_a_model_that_keeps_calling_tools() {
    let emulator = emulator().await;
    // gpt-4.1 at $2 in and $8 out a million: 1000 in and 500 out cost
    // 0.002 + 0.004 = 0.006 USD a turn, 1500 tokens.
    script_chat(&emulator, "openai", "gpt-4.1", &looping_script(1000, 500)).unwrap();
    let client = client(&emulator, &clock(), CONFIG, LLM_KEYS);
    let cost_capped = Assistant::new(&client)
        .with_limits(Limits {
            max_steps: 100,
            max_tokens: None,
            max_cost_usd: Some(0.01),
        })
        .unwrap();
    let error = cost_capped.ask("Bitcoin?", None).await.unwrap_err();
    let (limit, _, steps) = limit_of(error);
    assert_eq!(limit, Limit::CostUsd);
    assert_eq!(steps, 2, "0.006 after one turn, 0.012 ≥ 0.01 after two");
    assert_eq!(emulator.hits(CHAT), 2);

    emulator.clear_log();
    let token_capped = Assistant::new(&client)
        .with_limits(Limits {
            max_steps: 100,
            max_tokens: Some(4000),
            max_cost_usd: None,
        })
        .unwrap();
    let error = token_capped.ask("Ether?", None).await.unwrap_err();
    let (limit, _, steps) = limit_of(error);
    assert_eq!(limit, Limit::Tokens);
    assert_eq!(steps, 3, "1500, 3000, then 4500 ≥ 4000 tokens");

    // A limit that cannot work is refused.
    let zero = Assistant::new(&client).with_limits(Limits {
        max_steps: 0,
        ..Limits::default()
    });
    assert_eq!(zero.unwrap_err().kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn a_serialised_conversation_resumes() {
    let emulator = emulator().await;
    let script = json!([
        {"tool_calls": [oslo_weather()]},
        {"text": "It is 3 °C in Oslo."},
        {"text": "Tomorrow looks the same."},
    ]);
    script_chat(&emulator, "openai", "gpt-4.1", &script).unwrap();
    let client = client(&emulator, &clock(), CONFIG, LLM_KEYS);
    let assistant = Assistant::new(&client);
    let first = assistant.ask("Weather in Oslo?", None).await.unwrap();
    assert_eq!(first.text, "It is 3 °C in Oslo.");

    let saved = serde_json::to_string(&first.conversation).unwrap();
    let loaded: Conversation = serde_json::from_str(&saved).unwrap();
    assert_eq!(loaded, first.conversation);
    let second = assistant.ask("And tomorrow?", Some(loaded)).await.unwrap();
    assert_eq!(second.text, "Tomorrow looks the same.");
    assert_eq!(second.steps.len(), 1);
    // The model was sent the whole history.
    let last = chat_bodies(&emulator).pop().unwrap();
    let contents: Vec<&str> = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] != "system" && m["role"] != "tool")
        .map(|m| m["content"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        contents,
        [
            "Weather in Oslo?",
            "",
            "It is 3 °C in Oslo.",
            "And tomorrow?"
        ]
    );
    assert_eq!(second.conversation.messages.len(), 6);

    // A conversation that is not one is refused before anything is sent.
    let before = emulator.hits(CHAT);
    let bad = Conversation::from_json(json!({"messages": [{"role": "robot", "content": "x"}]}));
    assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidRequest);
    assert_eq!(
        assistant.ask("  ", None).await.unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    assert_eq!(emulator.hits(CHAT), before);
}

#[tokio::test]
async fn an_unknown_tool_and_invalid_arguments_are_error_results_without_a_network_call() {
    let emulator = emulator().await;
    let script = json!([
        {"tool_calls": [
            {"name": "launch_rockets", "arguments": {}},
            {"name": "weather_current", "arguments": {"lat": "north", "lon": 10.75}},
            {"name": "weather_current", "arguments": "{not json"},
        ]},
        {"text": "Sorry, I could not get that."},
    ]);
    script_chat(&emulator, "openai", "gpt-4.1", &script).unwrap();
    let client = client(&emulator, &clock(), CONFIG, LLM_KEYS);
    let reply = Assistant::new(&client)
        .ask("Weather in Oslo?", None)
        .await
        .unwrap();
    assert_eq!(reply.text, "Sorry, I could not get that.");
    let runs = &reply.steps[0].tools;
    assert_eq!(runs.len(), 3);
    for run in runs {
        assert_eq!(run.error_kind, Some(ErrorKind::InvalidRequest), "{run:?}");
        assert_eq!(run.provider, None);
        assert!(run.attempts.is_empty());
    }
    assert_eq!(runs[0].capability, None);
    assert_eq!(emulator.hits("/open-meteo/*"), 0);
    assert_eq!(emulator.hits("/met-norway/*"), 0);
    assert_eq!(emulator.hits("/wttr-in/*"), 0);

    let results = tool_results(&chat_bodies(&emulator)[1]);
    assert!(
        results[0].1.starts_with("error: unknown tool"),
        "{}",
        results[0].1
    );
    assert!(results[0].1.contains("weather_current"), "lists the tools");
    assert!(results[1].1.contains("`lat`"), "{}", results[1].1);
    assert!(results[2].1.contains("arguments"), "{}", results[2].1);
}

#[tokio::test]
async fn the_streamed_answer_yields_tool_progress_then_text() {
    let emulator = emulator().await;
    script_chat(&emulator, "openai", "gpt-4.1", &oslo_script()).unwrap();
    let client = client(&emulator, &clock(), CONFIG, LLM_KEYS);
    let mut stream = Assistant::new(&client)
        .ask_stream("What is the weather in Oslo and the EUR→NOK rate?", None)
        .unwrap();
    let mut tools = Vec::new();
    let mut text = String::new();
    let mut texts = 0;
    let mut done = None;
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            AssistantEvent::Tool(run) => {
                assert!(text.is_empty(), "tool progress comes before the answer");
                tools.push(run.name.clone());
            }
            AssistantEvent::Text(chunk) => {
                text.push_str(&chunk);
                texts += 1;
            }
            AssistantEvent::Done(reply) => done = Some(reply),
            _ => {}
        }
    }
    assert_eq!(tools, ["weather_current", "finance_fx_rates"]);
    assert_eq!(text, ANSWER);
    assert!(texts > 1, "the answer came in pieces");
    let reply = done.expect("a Done event");
    assert_eq!(reply.text, ANSWER);
    assert_eq!(reply.steps.len(), 2);
    // Every turn was streamed.
    for body in chat_bodies(&emulator) {
        assert_eq!(body["stream"], true);
    }
}

#[tokio::test]
async fn tools_are_named_after_capabilities_and_configurable() {
    let emulator = emulator().await;
    let client = client(&emulator, &clock(), CONFIG, LLM_KEYS);
    let all = Assistant::new(&client);
    for tool in all.tools() {
        assert_eq!(tool.name, tool.capability.as_str().replace('.', "_"));
        assert!(tool
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    }
    let two = all
        .clone()
        .with_tools(&["weather.current", "finance_fx_rates"])
        .unwrap();
    let names: Vec<&str> = two.tools().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["weather_current", "finance_fx_rates"]);
    for bad in [&["llm.chat"][..], &["weather.now"][..], &[][..]] {
        let error = all.clone().with_tools(bad).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{bad:?}");
    }
}

/// The tool results a chat request carries, in `provider`'s wire format:
/// each as the call it answers (its id, or for Gemini the tool's name)
/// and the result's data.
fn results_in_format(provider: &str, body: &Value) -> Vec<(String, Value)> {
    let text = |content: &Value| serde_json::from_str(content.as_str().unwrap()).unwrap();
    let list = |field: &str| body[field].as_array().unwrap().clone();
    match provider {
        // A user turn of `tool_result` blocks.
        "anthropic" => list("messages")
            .iter()
            .filter(|m| m["role"] == "user" && m["content"].is_array())
            .flat_map(|m| m["content"].as_array().unwrap().clone())
            .filter(|b| b["type"] == "tool_result")
            .map(|b| {
                (
                    b["tool_use_id"].as_str().unwrap().into(),
                    text(&b["content"]),
                )
            })
            .collect(),
        // A user content of `functionResponse` parts, by the tool's name.
        "gemini" => list("contents")
            .iter()
            .filter(|c| c["role"] == "user")
            .flat_map(|c| c["parts"].as_array().unwrap().clone())
            .filter_map(|p| p.get("functionResponse").cloned())
            .map(|r| (r["name"].as_str().unwrap().into(), r["response"].clone()))
            .collect(),
        // `tool` messages naming the tool.
        "ollama" => list("messages")
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| (m["tool_name"].as_str().unwrap().into(), text(&m["content"])))
            .collect(),
        // `tool` messages with the call's id (OpenAI's format, Cohere's).
        _ => list("messages")
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| {
                (
                    m["tool_call_id"].as_str().unwrap().into(),
                    text(&m["content"]),
                )
            })
            .collect(),
    }
}

/// The names of the tools a chat request declares, in `provider`'s format.
fn declared_in_format(provider: &str, body: &Value) -> Vec<String> {
    let names = |tools: &Value, at: &str| -> Vec<String> {
        tools
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.pointer(at).and_then(Value::as_str).unwrap().to_string())
            .collect()
    };
    match provider {
        "anthropic" => names(&body["tools"], "/name"),
        "gemini" => names(&body["tools"][0]["functionDeclarations"], "/name"),
        _ => names(&body["tools"], "/function/name"),
    }
}

/// The call ids (or, for Gemini, tool names) a provider's second request
/// gives the two results.
fn result_keys(provider: &str) -> [&'static str; 2] {
    match provider {
        "anthropic" => ["toolu_0_0", "toolu_0_1"],
        "gemini" | "ollama" => ["weather_current", "finance_fx_rates"],
        _ => ["call_0_0", "call_0_1"],
    }
}

/// The weather-and-FX conversation on a model scripted in `provider`'s
/// own wire format (`model`: the one its requests ask for), asked plainly
/// and then streamed: the same tool calls, the same answer, and requests
/// in that provider's format.
async fn two_tools_over(provider: &str, model: &str) {
    let config = CONFIG.replace(
        r#"chain = ["openai"]"#,
        &format!(r#"chain = ["{provider}"]"#),
    );
    let question = "What is the weather in Oslo and the EUR→NOK rate?";

    // Plain.
    let emulator = emulator().await;
    let path = script_chat(&emulator, provider, model, &oslo_script()).unwrap();
    let client = client(&emulator, &clock(), &config, LLM_KEYS);
    let reply = Assistant::new(&client).ask(question, None).await.unwrap();
    assert_eq!(reply.text, ANSWER, "{provider}");
    assert_eq!(reply.steps.len(), 2, "{provider}");
    assert_eq!(reply.steps[0].provider, provider);
    let tools: Vec<(&str, Option<&str>)> = reply.steps[0]
        .tools
        .iter()
        .map(|t| (t.name.as_str(), t.provider))
        .collect();
    assert_eq!(
        tools,
        [
            ("weather_current", Some("open-meteo")),
            ("finance_fx_rates", Some("frankfurter"))
        ],
        "{provider}"
    );
    assert!(reply.steps[1].tools.is_empty());

    let requests = emulator.requests_to(&path);
    assert_eq!(
        requests.len(),
        2,
        "{provider}: a tool turn, then the answer"
    );
    let bodies: Vec<Value> = requests
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let declared = declared_in_format(provider, &bodies[0]);
    assert_eq!(declared.len(), polyrelay::assistant::DEFAULT_TOOLS.len());
    assert!(declared.iter().any(|name| name == "weather_current"));
    assert!(results_in_format(provider, &bodies[0]).is_empty());
    let results = results_in_format(provider, &bodies[1]);
    let keys: Vec<&str> = results.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(keys, result_keys(provider), "{provider}: {}", bodies[1]);
    assert!(
        results[0].1["temperature_c"].is_number(),
        "{}",
        results[0].1
    );
    assert!(results[1].1["rates"]["NOK"].is_number(), "{}", results[1].1);

    // Streamed, on a fresh emulator and client (nothing cached).
    let emulator = common::emulator().await;
    let path = script_chat(&emulator, provider, model, &oslo_script()).unwrap();
    let client = common::client(&emulator, &clock(), &config, LLM_KEYS);
    let mut stream = Assistant::new(&client).ask_stream(question, None).unwrap();
    let (mut tools, mut text, mut texts, mut done) = (Vec::new(), String::new(), 0, None);
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            AssistantEvent::Tool(run) => {
                assert_eq!(run.error, None, "{provider}: {run:?}");
                tools.push(run.name.clone());
            }
            AssistantEvent::Text(chunk) => {
                text.push_str(&chunk);
                texts += 1;
            }
            AssistantEvent::Done(reply) => done = Some(reply),
            _ => {}
        }
    }
    assert_eq!(tools, ["weather_current", "finance_fx_rates"], "{provider}");
    assert_eq!(text, ANSWER, "{provider}");
    assert!(texts > 1, "{provider}: the answer came in pieces");
    assert_eq!(done.expect("a Done event").steps.len(), 2);
    let requests = emulator.requests_to(&path);
    assert_eq!(requests.len(), 2, "{provider}");
    for request in &requests {
        let streamed = if provider == "gemini" {
            request.path.ends_with(":streamGenerateContent")
                && request.query.as_deref() == Some("alt=sse")
        } else {
            serde_json::from_slice::<Value>(&request.body).unwrap()["stream"] == true
        };
        assert!(streamed, "{provider}: {}", request.path);
    }
    let second: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(results_in_format(provider, &second).len(), 2, "{provider}");
}

#[tokio::test]
async fn two_tools_over_a_scripted_openai_model() {
    two_tools_over("openai", "gpt-4.1").await;
}

#[tokio::test]
async fn two_tools_over_a_scripted_anthropic_model() {
    two_tools_over("anthropic", "claude-haiku-4-5").await;
}

#[tokio::test]
async fn two_tools_over_a_scripted_gemini_model() {
    two_tools_over("gemini", "gemini-2.5-flash").await;
}

#[tokio::test]
async fn two_tools_over_a_scripted_cohere_model() {
    two_tools_over("cohere", "command-r-08-2024").await;
}

#[tokio::test]
async fn two_tools_over_a_scripted_ollama_model() {
    two_tools_over("ollama", "llama3.2").await;
}

#[tokio::test]
async fn a_script_is_refused_for_a_provider_without_chat_or_a_bad_gemini_model() {
    let emulator = emulator().await;
    let script = oslo_script();
    let error = script_chat(&emulator, "open-meteo", "x", &script).unwrap_err();
    assert!(error.contains("open-meteo"), "{error}");
    let error = script_chat(&emulator, "gemini", "../x", &script).unwrap_err();
    assert!(error.contains("Gemini model"), "{error}");
    let error = script_chat(&emulator, "anthropic", "c", &json!([{}])).unwrap_err();
    assert_eq!(error, "script[0]: a turn needs `text` or `tool_calls`");
}
