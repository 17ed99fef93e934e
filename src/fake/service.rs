//! The token service's rules, as `token-service.md` describes them, without
//! any I/O: a request body in, a status code and an envelope out.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::service_status::*;

/// How many `encryption` values are remembered for the replay check.
const REMEMBERED_ENCRYPTIONS: usize = 1_000_000;
/// Token requests kept for `/fake/control/token-requests`.
const REMEMBERED_REQUESTS: usize = 100_000;

/// A token the fake has issued.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub app_key: String,
    pub expires_at: Instant,
}

/// Everything the service remembers.
#[derive(Debug)]
pub struct TokenService {
    apps: HashMap<String, String>,
    lifetime: Duration,
    tokens: HashMap<String, IssuedToken>,
    current_token: HashMap<String, String>,
    seen_encryptions: HashSet<String>,
    seen_order: VecDeque<String>,
    issued: u64,
    /// Every token request answered (the last [`REMEMBERED_REQUESTS`]).
    log: VecDeque<TokenRequestSeen>,
}

/// A Get or Refresh as the fake saw it: for tests of timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequestSeen {
    /// "get" or "refresh".
    pub kind: &'static str,
    pub app_key: String,
    /// The request's `timestamp` (0 when it had none).
    pub timestamp: i64,
    /// The fake's wall clock (UNIX ms) when it answered.
    pub at_wall_ms: i64,
    /// The gateway status answered (0: a token).
    pub status: i32,
}

/// Which token request a request is (the core's `Fetch`, as the fake sees it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetch {
    Get,
    Refresh,
}

/// How far a request's timestamp may be from the fake's clock.
#[derive(Clone, Copy, Debug)]
pub struct TimestampWindow {
    /// The fake's clock now (the real one, shifted by the `clock` control).
    pub now_ms: i64,
    /// The largest distance accepted, either way.
    pub window: Duration,
}

impl TimestampWindow {
    /// Why `timestamp_ms` is refused, or `None` if it is within the window.
    pub fn refuses(&self, timestamp_ms: i64) -> Option<String> {
        let off_ms = timestamp_ms.saturating_sub(self.now_ms);
        if off_ms.unsigned_abs() as u128 <= self.window.as_millis() {
            return None;
        }
        let side = if off_ms > 0 { "ahead of" } else { "behind" };
        Some(format!(
            "timestamp is {:.1} s {side} the gateway's clock (it accepts {} s either way): check the caller's clock",
            off_ms.unsigned_abs() as f64 / 1000.0,
            self.window.as_secs()
        ))
    }
}

impl TokenService {
    pub fn new(apps: HashMap<String, String>, lifetime: Duration) -> Self {
        TokenService {
            apps,
            lifetime,
            tokens: HashMap::new(),
            current_token: HashMap::new(),
            seen_encryptions: HashSet::new(),
            seen_order: VecDeque::new(),
            issued: 0,
            log: VecDeque::new(),
        }
    }

    pub fn set_lifetime(&mut self, lifetime: Duration) {
        self.lifetime = lifetime;
    }

    /// Makes every issued token expired now (refresh then answers 1203).
    pub fn expire_all(&mut self) {
        let now = Instant::now();
        for token in self.tokens.values_mut() {
            token.expires_at = now;
        }
    }

    /// The app that owns `token`, and its secret, when the token is valid now.
    pub fn valid_token_owner(&self, token: &str) -> Option<(&str, &str)> {
        let issued = self.tokens.get(token)?;
        if issued.expires_at <= Instant::now() {
            return None;
        }
        let secret = self.apps.get(&issued.app_key)?;
        Some((issued.app_key.as_str(), secret.as_str()))
    }

    /// Answers one Get or Refresh body: the gateway status and the envelope.
    #[cfg(test)]
    pub fn handle(&mut self, fetch: Fetch, body: &[u8]) -> (i32, Value) {
        self.handle_within(fetch, body, None)
    }

