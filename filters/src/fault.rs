//! `fault`: injects failures to test how clients and services cope: answers a share of requests
//! with an error status, and delays a share before they go on.
//!
//! ```yaml
//! - fault: {abort: {percent: 10, status: 503}, delay: {percent: 10, ms: 200}, header: x-portico-fault}
//! ```
//! `percent` may be fractional (`0.5`); a request may get both, the delay first. With `header`
//! set, a request carrying it (`x-portico-fault: abort`, `delay` or `abort, delay`) gets the
//! named faults whatever the percentages; `percent: 0` then makes a fault header-only. Any client
//! can send that header, so keep `header` off listeners that face the public. An abort answers
//! `{"error": "fault_injected", ...}` with the configured status.

use crate::{BuildContext, BuildError, Filter, FilterFactory, Flow, Reject, RequestCtx, Session};
use async_trait::async_trait;
use http::HeaderName;
use serde::Deserialize;
use std::time::Duration;

/// Answer a share of requests with an error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbortConfig {
    /// Share of requests aborted, 0 to 100.
    pub percent: f64,
    /// The status answered, 400 to 599; 503 by default.
    #[serde(default = "default_status")]
    pub status: u16,
}

fn default_status() -> u16 {
    503
}

/// Delay a share of requests.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayConfig {
    /// Share of requests delayed, 0 to 100.
    pub percent: f64,
    /// How long, in milliseconds.
    pub ms: u64,
}

/// The `fault` filter's config: `abort`, `delay` or both.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// Answer a share of requests with an error status.
    pub abort: Option<AbortConfig>,
    /// Hold a share of requests before they go on.
    pub delay: Option<DelayConfig>,
    /// A request header that forces faults by name (`abort`, `delay`).
    pub header: Option<String>,
}

/// The `fault` filter.
#[derive(Debug)]
pub struct Fault {
    /// Percent and status.
    abort: Option<(f64, u16)>,
    /// Percent and duration.
    delay: Option<(f64, Duration)>,
    header: Option<HeaderName>,
}

/// The faults one request gets.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Injection {
    /// Sleep this long first.
    delay: Option<Duration>,
    /// Then answer with this status.
    abort: Option<u16>,
}

impl Fault {
    /// Decides one request's faults. `forced` is the value of the `header` (when configured and
    /// present); `roll` returns a uniform number in `0.0..100.0` and is called once per
    /// configured fault that the header did not force (the request phase rolls `fastrand`;
    /// tests roll what they need).
    fn decide(&self, forced: Option<&str>, mut roll: impl FnMut() -> f64) -> Injection {
        let named = |fault: &str| forced.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(fault)));
        let mut hit = |percent: f64, fault: &str| named(fault) || roll() < percent;
        Injection {
            delay: self.delay.and_then(|(percent, d)| hit(percent, "delay").then_some(d)),
            abort: self.abort.and_then(|(percent, status)| hit(percent, "abort").then_some(status)),
        }
    }
}

fn check_percent(percent: f64, at: &str) -> Result<f64, BuildError> {
    if (0.0..=100.0).contains(&percent) {
        Ok(percent)
    } else {
        Err(BuildError::at(at, "must be between 0 and 100"))
    }
}

impl FilterFactory for Fault {
    const NAME: &'static str = "fault";
    type Config = FaultConfig;

    fn build(config: FaultConfig, _cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        if config.abort.is_none() && config.delay.is_none() {
            return Err(BuildError::whole("set `abort`, `delay` or both"));
        }
        let abort = match config.abort {
            Some(a) if !(400..=599).contains(&a.status) => {
                return Err(BuildError::at("abort.status", "must be between 400 and 599"))
            }
            Some(a) => Some((check_percent(a.percent, "abort.percent")?, a.status)),
            None => None,
        };
        let delay = match config.delay {
            Some(d) => Some((check_percent(d.percent, "delay.percent")?, Duration::from_millis(d.ms))),
            None => None,
        };
        let header = match config.header {
            Some(name) => Some(
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| BuildError::at("header", "invalid header name"))?,
            ),
            None => None,
        };
        Ok(Fault { abort, delay, header })
    }
}

