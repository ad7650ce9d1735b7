//! Spending budgets: US dollars or tokens per calendar day or month, for
//! LLM calls to some providers, deployments, groups or caller tags.
//!
//! ```toml
//! [budgets.team-a]
//! usd = 5.0                  # or tokens = 100000 (exactly one)
//! period = "month"           # or "day": the configured time zone's calendar
//! tags = ["team-a"]          # scope: any of providers, deployments, groups, tags
//! groups = ["fast"]
//! ```
//!
//! # Scope
//!
//! A budget counts the LLM calls (`llm.chat`, `llm.embeddings`) its scope
//! names. Each list it sets must match: `providers` the provider asked (a
//! deployment of that provider included), `deployments` the deployment
//! asked, `groups` the group the call named as its `model`, `tags` the
//! call's `tag`. A list left out matches every call, so a budget without
//! any counts every LLM call of the client, and `tags = ["team-a"]` with
//! `providers = ["openai"]` counts team A's calls to OpenAI.
//!
//! # Enforcement
//!
//! Before each request is sent, its estimate is reserved on every budget
//! that counts it, all or none: the estimated prompt tokens plus
//! `max_tokens` (256 when not set), or for a budget in dollars that many
//! tokens at the deployment's configured price, else the model table's
//! price of the model asked for. A request that does not fit in one of its
//! budgets is not sent: the provider is skipped (`skipped_budget` in the
//! trail, naming the budget) and the call goes on to the next one, which
//! may be outside that budget; a call with nothing left fails with the
//! `quota_exhausted` kind.
//!
//! After the answer, the reservation is settled with the usage the
//! provider reported: the difference is given back, or charged even past
//! the limit (that is what was spent; later calls are refused). A request
//! that failed or was never sent gives its reservation back; one whose
//! usage is not reported (a stream cut short, a reply without usage) keeps
//! its estimate.
//!
//! A dollar budget cannot be enforced for a model without a price: such a
//! request is refused by it (priced through `[models."provider/model"]` or
//! a deployment's `price`), never let through uncounted.
//!
//! Counters live in the state store, as integers (tokens, or millionths of
//! a dollar), per budget and window: shared exactly by every process on one
//! Redis, with the quotas' outage rules.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::capability::llm::check_tag as check_name;
use crate::capability::llm::models::Spend;
use crate::echo::{echo, echo_key};
use crate::error::{Error, Result};
use crate::resilience::quota::{QuotaPeriod, QuotaSnapshot, QuotaWindow};
use crate::routing::{Price, TokenEstimate};

/// Millionths of a dollar in a dollar: the unit of a dollar budget's counter.
const MICROS: f64 = 1_000_000.0;

/// A `[budgets.NAME]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetSettings {
    /// The limit in US dollars (or `tokens`, not both).
    pub usd: Option<f64>,
    /// The limit in tokens, prompt and answer together (or `usd`).
    pub tokens: Option<u64>,
    /// The window: `month` (default) or `day`, in the configured time zone.
    pub period: Option<QuotaPeriod>,
    /// Provider ids whose calls count (a deployment of one included).
    pub providers: Vec<String>,
    /// Deployment names whose calls count.
    pub deployments: Vec<String>,
    /// Group names whose calls count.
    pub groups: Vec<String>,
    /// Caller tags whose calls count.
    pub tags: Vec<String>,
}

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetUnit {
    /// US dollars (counted in millionths).
    Usd,
    /// Tokens.
    Tokens,
}

