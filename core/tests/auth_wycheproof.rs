//! Wycheproof vectors for the primitives behind the JWS algorithms
//! polyrelay accepts: ECDSA P-256/SHA-256 in the IEEE P1363 (`r || s`) form
//! ES256 uses, Ed25519 (EdDSA), HMAC-SHA-256/384/512 (HS*) and RSASSA-PKCS1
//! v1.5 with SHA-256 (RS256).
//!
//! The vectors come from the `wycheproof` crate (a dev-dependency; it ships
//! the JSON files of C2SP/wycheproof, Apache-2.0, so nothing is fetched at
//! test time). Their messages are arbitrary bytes, not JWS signing inputs,
//! so they cannot pass through [`polyrelay::auth::Verifier`] whole; each is
//! run through the call the verifier makes for the signature,
//! `jsonwebtoken::crypto::verify`, with the crypto backend and the PEM key
//! loaders `polyrelay::auth::Key` uses, and every key is also loaded with
//! `Key::from_public_pem` (or `Key::hmac`) to show the core accepts it.
//!
//! Every `valid` vector must verify and every `invalid` one must be
//! rejected. `acceptable` vectors may go either way, so they are counted and
//! their outcome printed, not asserted: in these files they are only the RSA
//! signatures whose DigestInfo omits the NULL parameter (flag `MissingNull`,
//! one per key size), which RFC 8017 §9.2 note 2 lets a verifier accept;
//! jsonwebtoken rejects them. HMAC vectors whose tag is truncated (a
//! `tagSize` below the digest) must all be rejected, `valid` or not: a JWS
//! HMAC tag is the full digest (RFC 7518 §3.2).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm as Jwa, DecodingKey};
use polyrelay::auth::{Algorithm, Key};
use wycheproof::TestResult;

/// What ran, so a test can show it did something.
#[derive(Debug, Default)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable: usize,
    acceptable_accepted: usize,
    failures: Vec<String>,
}

impl Tally {
    /// Records one vector: `accepted` is what verification said.
    fn record(&mut self, set: &str, tc_id: usize, expected: &TestResult, accepted: bool) {
        let wrong = match expected {
            TestResult::Valid => {
                self.valid += 1;
                !accepted
            }
            TestResult::Invalid => {
                self.invalid += 1;
                accepted
            }
            TestResult::Acceptable => {
                self.acceptable += 1;
                self.acceptable_accepted += usize::from(accepted);
                false
            }
        };
        if wrong {
            self.failures.push(format!(
                "{set} tcId {tc_id}: expected {expected:?}, accepted={accepted}"
            ));
        }
    }

