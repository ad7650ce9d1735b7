//! What providers exist, for people: a listing and the capability × provider
//! table in the README (generated from the code; a test fails when it is stale).

use serde::Serialize;

use crate::capability::CapabilityId;
use crate::provider::{Auth, KeyPlacement};

/// One provider, as listed for users.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderListing {
    /// Provider id.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Capability names.
    pub capabilities: Vec<&'static str>,
    /// Works without a key.
    pub keyless: bool,
    /// Environment variable of its key, if it takes one.
    pub key_env: Option<&'static str>,
    /// Where the key is sent (`header` or `query`), if it takes one.
    pub key_in: Option<&'static str>,
    /// Documentation URL.
    pub docs_url: &'static str,
    /// Terms worth knowing.
    pub terms: &'static str,
    /// Whether the free terms allow commercial use.
    pub commercial_use: bool,
    /// Default client-side rate limit.
    pub default_rate_limit: Option<&'static str>,
    /// Default daily quota.
    pub default_daily_quota: Option<u64>,
}

/// Every built-in provider, in registry order.
pub fn listing() -> Vec<ProviderListing> {
    crate::providers::builtin()
        .iter()
        .map(|p| {
            let info = p.info();
            let (key_env, key_in) = match info.auth {
                Auth::Keyless => (None, None),
                Auth::Key { env, placement, .. } => (
                    Some(env),
                    Some(match placement {
                        KeyPlacement::Header { .. } => "header",
                        KeyPlacement::Query { .. } => "query",
                    }),
                ),
            };
            ProviderListing {
                id: info.id,
                name: info.name,
                capabilities: info.capabilities.iter().map(|c| c.as_str()).collect(),
                keyless: info.is_keyless(),
                key_env,
                key_in,
                docs_url: info.docs_url,
                terms: info.terms,
                commercial_use: info.commercial_use,
                default_rate_limit: info.default_rate_limit,
                default_daily_quota: info.default_daily_quota,
            }
        })
        .collect()
}

/// The capability × provider table in Markdown: for each capability, its
/// providers in default order, keyless ones marked.
pub fn markdown_table() -> String {
    let providers = listing();
    let mut out =
        String::from("| Capability | Providers in default order (K = keyless) |\n|---|---|\n");
    for capability in CapabilityId::ALL {
        let mut serving: Vec<&ProviderListing> = providers
            .iter()
            .filter(|p| p.capabilities.contains(&capability.as_str()))
            .collect();
        serving.sort_by_key(|p| !p.keyless);
        let names: Vec<String> = serving
            .iter()
            .map(|p| {
                if p.keyless {
                    format!("{} (K)", p.id)
                } else {
                    p.id.to_string()
                }
            })
            .collect();
        out.push_str(&format!(
            "| `{}` | {} |\n",
            capability.as_str(),
            names.join(", ")
        ));
    }
    let keyless = providers.iter().filter(|p| p.keyless).count();
    out.push_str(&format!(
        "\n{} providers ({} keyless) serve {} capabilities.\n",
        providers.len(),
        keyless,
        CapabilityId::ALL.len()
    ));
    out
}