impl BudgetSettings {
    /// Checks the table (names of deployments and groups against the
    /// configuration's; provider ids are checked against the registry when
    /// a client is built). Errors name `budgets.NAME.field`.
    pub(crate) fn validate(&self, name: &str, deployments: &[&str], groups: &[&str]) -> Result<()> {
        let field = format!("budgets.{}", echo_key(name));
        check_name(name).map_err(|e| Error::config(&field, e))?;
        match (self.usd, self.tokens) {
            (Some(usd), None) if usd.is_finite() && usd > 0.0 && usd * MICROS < 2f64.powi(53) => {}
            (Some(_), None) => {
                return Err(Error::config(
                    format!("{field}.usd"),
                    "must be a number of dollars above 0",
                ))
            }
            (None, Some(tokens)) if tokens > 0 && tokens < 1 << 53 => {}
            (None, Some(_)) => {
                return Err(Error::config(
                    format!("{field}.tokens"),
                    "must be a whole number of tokens above 0",
                ))
            }
            _ => {
                return Err(Error::config(
                    field,
                    "set exactly one limit: usd = 5.0 or tokens = 100000",
                ))
            }
        }
        let unknown = |list: &str, item: &str, known: &[&str]| {
            Error::config(
                format!("{field}.{list}"),
                format!(
                    "unknown {} {}; declared: {}",
                    list.trim_end_matches('s'),
                    echo(item),
                    known.join(", ")
                ),
            )
        };
        for deployment in &self.deployments {
            if !deployments.contains(&deployment.as_str()) {
                return Err(unknown("deployments", deployment, deployments));
            }
        }
        for group in &self.groups {
            if !groups.contains(&group.as_str()) {
                return Err(unknown("groups", group, groups));
            }
        }
        for tag in &self.tags {
            check_name(tag).map_err(|e| Error::config(format!("{field}.tags"), e))?;
        }
        Ok(())
    }
}

/// What a state store needs to count a budget: its name, its limit in
/// counter units (tokens, or millionths of a dollar) and its calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetLimit {
    /// The budget's name (in keys and snapshots).
    pub name: &'static str,
    /// Counter units per window.
    pub limit: u64,
    /// Day or month.
    pub period: QuotaPeriod,
    /// The calendar of the windows.
    pub timezone: Tz,
}

/// Units to take from one budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetCharge {
    /// The budget.
    pub budget: BudgetLimit,
    /// Counter units.
    pub units: u64,
}

/// What a store decided about reserving on several budgets at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetDecision {
    /// Every budget took its units.
    Reserved,
    /// This budget has fewer units left than asked; nothing was taken.
    Exhausted {
        /// The budget's name.
        budget: &'static str,
        /// Units left in its window.
        left: u64,
        /// When its window ends.
        reset_at: DateTime<Utc>,
    },
}

/// The Redis key of a budget's counter: `b:{budgets}:<name>:<window>`.
///
/// Every budget shares one hash tag, so one script can reserve on all the
/// budgets of a request at once on Redis Cluster.
///
/// ```
/// use chrono::NaiveDate;
/// use polyrelay::internal::resilience::budget::budget_key;
/// use polyrelay::internal::resilience::quota::{QuotaPeriod, QuotaWindow};
///
/// let date = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
/// let month = QuotaWindow::for_date(date, chrono_tz::UTC, QuotaPeriod::Month);
/// assert_eq!(budget_key("team-a", &month), "b:{budgets}:team-a:2026-03");
/// ```
pub fn budget_key(name: &str, window: &QuotaWindow) -> String {
    format!("b:{{budgets}}:{name}:{}", window.label())
}

/// A configured budget, as the engine applies it.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    pub limit: BudgetLimit,
    pub unit: BudgetUnit,
    providers: Vec<String>,
    deployments: Vec<String>,
    groups: Vec<String>,
    tags: Vec<String>,
}

/// Who a request about to be sent is for, as budget scopes see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spender<'a> {
    pub provider: &'a str,
    pub deployment: Option<&'a str>,
    pub group: Option<&'a str>,
    pub tag: Option<&'a str>,
}

