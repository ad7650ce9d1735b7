//! Spending budgets of LLM calls: so many US dollars or tokens per local
//! calendar day or month, for some providers, deployments, groups or caller
//! tags, or for every LLM call.
//!
//! A budget is held like a request quota, in the same [`StateStore`], so it
//! is exact across processes through Redis and follows the same outage
//! rules: before each request is sent, the request's estimated spend (its
//! prompt, and its `max_tokens` or the model's longest answer) is reserved
//! on every budget that applies, all or none; a budget without room for it
//! refuses the request before it is sent. Once the reply says what it used,
//! the reservation is settled to that (given back or charged on); a request
//! that produced no answer gives its reservation back.
//!
//! ```toml
//! [budgets.team-a]
//! usd = 25.0                 # or tokens = 2_000_000
//! period = "month"           # or "day" (the calendar of `timezone`)
//! tags = ["team-a"]          # and/or providers, deployments, groups; none: every LLM call
//! ```

use std::sync::Arc;

use serde::Deserialize;

use crate::resilience::quota::{Quota, QuotaPeriod};
use crate::state::{StateFuture, StateStore};

/// Micro-dollars per dollar: USD budgets are counted in whole micro-dollars,
/// so that Redis counts them exactly.
const MICRO: f64 = 1_000_000.0;

/// One budget as written in the configuration (`[budgets.<name>]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Most US dollars spent per period.
    pub usd: Option<f64>,
    /// Most tokens (prompt and answer) spent per period.
    pub tokens: Option<u64>,
    /// The calendar period (default `month`).
    #[serde(default = "default_period")]
    pub period: QuotaPeriod,
    /// Provider ids whose calls it counts.
    #[serde(default)]
    pub providers: Vec<String>,
    /// Deployment names whose calls it counts.
    #[serde(default)]
    pub deployments: Vec<String>,
    /// Group names whose calls it counts.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Caller tags whose calls it counts.
    #[serde(default)]
    pub tags: Vec<String>,
}

fn default_period() -> QuotaPeriod {
    QuotaPeriod::Month
}

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BudgetUnit {
    /// Micro-dollars.
    MicroUsd,
    /// Tokens.
    Tokens,
}

/// One request's spend, estimated before sending or reported after.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spend {
    /// Prompt and answer tokens.
    pub tokens: u64,
    /// US dollars; `None` when the model has no known price.
    pub usd: Option<f64>,
}

/// Who a request is for, as budgets scope it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BudgetScope<'a> {
    pub provider: &'a str,
    pub deployment: Option<&'a str>,
    pub group: Option<&'a str>,
    pub tag: Option<&'a str>,
}

/// A budget, resolved from its configuration.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    /// Its name in the configuration.
    pub name: &'static str,
    /// Its counter's id in the state store (`budget:<name>`).
    pub state_id: &'static str,
    pub unit: BudgetUnit,
    /// The limit in the budget's unit, per period.
    pub quota: Quota,
    providers: Vec<String>,
    deployments: Vec<String>,
    groups: Vec<String>,
    tags: Vec<String>,
}

impl Budget {
    /// The budget `name` configures, or what is wrong with it (the field
    /// and why).
    pub(crate) fn new(
        name: &'static str,
        state_id: &'static str,
        config: &BudgetConfig,
    ) -> Result<Self, (&'static str, String)> {
        let (unit, limit) = match (config.usd, config.tokens) {
            (Some(_), Some(_)) => {
                return Err((
                    "tokens",
                    "a budget counts dollars or tokens, not both".into(),
                ))
            }
            (Some(usd), None) if usd.is_finite() && usd > 0.0 => {
                (BudgetUnit::MicroUsd, (usd * MICRO).round() as u64)
            }
            (Some(usd), None) => return Err(("usd", format!("must be above 0, got {usd}"))),
            (None, Some(0)) => return Err(("tokens", "must be at least 1".into())),
            (None, Some(tokens)) => (BudgetUnit::Tokens, tokens),
            (None, None) => return Err(("usd", "set `usd` or `tokens`".into())),
        };
        Ok(Self {
            name,
            state_id,
            unit,
            quota: Quota {
                limit,
                period: config.period,
            },
            providers: config.providers.clone(),
            deployments: config.deployments.clone(),
            groups: config.groups.clone(),
            tags: config.tags.clone(),
        })
    }

    /// Whether the budget counts a request for `scope`: one named in any of
    /// its lists, or every request when it names none.
    pub(crate) fn applies(&self, scope: &BudgetScope<'_>) -> bool {
        let named = |list: &[String], value: Option<&str>| {
            value.is_some_and(|v| list.iter().any(|x| x == v))
        };
        let unscoped = self.providers.is_empty()
            && self.deployments.is_empty()
            && self.groups.is_empty()
            && self.tags.is_empty();
        unscoped
            || named(&self.providers, Some(scope.provider))
            || named(&self.deployments, scope.deployment)
            || named(&self.groups, scope.group)
            || named(&self.tags, scope.tag)
    }

