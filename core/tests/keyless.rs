//! A fresh install with no keys serves every capability that has a keyless
//! provider: here, through the emulator, with an empty environment.

mod common;

use common::*;
use polyrelay::CapabilityId;

#[tokio::test]
async fn every_capability_with_a_keyless_provider_answers_without_any_key() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, "", &[]);
    let mut served = 0;
    for capability in CapabilityId::ALL {
        let keyless = client.chain(*capability).iter().any(|id| {
            polyrelay::internal::find_provider(id).is_some_and(|p| p.info().is_keyless())
        });
        if !keyless {
            continue;
        }
        let reply = client
            .call(capability.as_str(), example_params(*capability))
            .await
            .unwrap_or_else(|e| panic!("{capability}: {e}"));
        let provider = polyrelay::internal::find_provider(reply.provider).unwrap();
        assert!(
            provider.info().is_keyless(),
            "{capability} answered by keyed {}",
            reply.provider
        );
        served += 1;
    }
    assert!(served >= 19, "only {served} capabilities served");
}