#[async_trait]
impl Filter for Fault {
    async fn request(&self, session: &mut Session, _ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        let forced =
            self.header.as_ref().and_then(|name| session.req_header().headers.get(name)).and_then(|v| v.to_str().ok());
        let injection = self.decide(forced, || fastrand::f64() * 100.0);
        if let Some(delay) = injection.delay {
            tokio::time::sleep(delay).await;
        }
        match injection.abort {
            Some(status) => Ok(Flow::Reject(Reject::new(status, "fault_injected", "fault injected"))),
            None => Ok(Flow::Continue),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, FlowExt, TestRequest};
    use std::time::Instant;

    fn build(yaml: &str) -> Result<Fault, BuildError> {
        testkit::build(yaml, &testkit::context())
    }

    const BOTH: &str = "{abort: {percent: 10, status: 502}, delay: {percent: 50, ms: 200}, header: X-Portico-Fault}";

    #[test]
    fn percentages_decide_without_the_header() {
        let f = build(BOTH).expect("valid");
        let ms200 = Some(Duration::from_millis(200));
        // Rolls go delay first, then abort.
        let mut rolls = [49.9, 9.9].into_iter();
        assert_eq!(f.decide(None, || rolls.next().expect("roll")), Injection { delay: ms200, abort: Some(502) });
        let mut rolls = [50.0, 10.0].into_iter();
        assert_eq!(f.decide(None, || rolls.next().expect("roll")), Injection::default());
        let mut rolls = [0.0, 99.9].into_iter();
        assert_eq!(f.decide(None, || rolls.next().expect("roll")), Injection { delay: ms200, abort: None });
    }

    #[test]
    fn the_header_forces_named_faults() {
        let f = build(BOTH).expect("valid");
        let never = || 99.99;
        assert_eq!(f.decide(Some("abort"), never).abort, Some(502));
        assert_eq!(f.decide(Some("abort"), never).delay, None);
        assert_eq!(f.decide(Some("Delay"), never).delay, Some(Duration::from_millis(200)));
        let both = f.decide(Some("delay, abort"), || panic!("forced faults do not roll"));
        assert_eq!(both, Injection { delay: Some(Duration::from_millis(200)), abort: Some(502) });
        assert_eq!(f.decide(Some("nothing"), never), Injection::default());
    }

    #[test]
    fn only_configured_faults_apply() {
        let f = build("{delay: {percent: 0, ms: 5}}").expect("valid");
        assert_eq!(f.decide(Some("abort"), || 0.0), Injection::default(), "0% never; abort not configured");
        let f = build("{abort: {percent: 100}}").expect("valid");
        assert_eq!(f.decide(None, || 99.999).abort, Some(503), "100% always; 503 by default");
    }

    #[tokio::test]
    async fn requests_get_the_faults() {
        // Forced by the header (0% otherwise): the configured status, as a JSON error.
        let f = build("{abort: {percent: 0, status: 502}, header: x-portico-fault}").expect("valid");
        let forced = TestRequest::get("/", &[("x-portico-fault", "abort")]).await.request(&f).await.expect_reject();
        assert_eq!((forced.status, forced.error, &*forced.message), (502, "fault_injected", "fault injected"));
        TestRequest::get("/", &[]).await.request(&f).await.expect_continue();
        // 100%: every request, 503 by default.
        let f = build("{abort: {percent: 100}}").expect("valid");
        assert_eq!(TestRequest::get("/", &[]).await.request(&f).await.expect_reject().status, 503);
        // A delay holds the request, then it goes on.
        let f = build("{delay: {percent: 100, ms: 30}}").expect("valid");
        let started = Instant::now();
        TestRequest::get("/", &[]).await.request(&f).await.expect_continue();
        assert!(started.elapsed() >= Duration::from_millis(30), "held {:?}", started.elapsed());
    }

    #[test]
    fn config_is_checked() {
        let err = |yaml: &str| build(yaml).expect_err(yaml);
        assert_eq!(err("{}").message, "set `abort`, `delay` or both");
        assert_eq!(err("{abort: {percent: 101}}").path, "abort.percent");
        assert_eq!(err("{abort: {percent: -1}}").path, "abort.percent");
        assert_eq!(err("{abort: {percent: .nan}}").path, "abort.percent");
        assert_eq!(err("{abort: {percent: 5, status: 200}}").path, "abort.status");
        assert_eq!(err("{abort: {percent: 5, status: 600}}").path, "abort.status");
        assert_eq!(err("{delay: {percent: 200, ms: 1}}").path, "delay.percent");
        assert_eq!(err("{delay: {percent: 1, ms: 1}, header: \"bad name\"}").path, "header");
        assert!(err("{delay: {percent: 1}}").message.contains("ms"));
    }
}