impl Budget {
    /// Budget `name` from its (validated) settings, on `timezone`'s calendar.
    pub(crate) fn new(name: &'static str, settings: &BudgetSettings, timezone: Tz) -> Self {
        let (unit, limit) = match (settings.usd, settings.tokens) {
            (Some(usd), _) => (BudgetUnit::Usd, (usd * MICROS).round() as u64),
            (None, tokens) => (BudgetUnit::Tokens, tokens.unwrap_or(0)),
        };
        Self {
            limit: BudgetLimit {
                name,
                limit,
                period: settings.period.unwrap_or(QuotaPeriod::Month),
                timezone,
            },
            unit,
            providers: settings.providers.clone(),
            deployments: settings.deployments.clone(),
            groups: settings.groups.clone(),
            tags: settings.tags.clone(),
        }
    }

    /// Whether the budget counts a request for `spender`.
    pub(crate) fn counts(&self, spender: &Spender<'_>) -> bool {
        let matches = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|item| item == v))
        };
        matches(&self.providers, Some(spender.provider))
            && matches(&self.deployments, spender.deployment)
            && matches(&self.groups, spender.group)
            && matches(&self.tags, spender.tag)
    }

    /// The units to reserve for a request estimated at `tokens`, priced at
    /// `price`; `None` when a dollar budget has no price to go by.
    pub(crate) fn estimate(&self, tokens: TokenEstimate, price: Option<Price>) -> Option<u64> {
        match self.unit {
            BudgetUnit::Tokens => Some(tokens.total()),
            BudgetUnit::Usd => price.map(|p| micros(p.cost_usd(tokens))),
        }
    }

    /// The units an answer's reported `spend` comes to (priced at `price`
    /// when the model table has no price for the reply's model); `None`
    /// when the reply does not say enough.
    pub(crate) fn actual(&self, spend: &Spend, price: Option<Price>) -> Option<u64> {
        let tokens = spend.input_tokens.zip(spend.output_tokens);
        match self.unit {
            BudgetUnit::Tokens => tokens.map(|(i, o)| i.saturating_add(o)),
            BudgetUnit::Usd => spend.cost_usd.map(micros).or_else(|| {
                let (input, output) = tokens?;
                Some(micros(price?.cost_usd(TokenEstimate { input, output })))
            }),
        }
    }

    /// The budget's state from its counter's snapshot.
    pub(crate) fn snapshot(&self, counter: &QuotaSnapshot) -> BudgetSnapshot {
        let amount = |units: u64| match self.unit {
            BudgetUnit::Usd => units as f64 / MICROS,
            BudgetUnit::Tokens => units as f64,
        };
        BudgetSnapshot {
            unit: self.unit,
            limit: amount(self.limit.limit),
            spent: amount(counter.used),
            remaining: amount(counter.remaining),
            period: self.limit.period,
            timezone: counter.timezone,
            date: counter.date,
            reset_at: counter.reset_at,
        }
    }
}

/// Dollars as whole millionths, rounded up: a reservation never
/// under-counts.
fn micros(usd: f64) -> u64 {
    (usd * MICROS).ceil().max(0.0) as u64
}

