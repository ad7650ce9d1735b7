//! What providers exist, for people and for the bindings: one schema for the
//! provider list ([`Client::catalog`](crate::Client::catalog), [`builtin`]),
//! and the capability × provider table in the README (generated from the
//! code; a test fails when it is stale).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::capability::CapabilityId;
use crate::config::{Config, Plan};
use crate::error::Result;
use crate::provider::{Auth, KeyPlacement, QuotaPeriod};

/// Every provider a client knows, in registry order (built-in, added to the
/// builder, declared in the configuration). Serialises as a JSON array of
/// [`CatalogEntry`]: the provider list of the Python package and the C ABI.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Catalog {
    /// One entry per provider.
    pub providers: Vec<CatalogEntry>,
}

/// One provider of a [`Catalog`]: what it declares, and how this client's
/// configuration and environment set it up (never the key itself).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CatalogEntry {
    /// Provider id.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Capability names it serves.
    pub capabilities: Vec<&'static str>,
    /// `keyless` (takes no key), `optional_key` (works without one, at
    /// lower limits) or `key` (needs one).
    pub auth: &'static str,
    /// The variable its key is read from (after `api_key_env`), if it takes one.
    pub key_env: Option<String>,
    /// Where the key is sent (`header` or `query`), if it takes one.
    pub key_in: Option<&'static str>,
    /// Whether a key is set (given to the builder or found in `key_env`).
    pub key_set: bool,
    /// In this client's chains: enabled and allowed by `commercial`.
    pub enabled: bool,
    /// Its position (from 0) in each capability's chain it is part of.
    pub chains: BTreeMap<&'static str, usize>,
    /// Documentation URL.
    pub docs_url: &'static str,
    /// Terms worth knowing.
    pub terms: &'static str,
    /// Whether the free terms allow commercial use.
    pub commercial_use: bool,
    /// Documented free-tier rate limit (`"600/min"`), if any.
    pub default_rate_limit: Option<&'static str>,
    /// Documented free-tier request quota per calendar day, if any.
    pub default_daily_quota: Option<u64>,
    /// Documented free-tier request quota per calendar month, if any.
    pub default_monthly_quota: Option<u64>,
}

impl Catalog {
    /// The catalog of the client `plan` describes.
    pub(crate) fn of(plan: &Plan) -> Self {
        let mut chains: Vec<BTreeMap<&'static str, usize>> =
            vec![BTreeMap::new(); plan.providers.len()];
        for (capability, chain) in CapabilityId::ALL.iter().zip(&plan.chains) {
            for (position, i) in chain.providers.iter().enumerate() {
                chains[*i].insert(capability.as_str(), position);
            }
        }
        let providers = plan
            .providers
            .iter()
            .zip(chains)
            // Deployments are configured uses of the providers listed.
            .filter(|(provider, _)| provider.deployment.is_none())
            .map(|(provider, chains)| {
                let info = provider.provider.info();
                let (auth, key_in) = match info.auth {
                    Auth::Keyless => ("keyless", None),
                    Auth::Key {
                        placement,
                        optional,
                        ..
                    } => (
                        if optional { "optional_key" } else { "key" },
                        Some(match placement {
                            KeyPlacement::Header { .. } => "header",
                            KeyPlacement::Query { .. } => "query",
                        }),
                    ),
                };
                CatalogEntry {
                    id: info.id,
                    name: info.name,
                    capabilities: provider
                        .provider
                        .capabilities()
                        .iter()
                        .map(|c| c.as_str())
                        .collect(),
                    auth,
                    key_env: (!provider.key_env.is_empty()).then(|| provider.key_env.clone()),
                    key_in,
                    key_set: provider.key.is_some(),
                    enabled: provider.enabled,
                    chains,
                    docs_url: info.docs_url,
                    terms: info.terms,
                    commercial_use: info.commercial_use,
                    default_rate_limit: info.default_rate_limit,
                    default_daily_quota: info
                        .default_quota
                        .and_then(|q| q.limit_per(QuotaPeriod::Day)),
                    default_monthly_quota: info
                        .default_quota
                        .and_then(|q| q.limit_per(QuotaPeriod::Month)),
                }
            })
            .collect();
        Self { providers }
    }

    /// The entry of provider `id`.
    pub fn get(&self, id: &str) -> Option<&CatalogEntry> {
        self.providers.iter().find(|p| p.id == id)
    }

    /// Provider ids of `capability`'s chain, in fallback order.
    pub fn chain(&self, capability: CapabilityId) -> Vec<&'static str> {
        let mut members: Vec<(usize, &'static str)> = self
            .providers
            .iter()
            .filter_map(|p| Some((*p.chains.get(capability.as_str())?, p.id)))
            .collect();
        members.sort_unstable();
        members.into_iter().map(|(_, id)| id).collect()
    }

    /// The built-in providers as a client with the default configuration
    /// (no file, no `POLYRELAY_*` overrides) would have them, keys read from
    /// this process's environment. Same schema as
    /// [`Client::catalog`](crate::Client::catalog).
    pub fn builtin() -> Result<Catalog> {
        builtin_with(&crate::config::env_vars_utf8())
    }

