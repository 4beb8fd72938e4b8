//! Fault injection for the mock (`--faults RULES`): which call of which endpoint misbehaves, and how.
//!
//! ```text
//! RULES  := RULE (';' RULE)*
//! RULE   := TARGET ':' ACTION (',' ACTION)*
//! TARGET := ENDPOINT ['#' CALLS]        ENDPOINT: ready | begin | upload | end | dealers | *
//!                                       | crm-login | crm-create | crm-update | … | crm-* (CRM.COM)
//! CALLS  := N | N-M | N+                (1-based count of that endpoint's calls; all calls if omitted)
//! ACTION := status=CODE                 answer HTTP CODE without processing the call
//!         | retry-after=SECS            with a Retry-After header (use with status=429 or 503)
//!         | drop                        break the connection without processing the call
//!         | timeout[=DURATION]          process the call, then hold the answer (default 1h): the
//!                                       client times out after the server counted the rows
//!         | running-total=(+|-)N        process the call, then report runningtotal off by N
//!         | expected-total=(+|-)N       process an upload, then report expectedtotal off by N
//!         | transactionid=TEXT          process an upload, then echo TEXT as its transactionid
//!         | message=TEXT                process the call, then answer with results.message TEXT
//!         | drop-after                  process the call, then break the connection: the answer is
//!                                       lost after the server counted the rows
//!         | delay=DURATION              wait before handling the call
//!         | latency=DURATION            answer DURATION after the call arrived, the mock's own work
//!                                       included (a server whose calls take that long)
//!         | error=TEXT                  answer {"results":{"error":TEXT}} without processing (the
//!                                       last action: TEXT runs to the end of the rule, commas too)
//!         | body=html|garbage|empty     answer HTTP 200 with a body that is not the vendor's JSON
//! ```
//! Example: `upload#2:timeout=3s; end#1-2:status=503,retry-after=1; *:delay=50ms`. Pure parsing and
//! matching; the server applies the actions.

use std::fmt;
use std::time::Duration;

use crate::crm::wire::Method as CrmMethod;
use crate::wire::Endpoint;

/// Which calls of an endpoint a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Calls {
    All,
    Range { from: u64, to: Option<u64> },
}

impl Calls {
    fn contains(self, n: u64) -> bool {
        match self {
            Calls::All => true,
            Calls::Range { from, to } => n >= from && to.is_none_or(|to| n <= to),
        }
    }
}

/// A body that is not the vendor's JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadBody {
    Html,
    Garbage,
    Empty,
}

/// What to do to one call. Several rules matching one call are merged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actions {
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    pub drop: bool,
    pub timeout: Option<Duration>,
    pub running_total_skew: Option<i64>,
    pub expected_total_skew: Option<i64>,
    pub transactionid: Option<String>,
    pub message: Option<String>,
    pub drop_after: bool,
    pub delay: Option<Duration>,
    pub latency: Option<Duration>,
    pub error: Option<String>,
    pub body: Option<BadBody>,
}

impl Actions {
    pub fn is_empty(&self) -> bool {
        *self == Actions::default()
    }

    fn merge(&mut self, other: &Actions) {
        self.status = other.status.or(self.status);
        self.retry_after = other.retry_after.or(self.retry_after);
        self.drop |= other.drop;
        self.timeout = other.timeout.or(self.timeout);
        self.running_total_skew = other.running_total_skew.or(self.running_total_skew);
        self.expected_total_skew = other.expected_total_skew.or(self.expected_total_skew);
        self.transactionid = other.transactionid.clone().or(self.transactionid.take());
        self.message = other.message.clone().or(self.message.take());
        self.drop_after |= other.drop_after;
        self.delay = other.delay.or(self.delay);
        self.latency = other.latency.or(self.latency);
        self.error = other.error.clone().or(self.error.take());
        self.body = other.body.or(self.body);
    }

    /// Whether the call is answered without being processed.
    pub fn skips_processing(&self) -> bool {
        self.drop || self.status.is_some() || self.error.is_some() || self.body.is_some()
    }
}

/// Which calls a rule is about: Rider Rewards endpoints (`*` for all) or CRM.COM methods (`crm-*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    AnyVendor,
    Vendor(Endpoint),
    AnyCrm,
    Crm(CrmMethod),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    target: Target,
    calls: Calls,
    actions: Actions,
}

/// A parsed `--faults` spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    rules: Vec<Rule>,
}

/// A spec that cannot be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault rule {rule:?}: {reason}")]
pub struct FaultSpecError {
    pub rule: String,
    pub reason: String,
}

