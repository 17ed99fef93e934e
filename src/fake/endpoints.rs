//! The fake's own endpoints: the signed echo API (`/fake/v1/echo`), which
//! checks an API call's `apim-*` headers the way the gateway does, and the
//! control API (`/fake/control/*`) that tests in any language steer it with.

use std::time::Duration;

use serde_json::{Value, json};

use super::http::{Answer, Request};
use super::{Fault, FaultTarget, MAX_OVERSIZED_BYTES, Shared, State, TokenRefusal};

/// Checks an API call's three `apim-*` headers the way the gateway does:
/// the token must be valid, and the signature must cover the query and,
/// when the body is JSON (`signing::signs_body`), `signed_body`. Counts
/// the verdict in the echo counters.
pub(super) fn check_signature(
    request: &Request,
    state: &mut State,
    signed_body: &[u8],
) -> Result<(), Refused> {
    let verdict = (|| {
        let token = request
            .header("apim-accesstoken")
            .ok_or("missing apim-accesstoken")?;
        let signature = request
            .header("apim-signature")
            .ok_or("missing apim-signature")?;
        let timestamp: i64 = request
            .header("apim-timestamp")
            .ok_or("missing apim-timestamp")?
            .parse()
            .map_err(|_| "apim-timestamp is not a number")?;
        if let Some(window) = state.timestamp_window()
            && window.refuses(timestamp).is_some()
        {
            return Err(Refused::Request(
                "apim-timestamp is too far from the gateway's clock: check the caller's clock",
            ));
        }
        let (_, secret) = state
            .service
            .valid_token_owner(token)
            .ok_or(Refused::Token)?;
        let secret = crate::secret::AppSecret::new(secret);
        let content_type = request.header("content-type").unwrap_or("");
        let body = if crate::signing::signs_body(content_type) {
            signed_body
        } else {
            &[]
        };
        let expected =
            crate::signing::api_signature(token, &request.query, body, timestamp, &secret);
        if expected == signature {
            Ok(())
        } else {
            Err(Refused::Request("signature mismatch"))
        }
    })();
    match verdict {
        Ok(()) => state.stats.echo_accepted += 1,
        Err(_) => state.stats.echo_rejected += 1,
    }
    verdict
}

/// How the fake answers a call it refused.
pub(super) fn refusal(refused: Refused, state: &State) -> Answer {
    match refused {
        Refused::Token => {
            let why = "access token unknown, retired or expired";
            match state.token_refusal {
                TokenRefusal::Http401 => Answer::json(401, &json!({"status": 401, "msg": why})),
                TokenRefusal::Status1203 => Answer::json(200, &json!({"status": 1203, "msg": why})),
            }
        }
        Refused::Request(why) => Answer::json(401, &json!({"status": 401, "msg": why})),
    }
}

