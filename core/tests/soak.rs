//! A short chaos soak (2 000 calls): random faults of every kind on a
//! four-provider chain while one provider can always answer. Every call is
//! answered, none past its deadline. The long run is the `soak` example.

#[path = "../../examples/rust/soak/chaos.rs"]
mod chaos;

use std::time::Duration;

use chaos::{Phase, World};

async fn soak(world: World, concurrency: usize, calls: u64) {
    let phase = Phase {
        world,
        concurrency,
        calls,
        fault_rate: 0.6,
        seed: 7,
    };
    let report = chaos::run(&phase).await.expect("the soak runs");
    println!("{report}");
    let tally = &report.tally;
    assert_eq!(tally.calls, calls);
    assert_eq!(tally.past_deadline, 0, "{report}");
    assert_eq!(tally.answered, calls, "{report}");
    assert!(
        report.requests >= calls,
        "every call asked a provider: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_healthy_provider_answers_every_call_within_its_deadline() {
    soak(World::OneHealthy, 32, 600).await;
    soak(World::OneHealthy, 1, 400).await;
}

/// Two seconds of changes, before every breaker has opened and benched
/// providers pile up. The long run goes further and still loses about one
/// call in 200 that spans a change (BENCHMARKS.md, chaos soak).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_provider_that_moves_still_answers_every_call_within_its_deadline() {
    let world = World::RotatingHealthy(Duration::from_millis(700));
    soak(world, 32, 600).await;
    soak(world, 1, 400).await;
}