    /// Fails unless vectors of both outcomes ran and none was misjudged.
    fn assert_clean(&self, what: &str) {
        eprintln!(
            "{what}: {} valid, {} invalid, {} acceptable ({} of them accepted)",
            self.valid, self.invalid, self.acceptable, self.acceptable_accepted
        );
        assert!(
            self.valid > 0 && self.invalid > 0,
            "{what}: too few vectors ran: {self:?}"
        );
        assert!(
            self.failures.is_empty(),
            "{what}: {} misjudged:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

/// jsonwebtoken's verification of `signature` over `message`: what
/// `Verifier` relies on once the key and algorithm are pinned. An error
/// (e.g. a signature of the wrong length) is a rejection.
fn verifies(signature: &[u8], message: &[u8], key: &DecodingKey, alg: Jwa) -> bool {
    jsonwebtoken::crypto::verify(&URL_SAFE_NO_PAD.encode(signature), message, key, alg)
        .unwrap_or(false)
}

#[test]
fn ecdsa_p256_sha256_p1363_vectors_es256() {
    use wycheproof::ecdsa::{TestName, TestSet};
    let set = TestSet::load(TestName::EcdsaSecp256r1Sha256P1363).expect("vectors ship");
    let mut tally = Tally::default();
    for group in &set.test_groups {
        Key::from_public_pem("wycheproof", Algorithm::ES256, group.pem.as_bytes())
            .expect("the core loads the group's P-256 key");
        let key = DecodingKey::from_ec_pem(group.pem.as_bytes()).expect("P-256 public key");
        for test in &group.tests {
            let accepted = verifies(&test.sig, &test.msg, &key, Jwa::ES256);
            tally.record(
                "ecdsa_secp256r1_sha256_p1363",
                test.tc_id,
                &test.result,
                accepted,
            );
        }
    }
    tally.assert_clean("ES256 (ECDSA P-256, P1363)");
}

#[test]
fn ed25519_vectors_eddsa() {
    use wycheproof::eddsa::{TestName, TestSet};
    let set = TestSet::load(TestName::Ed25519).expect("vectors ship");
    let mut tally = Tally::default();
    for group in &set.test_groups {
        Key::from_public_pem("wycheproof", Algorithm::EdDSA, group.pem.as_bytes())
            .expect("the core loads the group's Ed25519 key");
        let key = DecodingKey::from_ed_pem(group.pem.as_bytes()).expect("Ed25519 public key");
        for test in &group.tests {
            let accepted = verifies(&test.sig, &test.msg, &key, Jwa::EdDSA);
            tally.record("ed25519", test.tc_id, &test.result, accepted);
        }
    }
    tally.assert_clean("EdDSA (Ed25519)");
}

#[test]
fn hmac_sha2_vectors_hs256_hs384_hs512_with_truncated_tags_rejected() {
    use wycheproof::mac::{TestName, TestSet};
    let mut truncated_rejected = 0;
    let mut short_keys_refused = 0;
    for (name, alg, jwa, digest_bits) in [
        (TestName::HmacSha256, Algorithm::HS256, Jwa::HS256, 256),
        (TestName::HmacSha384, Algorithm::HS384, Jwa::HS384, 384),
        (TestName::HmacSha512, Algorithm::HS512, Jwa::HS512, 512),
    ] {
        let set = TestSet::load(name).expect("vectors ship");
        let mut tally = Tally::default();
        for group in &set.test_groups {
            let truncated = group.tag_size < digest_bits;
            for test in &group.tests {
                let key = DecodingKey::from_secret(&test.key);
                let accepted = verifies(&test.tag, &test.msg, &key, jwa);
                if truncated {
                    assert!(
                        !accepted,
                        "{alg} tcId {}: a {}-bit tag was accepted",
                        test.tc_id, group.tag_size
                    );
                    truncated_rejected += 1;
                } else {
                    tally.record(alg.as_str(), test.tc_id, &test.result, accepted);
                }
                // The core refuses secrets shorter than the digest up front.
                let configured = Key::hmac("wycheproof", alg, &test.key);
                assert_eq!(
                    configured.is_ok(),
                    test.key.len() * 8 >= digest_bits,
                    "{alg} tcId {}: a {}-byte secret",
                    test.tc_id,
                    test.key.len()
                );
                short_keys_refused += usize::from(configured.is_err());
            }
        }
        tally.assert_clean(alg.as_str());
    }
    eprintln!(
        "HMAC: {truncated_rejected} truncated tags rejected, \
         {short_keys_refused} short secrets refused"
    );
    assert!(truncated_rejected > 0, "no truncated-tag vector ran");
    assert!(short_keys_refused > 0, "no short-secret vector ran");
}

#[test]
fn rsa_pkcs1_v1_5_sha256_vectors_rs256() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    for name in [
        TestName::Rsa2048Sha256,
        TestName::Rsa3072Sha256,
        TestName::Rsa4096Sha256,
    ] {
        let set = TestSet::load(name).expect("vectors ship");
        let mut tally = Tally::default();
        for group in &set.test_groups {
            Key::from_public_pem("wycheproof", Algorithm::RS256, group.pem.as_bytes())
                .expect("the core loads the group's RSA key");
            let key = DecodingKey::from_rsa_pem(group.pem.as_bytes()).expect("RSA public key");
            for test in &group.tests {
                let accepted = verifies(&test.sig, &test.msg, &key, Jwa::RS256);
                tally.record("rsa_signature_sha256", test.tc_id, &test.result, accepted);
            }
        }
        tally.assert_clean(&format!("RS256 ({name:?})"));
    }
}