/// The signed test API: checks the three `apim-*` headers; `delayMs=N` in
/// the query makes it answer N ms later (at most a minute), as a slow API.
pub(super) fn echo(request: &Request, shared: &Shared) -> Answer {
    let delay_ms = request
        .query
        .split('&')
        .find_map(|pair| pair.strip_prefix("delayMs="))
        .and_then(|ms| ms.parse::<u64>().ok())
        .unwrap_or(0)
        .min(60_000);
    if delay_ms > 0 {
        let until = std::time::Instant::now() + Duration::from_millis(delay_ms);
        while std::time::Instant::now() < until
            && !shared.stopping.load(std::sync::atomic::Ordering::SeqCst)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let mut state = shared.lock();
    match check_signature(request, &mut state, &request.body) {
        Ok(()) => {
            let body = (request.body.len() <= 64 * 1024)
                .then(|| String::from_utf8_lossy(&request.body).into_owned());
            // The caller's own headers (never the apim-* ones: a token).
            let headers: serde_json::Map<String, Value> = request
                .headers
                .iter()
                .filter(|(name, _)| !name.starts_with("apim-"))
                .map(|(name, value)| (name.clone(), json!(value)))
                .collect();
            Answer::json(
                200,
                &json!({"status": 0, "msg": "signature ok", "data": {
                    "method": request.method, "path": request.path, "query": request.query,
                    "contentType": request.header("content-type"), "headers": headers,
                    "bodyBytes": request.body.len(), "body": body}}),
            )
        }
        Err(refused) => refusal(refused, &state),
    }
}

/// A small mock of EnOS's asset API (`GET /asset-service/v2.1/assets?orgId=…`),
/// signed as any API call: three assets of the organisation, in EnOS's
/// envelope (`code`, `msg`, `requestId`, `data`).
pub(super) fn assets(request: &Request, shared: &Shared) -> Answer {
    let mut state = shared.lock();
    if let Err(refused) = check_signature(request, &mut state, &request.body) {
        return refusal(refused, &state);
    }
    let org = request
        .query
        .split('&')
        .find_map(|pair| pair.strip_prefix("orgId="))
        .unwrap_or("");
    if org.is_empty() {
        return Answer::json(
            200,
            &json!({"code": 99400, "msg": "orgId is required", "requestId": "fake-assets", "data": null}),
        );
    }
    let asset = |id: &str, name: &str, model: &str| {
        json!({"assetId": id, "orgId": org, "modelId": model,
               "name": {"defaultValue": name, "i18nValue": {}},
               "timezone": "+08:00", "attributes": {}})
    };
    Answer::json(
        200,
        &json!({"code": 0, "msg": "OK", "requestId": "fake-assets", "data": [
            asset("Fk8dT1zA", "Inverter 1", "PV_Inverter"),
            asset("Fk8dT1zB", "Inverter 2", "PV_Inverter"),
            asset("Fk8dT1zC", "Weather station", "Weather_Station"),
        ]}),
    )
}

/// Why the signed API refused a call.
pub(super) enum Refused {
    /// The token is unknown, retired or expired.
    Token,
    /// A header is missing or wrong.
    Request(&'static str),
}

impl From<&'static str> for Refused {
    fn from(why: &'static str) -> Self {
        Refused::Request(why)
    }
}

pub(super) fn control(request: &Request, shared: &Shared) -> Answer {
    let action = request.path.trim_start_matches("/fake/control/");
    match (request.method.as_str(), action) {
        ("GET", "stats") => {
            let stats = shared.lock().stats.clone();
            let statuses: serde_json::Map<String, Value> = stats
                .statuses
                .iter()
                .map(|(code, count)| (code.to_string(), json!(count)))
                .collect();
            Answer::json(
                200,
                &json!({
                    "connections": stats.connections, "requests": stats.requests,
                    "getRequests": stats.get_requests, "refreshRequests": stats.refresh_requests,
                    "statuses": statuses, "faults": stats.faults,
                    "echoAccepted": stats.echo_accepted, "echoRejected": stats.echo_rejected,
                    "uploads": stats.uploads, "downloads": stats.downloads,
                    "processed": stats.processed, "rateLimited": stats.rate_limited,
                    "rangeRequests": stats.range_requests,
                }),
            )
        }
        ("POST", "clock") => set_field(request, "skewMs", Value::as_i64, "a number", |skew| {
            shared.lock().clock_skew_ms = skew;
        }),
        ("POST", "timestamp-window") => set_field(
            request,
            "seconds",
            Value::as_u64,
            "a whole number, 0: off",
            |seconds| {
                shared.lock().timestamp_window =
                    (seconds > 0).then(|| Duration::from_secs(seconds));
            },
        ),
        ("POST", "token-refusal") => {
            let form = serde_json::from_slice::<Value>(&request.body)
                .ok()
                .and_then(|v| v.get("form")?.as_str().map(str::to_string));
            let refusal = match form.as_deref() {
                Some("http-401") => TokenRefusal::Http401,
                Some("status-1203") => TokenRefusal::Status1203,
                _ => {
                    return Answer::json(
                        400,
                        &json!({"status": 400, "msg": "\"form\" is \"http-401\" or \"status-1203\""}),
                    );
                }
            };
            shared.lock().token_refusal = refusal;
            Answer::json(200, &json!({"status": 0}))
        }
        ("GET", "file-digest") => super::files::digest(request, &shared.lock()),
        ("GET", "calls") => Answer::json(200, &super::limits::calls_json(&shared.lock())),
        ("GET", "token-requests") => {
            let seen: Vec<Value> = shared
                .lock()
                .service
                .requests_seen()
                .into_iter()
                .map(|r| {
                    json!({"kind": r.kind, "appKey": r.app_key, "timestamp": r.timestamp,
                           "atWallMs": r.at_wall_ms, "status": r.status})
                })
                .collect();
            Answer::json(200, &json!({"status": 0, "requests": seen}))
        }
        ("POST", "rate-limit") | ("POST", "outage") => {
            let body = serde_json::from_slice::<Value>(&request.body).unwrap_or(Value::Null);
            let mut state = shared.lock();
            let set = if action == "rate-limit" {
                super::limits::set_rate_limit(&mut state, &body)
            } else {
                super::limits::set_outage(&mut state, &body)
            };
            match set {
                Ok(()) => Answer::json(200, &json!({"status": 0})),
                Err(why) => Answer::json(400, &json!({"status": 400, "msg": why})),
            }
        }
        ("POST", "files") => set_field(request, "version", Value::as_u64, "a number", |version| {
            shared.lock().file_version = version;
        }),
        ("POST", "expire-tokens") => {
            shared.lock().service.expire_all();
            Answer::json(200, &json!({"status": 0}))
        }
        ("POST", "fault") => match parse_fault(&request.body) {
            Ok((None, _)) => {
                let mut state = shared.lock();
                state.faults.clear();
                state.download_cuts.clear();
                Answer::json(200, &json!({"status": 0}))
            }
            Ok((Some((target, fault)), times)) => {
                shared.lock().queue_fault(target, fault, times);
                Answer::json(200, &json!({"status": 0}))
            }
            Err(why) => Answer::json(400, &json!({"status": 400, "msg": why})),
        },
        _ => Answer::text(404, "text/plain", "unknown control action"),
    }
}

/// A control that sets one value from the JSON body's `field`: 200, or 400
/// naming the field and its `requirement` when it is missing or unreadable.
fn set_field<T>(
    request: &Request,
    field: &str,
    read: impl FnOnce(&Value) -> Option<T>,
    requirement: &str,
    apply: impl FnOnce(T),
) -> Answer {
    let value = serde_json::from_slice::<Value>(&request.body)
        .ok()
        .and_then(|body| read(body.get(field)?));
    match value {
        Some(value) => {
            apply(value);
            Answer::json(200, &json!({"status": 0}))
        }
        None => Answer::json(
            400,
            &json!({"status": 400, "msg": format!("\"{field}\" ({requirement}) is required")}),
        ),
    }
}

/// `{"fault": NAME, "times": N, "target": "token" | "api", ...}`; `None`
/// for `clear`.
fn parse_fault(body: &[u8]) -> Result<(Option<(FaultTarget, Fault)>, usize), String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let times = value
        .get("times")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .min(10_000) as usize;
    let number = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_u64)
            .ok_or(format!("\"{name}\" (a number) is required"))
    };
    let fault = match value.get("fault").and_then(Value::as_str).unwrap_or("") {
        "http500" => Fault::ServerErrorHtml,
        "not-json" => Fault::NotJson,
        "oversized" => match number("bytes")? {
            bytes if bytes <= MAX_OVERSIZED_BYTES => Fault::Oversized(bytes),
            _ => return Err(format!("\"bytes\" is at most {MAX_OVERSIZED_BYTES}")),
        },
        "delay" => Fault::Delay(Duration::from_millis(number("ms")?)),
        "drop" => Fault::DropConnection,
        "process-drop" => Fault::ProcessThenDrop,
        "truncated" => Fault::Truncated,
        "redirect" => Fault::Redirect,
        "status" => Fault::GatewayStatus(number("status")? as i32),
        "cut-download" => Fault::CutDownload(number("bytes")?),
        "clear" => return Ok((None, 0)),
        other => return Err(format!("unknown fault \"{other}\"")),
    };
    let target = match value.get("target").and_then(Value::as_str) {
        None | Some("any") => FaultTarget::Any,
        Some("token") => FaultTarget::TokenRequests,
        Some("api") => FaultTarget::ApiCalls,
        Some(other) => {
            return Err(format!(
                "unknown target \"{other}\": \"token\" (Get and Refresh), \"api\" (every other request) or \"any\""
            ));
        }
    };
    Ok((Some((target, fault)), times))
}