    /// `spend` in the budget's unit; `None` for dollars of a model whose
    /// price is unknown (such a request cannot be held to a dollar budget).
    pub(crate) fn units(&self, spend: Spend) -> Option<u64> {
        match self.unit {
            BudgetUnit::Tokens => Some(spend.tokens),
            BudgetUnit::MicroUsd => spend.usd.map(|usd| (usd * MICRO).ceil() as u64),
        }
    }
}

/// Why a request was refused by a budget.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BudgetRefusal {
    /// A sentence for the trail.
    pub reason: String,
    /// When the budget's period ends; `None` when waiting would not help
    /// (an unpriced model under a dollar budget).
    pub reset: Option<(chrono::DateTime<chrono::Utc>, std::time::Duration)>,
}

/// What one request reserved: `(budget, units)` on each budget that applies.
#[derive(Debug, Default)]
pub(crate) struct Reservation {
    held: Vec<(Arc<Budget>, u64)>,
}

/// Every configured budget.
#[derive(Debug, Default, Clone)]
pub(crate) struct Budgets {
    budgets: Vec<Arc<Budget>>,
}

impl Budgets {
    pub(crate) fn new(budgets: Vec<Budget>) -> Self {
        Self {
            budgets: budgets.into_iter().map(Arc::new).collect(),
        }
    }

    /// Whether any budget is configured (the common case is none: then
    /// nothing is estimated).
    pub(crate) fn is_empty(&self) -> bool {
        self.budgets.is_empty()
    }

    /// Reserves `estimate` on every budget that applies to `scope`, all or
    /// none.
    pub(crate) async fn reserve(
        &self,
        state: &dyn StateStore,
        scope: &BudgetScope<'_>,
        estimate: Spend,
    ) -> Result<Reservation, BudgetRefusal> {
        let mut reservation = Reservation::default();
        for budget in self.budgets.iter().filter(|b| b.applies(scope)) {
            let Some(units) = budget.units(estimate) else {
                self.release(state, reservation).await;
                return Err(BudgetRefusal {
                    reason: format!(
                        "skipped: budget `{}` counts dollars and this model has no known price \
                         (set one under [models])",
                        budget.name
                    ),
                    reset: None,
                });
            };
            match state.consume_quota(budget.state_id, units).await {
                crate::resilience::quota::QuotaDecision::Allowed { .. } => {
                    reservation.held.push((Arc::clone(budget), units));
                }
                crate::resilience::quota::QuotaDecision::Exhausted {
                    reset_at,
                    retry_after,
                } => {
                    self.release(state, reservation).await;
                    return Err(BudgetRefusal {
                        reason: format!(
                            "skipped: budget `{}` has no room for this request until {}",
                            budget.name,
                            reset_at.format("%Y-%m-%d %H:%M:%S UTC")
                        ),
                        reset: Some((reset_at, retry_after)),
                    });
                }
            }
        }
        Ok(reservation)
    }

    /// Gives a reservation back (the request was not sent, or failed).
    pub(crate) async fn release(&self, state: &dyn StateStore, reservation: Reservation) {
        for (budget, units) in reservation.held {
            state.refund_quota(budget.state_id, units).await;
        }
    }

    /// Settles a reservation to what the answer reported: the difference
    /// is given back or charged on. An unknown spend keeps the estimate.
    pub(crate) async fn settle(
        &self,
        state: &dyn StateStore,
        reservation: Reservation,
        spent: Option<Spend>,
    ) {
        for (budget, reserved) in reservation.held {
            let Some(actual) = spent.and_then(|s| budget.units(s)) else {
                continue;
            };
            settle_one(state, budget.state_id, reserved, actual).await;
        }
    }
}

