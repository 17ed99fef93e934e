//! What stands between a signed API call and its service at the fake: a
//! rate limiter (a token bucket per app key, answering 429 with
//! `Retry-After`, as EnOS API Management does), an outage switch (502, 503
//! or 504 for a while, with or without the call processed behind it), and
//! the log of every API call with whether it was processed.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::http::{Answer, Request};
use super::{Shared, State};

/// The API call log keeps at most this many entries.
const MAX_LOGGED_CALLS: usize = 100_000;

/// A limit of calls per second per app key, with a burst.
#[derive(Clone, Copy, Debug)]
pub(super) struct RateLimit {
    pub(super) per_second: f64,
    pub(super) burst: f64,
}

/// One app key's bucket.
#[derive(Debug)]
pub(super) struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// API calls answer `status` until `until` (or for `times` more calls).
#[derive(Clone, Debug)]
pub(super) struct Outage {
    pub(super) status: u16,
    pub(super) until: Option<Instant>,
    pub(super) times: Option<u64>,
    /// The service processes the call; the gateway's answer is lost.
    pub(super) processed: bool,
    pub(super) retry_after: Option<String>,
}

/// One API call, as the fake saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiCall {
    pub method: String,
    pub path: String,
    /// When it arrived, in milliseconds since the fake started.
    pub at_ms: u64,
    pub status: u16,
    /// Whether the service behind the gateway acted on it.
    pub processed: bool,
}

/// The limiter, the outage switch and the call log.
#[derive(Debug, Default)]
pub(super) struct Limits {
    pub(super) rate_limit: Option<RateLimit>,
    buckets: HashMap<String, Bucket>,
    pub(super) outage: Option<Outage>,
    pub(super) calls: VecDeque<ApiCall>,
}

/// What the gate decided for one call.
pub(super) enum Gate {
    /// On to the service.
    Pass,
    /// This answer, without the service.
    Refuse(Answer),
    /// The service acts on the call, then the caller gets this answer.
    ProcessThenAnswer(Answer),
}

impl Limits {
    /// Takes one call from `app_key`'s bucket; the wait until the next one
    /// when it is empty.
    fn take(&mut self, app_key: &str, now: Instant) -> Result<(), Duration> {
        let Some(limit) = self.rate_limit else {
            return Ok(());
        };
        let bucket = self.buckets.entry(app_key.to_string()).or_insert(Bucket {
            tokens: limit.burst,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.per_second).min(limit.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64(
            (1.0 - bucket.tokens) / limit.per_second.max(0.001),
        ))
    }

    /// The outage's answer for the next call, if one is on.
    fn outage_answer(&mut self, now: Instant) -> Option<(Answer, bool)> {
        let outage = self.outage.as_mut()?;
        let over = outage.until.is_some_and(|until| now >= until) || outage.times == Some(0);
        if over {
            self.outage = None;
            return None;
        }
        if let Some(times) = &mut outage.times {
            *times -= 1;
        }
        let mut answer = Answer::json(
            outage.status,
            &json!({"code": outage.status, "msg": "service unavailable (the fake's outage switch)"}),
        );
        answer.content_type = "application/json;charset=UTF-8";
        if let Some(retry_after) = &outage.retry_after {
            answer
                .extra_headers
                .push(("Retry-After".into(), retry_after.clone()));
        }
        Some((answer, outage.processed))
    }
}

/// Whether `request` may reach its service now.
pub(super) fn gate(request: &Request, shared: &Shared) -> Gate {
    let mut state = shared.lock();
    let now = Instant::now();
    let app_key = request
        .header("apim-accesstoken")
        .and_then(|token| state.service.valid_token_owner(token))
        .map(|(app_key, _)| app_key.to_string());
    if let Some(app_key) = app_key {
        if let Err(wait) = state.limits.take(&app_key, now) {
            state.stats.rate_limited += 1;
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut answer = Answer::json(
                429,
                &json!({"code": 429, "msg": "API call rate limit exceeded (the fake's limiter)"}),
            );
            answer
                .extra_headers
                .push(("Retry-After".into(), seconds.to_string()));
            return Gate::Refuse(answer);
        }
    }
    match state.limits.outage_answer(now) {
        Some((answer, true)) => Gate::ProcessThenAnswer(answer),
        Some((answer, false)) => Gate::Refuse(answer),
        None => Gate::Pass,
    }
}

/// Logs one API call.
pub(super) fn record(
    state: &mut State,
    request: &Request,
    started: Instant,
    status: u16,
    processed: bool,
) {
    if processed {
        state.stats.processed += 1;
    }
    let calls = &mut state.limits.calls;
    if calls.len() >= MAX_LOGGED_CALLS {
        calls.pop_front();
    }
    calls.push_back(ApiCall {
        method: request.method.clone(),
        path: request.path.clone(),
        at_ms: started.elapsed().as_millis() as u64,
        status,
        processed,
    });
}

/// `POST /fake/control/rate-limit` `{"perSecond": 150, "burst": 20}`
/// (`perSecond` 0: off).
pub(super) fn set_rate_limit(state: &mut State, body: &Value) -> Result<(), String> {
    let number = |name: &str| {
        body.get(name)
            .and_then(Value::as_f64)
            .filter(|n| *n >= 0.0)
            .ok_or(format!("\"{name}\" (a number, at least 0) is required"))
    };
    let per_second = number("perSecond")?;
    state.limits.buckets.clear();
    state.limits.rate_limit = (per_second > 0.0).then(|| RateLimit {
        per_second,
        burst: body
            .get("burst")
            .and_then(Value::as_f64)
            .unwrap_or(per_second)
            .max(1.0),
    });
    Ok(())
}

/// `POST /fake/control/outage` `{"status": 503, "ms": 5000}` or
/// `{"status": 503, "times": 2}`, with `"processed": true` (the service
/// acts, the answer is lost) and `"retryAfter": "2"`; `{"status": 0}` ends it.
pub(super) fn set_outage(state: &mut State, body: &Value) -> Result<(), String> {
    let status = body
        .get("status")
        .and_then(Value::as_u64)
        .ok_or("\"status\" (502, 503, 504 or 0) is required")?;
    if status == 0 {
        state.limits.outage = None;
        return Ok(());
    }
    if !(500..=599).contains(&status) {
        return Err("\"status\" is a 5xx status, or 0 to end the outage".into());
    }
    let until = body
        .get("ms")
        .and_then(Value::as_u64)
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    let times = body.get("times").and_then(Value::as_u64);
    if until.is_none() && times.is_none() {
        return Err("\"ms\" or \"times\" says how long the outage lasts".into());
    }
    state.limits.outage = Some(Outage {
        status: status as u16,
        until,
        times,
        processed: body
            .get("processed")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        retry_after: body.get("retryAfter").and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }),
    });
    Ok(())
}

/// `GET /fake/control/calls`: the API call log.
pub(super) fn calls_json(state: &State) -> Value {
    let calls: Vec<Value> = state
        .limits
        .calls
        .iter()
        .map(|call| {
            json!({"method": call.method, "path": call.path, "atMs": call.at_ms,
                   "status": call.status, "processed": call.processed})
        })
        .collect();
    json!({"status": 0, "calls": calls})
}
