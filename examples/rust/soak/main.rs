//! The chaos soak, and the hedging benchmark.
//!
//! Soak: a `weather.current` chain of four providers on the emulator, cache
//! off, random faults of every kind (5xx, 429 with `Retry-After`, hang,
//! reset, malformed, oversized, slow) on every provider but the healthy one.
//! World (a): the last provider is always healthy; world (b): the healthy
//! provider moves along the chain every few seconds. Each at concurrency 32
//! and 1. Every call must be answered, none past its deadline.
//!
//! ```sh
//! cargo run --release -p polyrelay --example soak                  # 4 x 25 000 calls
//! cargo run --release -p polyrelay --example soak -- --quick       # 4 x 2 000 calls
//! cargo run --release -p polyrelay --example soak -- --calls 5000 --seed 9 --fault-rate 0.5 --rotate-every 2s
//! cargo run --release -p polyrelay --example soak -- --world b --concurrency 32   # one phase
//! cargo run --release -p polyrelay --example soak -- --failures failed.txt   # every failed call's trail
//! cargo run --release -p polyrelay --example soak -- --hedge-bench [--calls 4000] [--concurrency 8]
//! ```
//!
//! Exits with status 1 when a target is missed.

mod chaos;
mod hedge;

use std::time::Duration;

use chaos::{Phase, World};

struct Options {
    calls: Option<u64>,
    quick: bool,
    seed: u64,
    fault_rate: f64,
    rotate_every: Duration,
    concurrency: Option<usize>,
    world: Option<char>,
    failures: Option<std::path::PathBuf>,
    hedge_bench: bool,
}

fn usage() -> String {
    "usage: soak [--calls N] [--quick] [--seed S] [--fault-rate F] [--rotate-every DURATION]\n            \
     [--world a|b] [--concurrency C] [--failures FILE]\n       \
     soak --hedge-bench [--calls N] [--concurrency C] [--quick] [--seed S]"
        .to_string()
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        calls: None,
        quick: false,
        seed: 1,
        fault_rate: 0.6,
        rotate_every: Duration::from_secs(3),
        concurrency: None,
        world: None,
        failures: None,
        hedge_bench: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{}", usage()))
        };
        let bad = |name: &str, e: &dyn std::fmt::Display| format!("{name}: {e}\n{}", usage());
        match arg.as_str() {
            "--calls" => {
                options.calls = Some(value("--calls")?.parse().map_err(|e| bad("--calls", &e))?)
            }
            "--quick" => options.quick = true,
            "--seed" => options.seed = value("--seed")?.parse().map_err(|e| bad("--seed", &e))?,
            "--fault-rate" => {
                options.fault_rate = value("--fault-rate")?
                    .parse()
                    .map_err(|e| bad("--fault-rate", &e))?;
                if !(0.0..=1.0).contains(&options.fault_rate) {
                    return Err(bad("--fault-rate", &"must be between 0 and 1"));
                }
            }
            "--rotate-every" => {
                options.rotate_every =
                    polyrelay::internal::duration::parse(&value("--rotate-every")?)
                        .map_err(|e| bad("--rotate-every", &e))?
            }
            "--concurrency" => {
                options.concurrency = Some(
                    value("--concurrency")?
                        .parse()
                        .map_err(|e| bad("--concurrency", &e))?,
                )
            }
            "--world" => {
                options.world = match value("--world")?.as_str() {
                    "a" => Some('a'),
                    "b" => Some('b'),
                    other => return Err(bad("--world", &format!("{other} is not a or b"))),
                }
            }
            "--failures" => options.failures = Some(value("--failures")?.into()),
            "--hedge-bench" => options.hedge_bench = true,
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let met = if options.hedge_bench {
        let bench = hedge::HedgeBench {
            calls: options
                .calls
                .unwrap_or(if options.quick { 500 } else { 4_000 }),
            concurrency: options.concurrency.unwrap_or(8),
            slow_share: 0.05,
            slow_by: Duration::from_secs(1),
            seed: options.seed,
        };
        hedge::run(&bench).await?
    } else {
        soak(&options).await?
    };
    if !met {
        std::process::exit(1);
    }
    Ok(())
}

/// Runs the four phases and prints each as it ends; whether every call was
/// answered within its deadline.
async fn soak(options: &Options) -> Result<bool, Box<dyn std::error::Error>> {
    let calls = options
        .calls
        .unwrap_or(if options.quick { 2_000 } else { 25_000 });
    println!(
        "chaos soak: chain {:?}, deadline {} s, fault rate {} on the unhealthy providers, seed {}",
        chaos::CHAIN,
        chaos::DEADLINE.as_secs(),
        options.fault_rate,
        options.seed,
    );
    let (mut total, mut answered, mut past_deadline) = (0, 0, 0);
    let mut failures = Vec::new();
    let concurrencies = match options.concurrency {
        Some(concurrency) => vec![concurrency],
        None => vec![32, 1],
    };
    let worlds = [
        ('a', World::OneHealthy),
        ('b', World::RotatingHealthy(options.rotate_every)),
    ];
    for concurrency in concurrencies {
        for (_, world) in worlds
            .iter()
            .filter(|(name, _)| options.world.is_none_or(|only| only == *name))
        {
            let world = *world;
            let phase = Phase {
                world,
                concurrency,
                calls,
                fault_rate: options.fault_rate,
                seed: options.seed,
            };
            let report = chaos::run(&phase).await?;
            println!("{report}");
            if !report.tally.failures.is_empty() {
                failures.push(format!("== {}", report.title));
                failures.extend(report.tally.failures.iter().cloned());
            }
            total += report.tally.calls;
            answered += report.tally.answered;
            past_deadline += report.tally.past_deadline;
        }
    }
    if let Some(path) = &options.failures {
        std::fs::write(path, failures.join("\n") + "\n")?;
        println!("failed calls written to {}", path.display());
    }
    println!(
        "all phases: {total} calls, {answered} answered, {} failed, {past_deadline} past the deadline",
        total - answered
    );
    Ok(answered == total && past_deadline == 0)
}