/// A budget's state, for [`Client::health`](crate::Client::health).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetSnapshot {
    /// `usd` or `tokens`.
    pub unit: BudgetUnit,
    /// The limit per window, in `unit`.
    pub limit: f64,
    /// Spent (and reserved by requests in flight) in the current window;
    /// may pass `limit` when answers used more than their estimate.
    pub spent: f64,
    /// Left in the current window.
    pub remaining: f64,
    /// `day` or `month`.
    pub period: QuotaPeriod,
    /// The IANA zone whose calendar the budget follows.
    pub timezone: &'static str,
    /// The first local date of the current window.
    pub date: NaiveDate,
    /// When the current window ends and the budget resets.
    pub reset_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(toml: &str) -> Budget {
        let settings: BudgetSettings = toml::from_str(toml).unwrap();
        Budget::new("b", &settings, Tz::UTC)
    }

    #[test]
    fn every_list_of_the_scope_must_match_and_an_empty_one_matches_all() {
        let spender = Spender {
            provider: "openai",
            deployment: Some("gpt-eu"),
            group: Some("fast"),
            tag: Some("team-a"),
        };
        assert!(budget("tokens = 1").counts(&spender));
        assert!(
            budget("tokens = 1\ntags = [\"team-a\"]\nproviders = [\"openai\"]").counts(&spender)
        );
        assert!(
            !budget("tokens = 1\ntags = [\"team-a\"]\nproviders = [\"groq\"]").counts(&spender)
        );
        assert!(!budget("tokens = 1\ntags = [\"team-b\"]").counts(&spender));
        let untagged = Spender {
            tag: None,
            ..spender
        };
        assert!(!budget("tokens = 1\ntags = [\"team-a\"]").counts(&untagged));
        assert!(budget("tokens = 1\ndeployments = [\"x\", \"gpt-eu\"]").counts(&spender));
        assert!(!budget("tokens = 1\ngroups = [\"slow\"]").counts(&spender));
    }

    #[test]
    fn dollars_are_counted_in_millionths_rounded_up() {
        let usd = budget("usd = 2.5\nperiod = \"day\"");
        assert_eq!(usd.limit.limit, 2_500_000);
        assert_eq!(usd.limit.period, QuotaPeriod::Day);
        let price = Price {
            input_per_mtok: 1.0,
            output_per_mtok: 3.0,
        };
        let tokens = TokenEstimate {
            input: 10,
            output: 100,
        };
        assert_eq!(usd.estimate(tokens, Some(price)), Some(310));
        assert_eq!(usd.estimate(tokens, None), None);
        let third = Price {
            input_per_mtok: 1.0 / 3.0,
            output_per_mtok: 0.0,
        };
        assert_eq!(usd.estimate(tokens, Some(third)), Some(4));
        let spend = Spend {
            input_tokens: Some(20),
            output_tokens: Some(50),
            cost_usd: None,
        };
        assert_eq!(usd.actual(&spend, Some(price)), Some(170));
        let priced = Spend {
            cost_usd: Some(0.001),
            ..spend
        };
        assert_eq!(usd.actual(&priced, None), Some(1000));
        let tokens_budget = budget("tokens = 100");
        assert_eq!(tokens_budget.limit.period, QuotaPeriod::Month);
        assert_eq!(tokens_budget.actual(&spend, None), Some(70));
        let unreported = Spend {
            output_tokens: None,
            ..spend
        };
        assert_eq!(tokens_budget.actual(&unreported, None), None);
    }

    #[test]
    fn a_table_sets_exactly_one_positive_limit_and_known_names() {
        let check = |name: &str, toml: &str| {
            let settings: BudgetSettings = toml::from_str(toml).unwrap();
            match settings.validate(name, &["gpt-eu"], &[]) {
                Ok(()) => String::new(),
                Err(Error::Config { field, .. }) => field,
                Err(other) => panic!("{other:?}"),
            }
        };
        assert_eq!(check("a", "usd = 1.5\ndeployments = [\"gpt-eu\"]"), "");
        assert_eq!(check("a", "tokens = 10\ntags = [\"team:a/b\"]"), "");
        assert_eq!(check("a", "usd = 1\ntokens = 10"), "budgets.a");
        assert_eq!(check("a", ""), "budgets.a");
        assert_eq!(check("a", "usd = 0"), "budgets.a.usd");
        assert_eq!(check("a", "usd = -1"), "budgets.a.usd");
        assert_eq!(check("a", "tokens = 0"), "budgets.a.tokens");
        assert_eq!(
            check("a", "tokens = 1\ndeployments = [\"nope\"]"),
            "budgets.a.deployments"
        );
        assert_eq!(
            check("a", "tokens = 1\ngroups = [\"nope\"]"),
            "budgets.a.groups"
        );
        assert_eq!(
            check("a", "tokens = 1\ntags = [\"has space\"]"),
            "budgets.a.tags"
        );
        assert_eq!(check("a{b}", "tokens = 1"), "budgets.a{b}");
        assert!(toml::from_str::<BudgetSettings>("tokens = 1\nperiod = \"week\"").is_err());
        assert!(toml::from_str::<BudgetSettings>("tokens = 1\nlimit = 3").is_err());
    }
}