impl FaultPlan {
    /// Parses a spec (see the module docs). Fails naming the rule that is wrong.
    pub fn parse(spec: &str) -> Result<Self, FaultSpecError> {
        let rules = spec
            .split(';')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| {
                parse_rule(r).map_err(|reason| FaultSpecError {
                    rule: r.to_owned(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    /// The actions for call number `n` (1-based) of `endpoint`.
    pub fn actions(&self, endpoint: Endpoint, n: u64) -> Actions {
        self.matching(n, |t| {
            matches!(t, Target::AnyVendor) || t == Target::Vendor(endpoint)
        })
    }

    /// The actions for call number `n` (1-based) of a CRM.COM method.
    pub fn crm_actions(&self, method: CrmMethod, n: u64) -> Actions {
        self.matching(n, |t| {
            matches!(t, Target::AnyCrm) || t == Target::Crm(method)
        })
    }

    fn matching(&self, n: u64, applies: impl Fn(Target) -> bool) -> Actions {
        let mut out = Actions::default();
        for rule in &self.rules {
            if applies(rule.target) && rule.calls.contains(n) {
                out.merge(&rule.actions);
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} fault rule(s)", self.rules.len())
    }
}

fn parse_rule(rule: &str) -> Result<Rule, String> {
    let (target, actions) = rule
        .split_once(':')
        .ok_or("expected TARGET:ACTION, e.g. upload#2:status=503")?;
    let (endpoint, calls) = match target.trim().split_once('#') {
        Some((e, c)) => (e.trim(), parse_calls(c.trim())?),
        None => (target.trim(), Calls::All),
    };
    let target = parse_target(endpoint)?;
    let mut parsed = Actions::default();
    // error=TEXT is the last action and its text runs to the end of the rule, commas included (the
    // vendor's own error texts have commas).
    let (actions, error) = match actions.find("error=") {
        Some(at) => (
            actions[..at].trim_end().trim_end_matches(','),
            Some(&actions[at..]),
        ),
        None => (actions, None),
    };
    for action in actions.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        parse_action(action, &mut parsed)?;
    }
    if let Some(error) = error {
        parse_action(error, &mut parsed)?;
    }
    Ok(Rule {
        target,
        calls,
        actions: parsed,
    })
}

/// `ready`…`dealers` or `*`; `crm-login`, `crm-create`, … (a CRM.COM method, `_` written `-`) or `crm-*`.
fn parse_target(name: &str) -> Result<Target, String> {
    if name == "*" {
        return Ok(Target::AnyVendor);
    }
    if name == "crm-*" {
        return Ok(Target::AnyCrm);
    }
    if let Some(method) = name.strip_prefix("crm-") {
        return CrmMethod::ALL
            .into_iter()
            .find(|m| {
                serde_json::to_value(m).ok().and_then(|v| v.as_str().map(|s| s.replace('_', "-")))
                    == Some(method.to_owned())
            })
            .map(Target::Crm)
            .ok_or_else(|| {
                format!("unknown CRM.COM method {method:?} (login, release, list, show, create, update, terminate, enable-spend-blocking, disable-spend-blocking, calculate-total-awarded-amount or *)")
            });
    }
    Endpoint::from_name(name)
        .map(Target::Vendor)
        .ok_or_else(|| {
            format!(
                "unknown endpoint {name:?} (ready, begin, upload, end, dealers, *, or crm-METHOD)"
            )
        })
}

fn parse_calls(calls: &str) -> Result<Calls, String> {
    let number = |s: &str| {
        s.parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("{s:?} is not a call number (1, 2, …)"))
    };
    if let Some(from) = calls.strip_suffix('+') {
        return Ok(Calls::Range {
            from: number(from)?,
            to: None,
        });
    }
    if let Some((from, to)) = calls.split_once('-') {
        return Ok(Calls::Range {
            from: number(from)?,
            to: Some(number(to)?),
        });
    }
    let n = number(calls)?;
    Ok(Calls::Range {
        from: n,
        to: Some(n),
    })
}

fn skew(text: &str) -> Result<i64, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not +N or -N"))
}

fn parse_action<'a>(action: &'a str, out: &mut Actions) -> Result<(), String> {
    let (name, value) = match action.split_once('=') {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (action, None),
    };
    let need = |v: Option<&'a str>| v.ok_or_else(|| format!("{name} needs a value ({name}=…)"));
    let duration =
        |v: &str| humantime::parse_duration(v).map_err(|e| format!("{v:?} is not a duration: {e}"));
    match name {
        "status" => {
            let code = need(value)?;
            out.status = Some(
                code.parse()
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or_else(|| format!("{code:?} is not an HTTP status"))?,
            );
        }
        "retry-after" => {
            let v = need(value)?;
            out.retry_after = Some(v.parse().map_err(|_| format!("{v:?} is not seconds"))?);
        }
        "drop" => out.drop = true,
        "timeout" => {
            out.timeout = Some(value.map_or(Ok(Duration::from_secs(3600)), duration)?);
        }
        "running-total" => out.running_total_skew = Some(skew(need(value)?)?),
        "expected-total" => out.expected_total_skew = Some(skew(need(value)?)?),
        "transactionid" => out.transactionid = Some(need(value)?.to_owned()),
        "message" => out.message = Some(need(value)?.to_owned()),
        "drop-after" => out.drop_after = true,
        "delay" => out.delay = Some(duration(need(value)?)?),
        "latency" => out.latency = Some(duration(need(value)?)?),
        "error" => out.error = Some(need(value)?.to_owned()),
        "body" => {
            out.body = Some(match need(value)? {
                "html" => BadBody::Html,
                "garbage" => BadBody::Garbage,
                "empty" => BadBody::Empty,
                other => return Err(format!("unknown body {other:?} (html, garbage, empty)")),
            });
        }
        "" => return Err("empty action".into()),
        other => return Err(format!("unknown action {other:?}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_pick_calls_by_endpoint_and_number() {
        let plan =
            FaultPlan::parse("upload#2:status=503,retry-after=1; end#1-2:drop; *:delay=50ms")
                .unwrap();
        let a = plan.actions(Endpoint::UploadCustomers, 2);
        assert_eq!(a.status, Some(503));
        assert_eq!(a.retry_after, Some(1));
        assert_eq!(a.delay, Some(Duration::from_millis(50)));
        assert!(plan.actions(Endpoint::UploadCustomers, 3).status.is_none());
        assert!(plan.actions(Endpoint::EndTransaction, 2).drop);
        assert!(!plan.actions(Endpoint::EndTransaction, 3).drop);
        assert_eq!(
            plan.actions(Endpoint::ReadyFeed, 9).delay,
            Some(Duration::from_millis(50))
        );
    }

    #[test]
    fn an_error_text_keeps_its_commas() {
        let plan =
            FaultPlan::parse("upload#2:status=200,error=Tried to upload 9, causing it; end:drop")
                .unwrap();
        let a = plan.actions(Endpoint::UploadCustomers, 2);
        assert_eq!(a.error.as_deref(), Some("Tried to upload 9, causing it"));
        assert_eq!(a.status, Some(200));
        assert!(plan.actions(Endpoint::EndTransaction, 1).drop);
    }

    #[test]
    fn crm_methods_have_their_own_rules() {
        let plan =
            FaultPlan::parse("crm-create#2:timeout=5s; crm-*:delay=10ms; *:status=503").unwrap();
        let create = plan.crm_actions(CrmMethod::Create, 2);
        assert_eq!(create.timeout, Some(Duration::from_secs(5)));
        assert_eq!(create.delay, Some(Duration::from_millis(10)));
        assert_eq!(create.status, None, "* is Rider Rewards only");
        assert_eq!(plan.crm_actions(CrmMethod::Create, 1).timeout, None);
        assert_eq!(
            plan.crm_actions(CrmMethod::EnableSpendBlocking, 1).delay,
            Some(Duration::from_millis(10))
        );
        assert!(FaultPlan::parse("crm-enable-spend-blocking:drop").is_ok());
        assert!(FaultPlan::parse("crm-shove:drop").is_err());
    }

    #[test]
    fn latency_applies_to_every_call_it_names() {
        let plan = FaultPlan::parse("*:latency=50ms").unwrap();
        assert_eq!(
            plan.actions(Endpoint::UploadCustomers, 3).latency,
            Some(Duration::from_millis(50))
        );
        assert!(
            !plan
                .actions(Endpoint::UploadCustomers, 3)
                .skips_processing()
        );
    }

    #[test]
    fn open_ranges_and_every_action_parse() {
        let plan = FaultPlan::parse(
            "uploadcustomerprofile#3+:running-total=+1000;begin:error=Authentication failed;ready#1:body=html;end:timeout=2s",
        )
        .unwrap();
        assert_eq!(
            plan.actions(Endpoint::UploadCustomers, 7)
                .running_total_skew,
            Some(1000)
        );
        assert_eq!(
            plan.actions(Endpoint::UploadCustomers, 2)
                .running_total_skew,
            None
        );
        assert_eq!(
            plan.actions(Endpoint::BeginTransaction, 1).error.as_deref(),
            Some("Authentication failed")
        );
        assert_eq!(
            plan.actions(Endpoint::ReadyFeed, 1).body,
            Some(BadBody::Html)
        );
        assert_eq!(
            plan.actions(Endpoint::EndTransaction, 1).timeout,
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn mistakes_name_the_rule() {
        for bad in [
            "upload",
            "uplod:drop",
            "upload#0:drop",
            "upload:status=99",
            "upload:explode",
            "end:delay=soon",
        ] {
            let err = FaultPlan::parse(bad).unwrap_err();
            assert_eq!(err.rule, bad);
        }
    }
}
