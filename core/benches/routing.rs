//! What a model group's routing decision costs per call: finding the group
//! a call's `model` names and ordering its deployments by the group's
//! strategy (the candidates' in-flight counts, latencies and prices read,
//! the token estimate for `cost`), for a group of 20 deployments under
//! every strategy, beside the plain chain's decision (a call naming no
//! group). No HTTP: the decision is all that is timed.
//!
//! Run: `cargo bench -p polyrelay --bench routing` (add `-- --quick` for a
//! short run).

use std::hint::black_box;
use std::time::Instant;

use polyrelay::capability::Request;
use polyrelay::config::Config;
use polyrelay::internal::routing_decision;
use polyrelay::Client;
use serde_json::json;

const DEPLOYMENTS: usize = 20;
const STRATEGIES: &[&str] = &[
    "ordered",
    "weighted",
    "least_busy",
    "lowest_latency",
    "cost",
];
/// Target per decision.
const TARGET_NS: f64 = 5_000.0;

fn config() -> String {
    let providers = [
        "openai",
        "groq",
        "mistral",
        "together",
        "deepseek",
        "openrouter",
    ];
    let mut toml = String::from("[cache]\nenabled = false\n");
    let names: Vec<String> = (0..DEPLOYMENTS).map(|i| format!("d{i:02}")).collect();
    for (i, name) in names.iter().enumerate() {
        toml += &format!(
            "[deployments.{name}]\nprovider = \"{}\"\nmodel = \"model-{i}\"\nprice = {{ input_per_mtok = {}, output_per_mtok = {} }}\n",
            providers[i % providers.len()],
            0.1 + (i * 7 % DEPLOYMENTS) as f64 * 0.05,
            0.4 + (i * 3 % DEPLOYMENTS) as f64 * 0.1,
        );
    }
    for strategy in STRATEGIES {
        toml +=
            &format!("[groups.{strategy}]\ndeployments = {names:?}\nstrategy = \"{strategy}\"\n");
        if *strategy == "weighted" {
            let weights: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{n} = {}", 1 + i % 5))
                .collect();
            toml += &format!("weights = {{ {} }}\n", weights.join(", "));
        }
    }
    toml
}

fn chat(model: Option<&str>) -> Request {
    let mut params = json!({
        "messages": [
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "What is the capital of France, and why is it there?"},
        ],
        "max_tokens": 200,
    });
    if let Some(model) = model {
        params["model"] = json!(model);
    }
    Request::parse("llm.chat", params).expect("a valid request")
}

/// Median nanoseconds per decision over `runs` runs of `calls` decisions.
fn time(client: &Client, request: &Request, runs: usize, calls: u32) -> f64 {
    let mut per_call: Vec<f64> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..calls {
                let walked = routing_decision(client, black_box(request)).expect("routes");
                black_box(walked);
            }
            started.elapsed().as_nanos() as f64 / f64::from(calls)
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    per_call[runs / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (runs, calls) = if quick { (5, 20_000) } else { (15, 200_000) };
    let config = Config::from_toml_str(&config()).expect("the benchmark's configuration parses");
    let client = Client::builder()
        .config(config)
        .env_vars(Vec::<(String, String)>::new())
        .build()
        .expect("the client builds");

    let plain = chat(None);
    assert!(routing_decision(&client, &plain).expect("routes") > 0);
    // Warm up.
    time(&client, &plain, 3, calls / 10);
    let plain_ns = time(&client, &plain, runs, calls);
    let model_ns = time(&client, &chat(Some("gpt-4o-mini")), runs, calls);

    println!(
        "polyrelay routing benchmark: a group of {DEPLOYMENTS} deployments, median of {runs} runs of {calls} decisions\n"
    );
    println!("| decision | ns per call | target |");
    println!("|---|---|---|");
    println!("| plain chain (no model) | {plain_ns:.0} | |");
    println!("| plain chain (a model that is no group) | {model_ns:.0} | |");
    let mut all_met = true;
    for strategy in STRATEGIES {
        let request = chat(Some(strategy));
        assert_eq!(
            routing_decision(&client, &request).expect("routes"),
            DEPLOYMENTS,
            "{strategy}"
        );
        let ns = time(&client, &request, runs, calls);
        let met = ns <= TARGET_NS;
        all_met &= met;
        println!(
            "| group of {DEPLOYMENTS}, {strategy} | {ns:.0} | ≤ 5 µs: {} |",
            if met { "PASS" } else { "MISS" }
        );
    }
    println!(
        "\nevery strategy within 5 µs per call: {}",
        if all_met { "PASS" } else { "MISS" }
    );
}