    /// Answers a token request; with a `window`, a `timestamp` outside it
    /// is refused (1004) as a gateway that checks the clock would.
    pub fn handle_within(
        &mut self,
        fetch: Fetch,
        body: &[u8],
        window: Option<TimestampWindow>,
    ) -> (i32, Value) {
        let answer = self.answer(fetch, body, window);
        self.record(
            fetch,
            body,
            answer
                .as_ref()
                .map_or_else(|(status, _)| *status, |_| SUCCESS),
        );
        match answer {
            Ok((token, expire)) => (
                SUCCESS,
                json!({
                    "status": 0,
                    "msg": "SUCCESS",
                    "business": "apim-token-service",
                    "data": {"accessToken": token, "expire": expire},
                }),
            ),
            Err((status, message)) => (
                status,
                json!({
                    "status": status,
                    "msg": message,
                    "business": "apim-token-service",
                    "data": null,
                }),
            ),
        }
    }

    fn answer(
        &mut self,
        fetch: Fetch,
        body: &[u8],
        window: Option<TimestampWindow>,
    ) -> Result<(String, u64), (i32, String)> {
        let fail = |status: i32, message: &str| Err((status, message.to_string()));
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
            return fail(INVALID_PARAMETER, "request body is not a JSON object");
        };
        let text = |name: &str| -> Result<String, (i32, String)> {
            match fields.get(name) {
                None | Some(Value::Null) => Err((EMPTY_PARAMETER, format!("{name} is empty"))),
                Some(Value::String(s)) if s.is_empty() => {
                    Err((EMPTY_PARAMETER, format!("{name} is empty")))
                }
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err((INVALID_PARAMETER, format!("{name} must be a string"))),
            }
        };
        let app_key = text("appKey")?;
        let encryption = text("encryption")?;
        let timestamp = match fields.get("timestamp") {
            None | Some(Value::Null) => return fail(EMPTY_PARAMETER, "timestamp is empty"),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(t) => t,
                None => return fail(INVALID_PARAMETER, "timestamp must be an integer"),
            },
            Some(_) => return fail(INVALID_PARAMETER, "timestamp must be a number"),
        };
        let access_token = match fetch {
            Fetch::Refresh => Some(text("accessToken")?),
            Fetch::Get => None,
        };
        let Some(secret) = self.apps.get(&app_key) else {
            return fail(UNKNOWN_APP_KEY, "appKey does not exist");
        };
        let expected = hex::encode(Sha256::digest(format!("{app_key}{timestamp}{secret}")));
        if expected != encryption {
            return fail(INVALID_ENCRYPTION, "encryption is invalid");
        }
        if let Some(refusal) = window.and_then(|window| window.refuses(timestamp)) {
            return fail(INVALID_PARAMETER, &refusal);
        }
        if !self.remember_encryption(encryption) {
            return fail(REPEATED_REQUEST, "repeated request");
        }
        let now = Instant::now();
        match access_token {
            None => {
                if let Some(token) = self.current_token.get(&app_key) {
                    if let Some(issued) = self.tokens.get(token) {
                        if issued.expires_at > now {
                            let left = issued.expires_at.duration_since(now).as_secs();
                            return Ok((token.clone(), left));
                        }
                    }
                }
                Ok(self.issue(&app_key))
            }
            Some(old) => {
                match self.tokens.get(&old) {
                    Some(issued) if issued.app_key == app_key => {
                        if issued.expires_at <= now {
                            return fail(TOKEN_EXPIRED, "access token has expired");
                        }
                    }
                    _ => return fail(REFRESH_FAILED, "access token is unknown"),
                }
                self.tokens.remove(&old);
                Ok(self.issue(&app_key))
            }
        }
    }

    /// Every token request answered so far, oldest first.
    pub fn requests_seen(&self) -> Vec<TokenRequestSeen> {
        self.log.iter().cloned().collect()
    }

    fn record(&mut self, fetch: Fetch, body: &[u8], status: i32) {
        let fields = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
        if self.log.len() >= REMEMBERED_REQUESTS {
            self.log.pop_front();
        }
        self.log.push_back(TokenRequestSeen {
            kind: match fetch {
                Fetch::Get => "get",
                Fetch::Refresh => "refresh",
            },
            app_key: fields["appKey"].as_str().unwrap_or("").to_string(),
            timestamp: fields["timestamp"].as_i64().unwrap_or(0),
            at_wall_ms: crate::time::timestamp::wall_clock_ms(),
            status,
        });
    }

    /// False when `encryption` was seen before.
    fn remember_encryption(&mut self, encryption: String) -> bool {
        if self.seen_encryptions.contains(&encryption) {
            return false;
        }
        if self.seen_order.len() >= REMEMBERED_ENCRYPTIONS {
            if let Some(oldest) = self.seen_order.pop_front() {
                self.seen_encryptions.remove(&oldest);
            }
        }
        self.seen_order.push_back(encryption.clone());
        self.seen_encryptions.insert(encryption);
        true
    }

    fn issue(&mut self, app_key: &str) -> (String, u64) {
        self.issued += 1;
        let seed = format!("{app_key}/{}/{:?}", self.issued, Instant::now());
        let digest = hex::encode(Sha256::digest(seed));
        let token = format!("fk{:06}{}", self.issued % 1_000_000, &digest[..22]);
        let expires_at = Instant::now() + self.lifetime;
        self.tokens.insert(
            token.clone(),
            IssuedToken {
                app_key: app_key.to_string(),
                expires_at,
            },
        );
        self.current_token
            .insert(app_key.to_string(), token.clone());
        // Forget tokens that expired long ago, to stay bounded.
        let horizon = Instant::now().checked_sub(Duration::from_secs(3600));
        if let Some(horizon) = horizon {
            self.tokens.retain(|_, t| t.expires_at > horizon);
        }
        (token, self.lifetime.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> TokenService {
        let apps = HashMap::from([("key".to_string(), "secret".to_string())]);
        TokenService::new(apps, Duration::from_secs(7200))
    }

    fn body(app_key: &str, timestamp: i64, secret: &str, token: Option<&str>) -> Vec<u8> {
        let encryption = hex::encode(Sha256::digest(format!("{app_key}{timestamp}{secret}")));
        let mut v = json!({"appKey": app_key, "encryption": encryption, "timestamp": timestamp});
        if let Some(token) = token {
            v["accessToken"] = json!(token);
        }
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn get_refresh_and_every_error_code() {
        let mut s = service();
        let (status, first) = s.handle(Fetch::Get, &body("key", 1, "secret", None));
        assert_eq!(status, 0);
        let token = first["data"]["accessToken"].as_str().unwrap().to_string();
        assert_eq!(first["data"]["expire"], 7200);
        let (_, again) = s.handle(Fetch::Get, &body("key", 2, "secret", None));
        assert_eq!(
            again["data"]["accessToken"],
            token.as_str(),
            "one token per app"
        );
        assert_eq!(
            s.handle(Fetch::Get, &body("key", 2, "secret", None)).0,
            1001
        );
        assert_eq!(
            s.handle(Fetch::Get, &body("nokey", 3, "secret", None)).0,
            1002
        );
        assert_eq!(s.handle(Fetch::Get, &body("key", 4, "wrong", None)).0, 1003);
        assert_eq!(s.handle(Fetch::Get, b"{\"appKey\":1}").0, 1004);
        assert_eq!(s.handle(Fetch::Get, b"[]").0, 1004);
        assert_eq!(
            s.handle(
                Fetch::Get,
                b"{\"appKey\":\"key\",\"encryption\":\"x\",\"timestamp\":\"5\"}"
            )
            .0,
            1004
        );
        assert_eq!(s.handle(Fetch::Get, b"{\"appKey\":\"\"}").0, 1202);
        assert_eq!(
            s.handle(Fetch::Refresh, &body("key", 5, "secret", None)).0,
            1202
        );
        assert_eq!(
            s.handle(Fetch::Refresh, &body("key", 6, "secret", Some("unknown")))
                .0,
            1204
        );
        let (status, refreshed) = s.handle(Fetch::Refresh, &body("key", 7, "secret", Some(&token)));
        assert_eq!(status, 0);
        let new_token = refreshed["data"]["accessToken"].as_str().unwrap();
        assert_ne!(new_token, token);
        s.expire_all();
        assert_eq!(
            s.handle(Fetch::Refresh, &body("key", 8, "secret", Some(new_token)))
                .0,
            1203
        );
    }
}