    /// The catalog as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

fn builtin_with(vars: &BTreeMap<String, String>) -> Result<Catalog> {
    let plan = crate::config::resolve(&Config::default(), vars, &BTreeMap::new(), &[])?;
    Ok(Catalog::of(&plan))
}

/// The capability × provider table in Markdown: for each capability, its
/// providers in default order, keyless ones marked.
pub fn markdown_table() -> String {
    // Without keys: the default chains do not depend on them.
    let catalog = match builtin_with(&BTreeMap::new()) {
        Ok(catalog) => catalog,
        Err(error) => return format!("the built-in catalog does not resolve: {error}\n"),
    };
    let keyless = |id: &str| catalog.get(id).is_some_and(|p| p.auth != "key");
    let mut out =
        String::from("| Capability | Providers in default order (K = keyless) |\n|---|---|\n");
    for capability in CapabilityId::ALL {
        if let Some(parts) = capability.composed_of() {
            out.push_str(&format!(
                "| `{}` | every `{}` provider at once, merged |\n",
                capability.as_str(),
                parts.as_str()
            ));
            continue;
        }
        let names: Vec<String> = catalog
            .chain(*capability)
            .into_iter()
            .map(|id| {
                if keyless(id) {
                    format!("{id} (K)")
                } else {
                    id.to_string()
                }
            })
            .collect();
        out.push_str(&format!(
            "| `{}` | {} |\n",
            capability.as_str(),
            names.join(", ")
        ));
    }
    let keyless = catalog.providers.iter().filter(|p| keyless(p.id)).count();
    out.push_str(&format!(
        "\n{} providers ({} keyless) serve {} capabilities.\n",
        catalog.providers.len(),
        keyless,
        CapabilityId::ALL.len()
    ));
    // Every variable a built-in provider reads its key from, so the README's
    // variable table can point here instead of keeping its own copy.
    let mut keys: Vec<(&str, &str, bool)> = catalog
        .providers
        .iter()
        .filter_map(|p| {
            let env = p.key_env.as_deref()?;
            Some((env, p.id, p.auth == "optional_key"))
        })
        .collect();
    keys.sort_unstable();
    let keys: Vec<String> = keys
        .into_iter()
        .map(|(env, id, optional)| {
            let optional = if optional { ", optional" } else { "" };
            format!("`{env}` ({id}{optional})")
        })
        .collect();
    out.push_str(&format!(
        "
Key variables (a provider whose key is not set is skipped; an optional key raises its limits): {}.
",
        keys.join(", ")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::plan::tests::vars;

    #[test]
    fn deployments_are_not_listed_as_providers() {
        let config = crate::config::Config::from_toml_str(
            "[deployments.gpt-eu]\nprovider = \"openai\"\nmodel = \"gpt-4o-mini\"\n",
        )
        .unwrap();
        let plan = crate::config::resolve(&config, &vars(&[]), &BTreeMap::new(), &[]).unwrap();
        assert_eq!(plan.providers.len(), crate::providers::builtin().len() + 1);
        let catalog = Catalog::of(&plan);
        assert_eq!(catalog.providers.len(), crate::providers::builtin().len());
        assert_eq!(
            catalog
                .providers
                .iter()
                .filter(|p| p.id == "openai")
                .count(),
            1
        );
    }

    #[test]
    fn the_catalog_serialises_one_entry_per_provider_with_every_field() {
        let catalog = builtin_with(&vars(&[("COINGECKO_API_KEY", "secret-coingecko")])).unwrap();
        let json = catalog.to_json();
        let entries = json.as_array().expect("a JSON array");
        assert_eq!(entries.len(), crate::providers::builtin().len());
        let coingecko = entries
            .iter()
            .find(|p| p["id"] == "coingecko")
            .expect("coingecko is listed");
        let mut fields: Vec<&str> = coingecko
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "auth",
                "capabilities",
                "chains",
                "commercial_use",
                "default_daily_quota",
                "default_monthly_quota",
                "default_rate_limit",
                "docs_url",
                "enabled",
                "id",
                "key_env",
                "key_in",
                "key_set",
                "name",
                "terms"
            ]
        );
        assert_eq!(coingecko["key_env"], "COINGECKO_API_KEY");
        assert_eq!(coingecko["key_set"], true);
        assert_eq!(coingecko["enabled"], true);
        assert!(!json.to_string().contains("secret-coingecko"));
        let open_meteo = catalog.get("open-meteo").unwrap();
        assert_eq!(open_meteo.auth, "keyless");
        assert_eq!(open_meteo.key_env, None);
        assert!(!open_meteo.key_set);
        assert_eq!(open_meteo.chains["weather.current"], 0);
    }

    #[test]
    fn chains_read_back_from_positions_are_the_plans_chains() {
        let plan =
            crate::config::resolve(&Config::default(), &vars(&[]), &BTreeMap::new(), &[]).unwrap();
        let catalog = Catalog::of(&plan);
        for (capability, chain) in CapabilityId::ALL.iter().zip(&plan.chains) {
            let expected: Vec<&str> = chain
                .providers
                .iter()
                .map(|i| plan.providers[*i].id())
                .collect();
            assert_eq!(catalog.chain(*capability), expected, "{capability}");
        }
    }
}