fn settle_one<'a>(
    state: &'a dyn StateStore,
    id: &'static str,
    reserved: u64,
    actual: u64,
) -> StateFuture<'a, ()> {
    if actual < reserved {
        state.refund_quota(id, reserved - actual)
    } else {
        state.charge_quota(id, actual - reserved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::state::{InMemoryState, ProviderLimits};

    fn config(toml: &str) -> BudgetConfig {
        toml::from_str(toml).unwrap()
    }

    fn budget(toml: &str) -> Budget {
        Budget::new("b", "budget:b", &config(toml)).unwrap()
    }

    #[test]
    fn a_budget_counts_dollars_or_tokens() {
        let usd = budget("usd = 2.5");
        assert_eq!(
            (usd.unit, usd.quota),
            (BudgetUnit::MicroUsd, Quota::per_month(2_500_000))
        );
        let spend = Spend {
            tokens: 100,
            usd: Some(0.000_001_2),
        };
        assert_eq!(
            usd.units(spend),
            Some(2),
            "rounded up to whole micro-dollars"
        );
        assert_eq!(usd.units(Spend { usd: None, ..spend }), None);
        let tokens = budget("tokens = 1000\nperiod = \"day\"");
        assert_eq!(tokens.quota, Quota::per_day(1000));
        assert_eq!(tokens.units(Spend { usd: None, ..spend }), Some(100));

        let error = |toml: &str| Budget::new("b", "budget:b", &config(toml)).unwrap_err().0;
        assert_eq!(error("usd = 1.0\ntokens = 5"), "tokens");
        assert_eq!(error("usd = 0.0"), "usd");
        assert_eq!(error("tokens = 0"), "tokens");
        assert_eq!(error("period = \"day\""), "usd");
        assert!(toml::from_str::<BudgetConfig>("usd = 1.0\nperiod = \"week\"").is_err());
        assert!(toml::from_str::<BudgetConfig>("usd = 1.0\nteams = []").is_err());
    }

    #[test]
    fn scopes_name_what_a_budget_counts() {
        let scope = BudgetScope {
            provider: "openai",
            deployment: Some("gpt-eu"),
            group: Some("fast"),
            tag: Some("alice"),
        };
        assert!(budget("usd = 1.0").applies(&scope), "no scope: every call");
        assert!(budget("usd = 1.0\nproviders = [\"openai\"]").applies(&scope));
        assert!(budget("usd = 1.0\ndeployments = [\"gpt-eu\"]").applies(&scope));
        assert!(budget("usd = 1.0\ngroups = [\"fast\"]").applies(&scope));
        assert!(budget("usd = 1.0\ntags = [\"alice\"]").applies(&scope));
        assert!(!budget("usd = 1.0\ntags = [\"bob\"]").applies(&scope));
        let untagged = BudgetScope { tag: None, ..scope };
        assert!(!budget("usd = 1.0\ntags = [\"alice\"]").applies(&untagged));
    }

    /// Reserve all or none, settle to the reported spend, give back what
    /// failed: the counters show exactly what was spent.
    #[tokio::test]
    async fn reservations_are_all_or_none_and_settle_to_the_spend() {
        let clock = FakeClock::at_epoch();
        let team = Budget::new("team", "budget:team", &config("tokens = 100")).unwrap();
        let alice = Budget::new(
            "alice",
            "budget:alice",
            &config("tokens = 30\ntags = [\"alice\"]"),
        )
        .unwrap();
        let limits: Vec<ProviderLimits> = [&team, &alice]
            .iter()
            .map(|b| ProviderLimits {
                provider: b.state_id,
                rate_limit: None,
                quota: Some(b.quota),
                timezone: chrono_tz::UTC,
            })
            .collect();
        let state = InMemoryState::new(&limits, clock.shared()).unwrap();
        let budgets = Budgets::new(vec![team, alice]);
        let alice_call = BudgetScope {
            provider: "openai",
            tag: Some("alice"),
            ..BudgetScope::default()
        };
        let estimate = Spend {
            tokens: 20,
            usd: None,
        };
        let used = |id: &'static str| state.quota_snapshot(id).unwrap().used;

        let first = budgets
            .reserve(&state, &alice_call, estimate)
            .await
            .unwrap();
        assert_eq!((used("budget:team"), used("budget:alice")), (20, 20));
        // Alice's budget has 10 left: the team's reservation is given back too.
        let refused = budgets
            .reserve(&state, &alice_call, estimate)
            .await
            .unwrap_err();
        assert!(refused.reason.contains("`alice`"), "{}", refused.reason);
        assert!(refused.reset.is_some());
        assert_eq!((used("budget:team"), used("budget:alice")), (20, 20));

        // The answer used 8 tokens: 12 come back to both.
        budgets
            .settle(
                &state,
                first,
                Some(Spend {
                    tokens: 8,
                    usd: None,
                }),
            )
            .await;
        assert_eq!((used("budget:team"), used("budget:alice")), (8, 8));
        // One that used more than estimated is charged on, past the limit if need be.
        let second = budgets
            .reserve(&state, &alice_call, estimate)
            .await
            .unwrap();
        budgets
            .settle(
                &state,
                second,
                Some(Spend {
                    tokens: 25,
                    usd: None,
                }),
            )
            .await;
        assert_eq!((used("budget:team"), used("budget:alice")), (33, 33));
        // A failed request gives everything back.
        let bob = BudgetScope {
            provider: "openai",
            tag: Some("bob"),
            ..BudgetScope::default()
        };
        let third = budgets.reserve(&state, &bob, estimate).await.unwrap();
        assert_eq!(used("budget:team"), 53);
        budgets.release(&state, third).await;
        assert_eq!((used("budget:team"), used("budget:alice")), (33, 33));
    }
}
