//! One attempt of a call: the token, the request signed with a fresh
//! timestamp over exactly the query (and JSON body) sent, its head, and as
//! much of its body as tells a token refusal.

use super::call::Call;
use super::output::Output;
use crate::error::Error;
use crate::transport::{AnswerBody, Attempt, Exchange};

/// A token refusal is told from a JSON body at most this long.
pub(super) const MAX_REFUSAL_BODY: usize = 64 * 1024;

/// An answer whose head has arrived, with the start of its body when that
/// had to be read to tell a token refusal.
pub(super) struct Opened<'t> {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: AnswerBody<'t>,
    /// Bytes already read from `body`.
    pub(super) prefix: Vec<u8>,
    /// `prefix` is the whole body.
    pub(super) complete: bool,
}

impl Opened<'_> {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }
}

impl Drop for Opened<'_> {
    fn drop(&mut self) {
        crate::secret::wipe(&mut self.prefix);
    }
}

impl<'c> Call<'c> {
    /// The managed token, within what is left of the call's time.
    pub(super) fn token(&self) -> Result<String, Error> {
        let left = self.time_left()?;
        let context = self.context;
        context
            .managed
            .access_token_within(context.source, left, str::to_string)
    }

    /// Sends one attempt signed with `token`, with `headers`, and waits for
    /// the answer's head; reads as much of the body as tells a token
    /// refusal (all of it when it is kept in memory).
    pub(super) fn send_attempt(
        &self,
        token: &str,
        headers: &[(String, String)],
    ) -> Result<Opened<'c>, Error> {
        let (context, spec) = (self.context, self.spec);
        let shared = context.managed.shared_slot();
        let exchange = Exchange {
            method: spec.method,
            path_and_query: spec.path,
            timing: self.timing,
            resend_on_stale_connection: spec.idempotent() && spec.body.replayable(),
            pass_encoded_answers: true,
        };
        let count_bytes = spec.progress.is_some();
        let meter = &self.meter;
        let make_attempt = || -> Result<Attempt<'_>, Error> {
            let timestamp = crate::token_request::next_api_call_timestamp_ms(shared);
            let signature = crate::signing::api_signature_streaming(
                token,
                spec.query(),
                timestamp,
                context.app_secret,
                |hasher| spec.body.feed_signature(hasher),
            )?;
            let opened = spec.body.open(meter, count_bytes)?;
            let mut attempt_headers = vec![
                ("apim-accesstoken", token.to_string()),
                ("apim-signature", signature),
                ("apim-timestamp", timestamp.to_string()),
            ];
            if let Some(content_type) = opened.content_type {
                attempt_headers.push(("content-type", content_type));
            }
            Ok(Attempt {
                headers: attempt_headers,
                extra_headers: headers,
                body: opened.body,
            })
        };
        let mut counted = || {
            self.count_attempts(1);
            make_attempt()
        };
        let mut answer = context.transport.open(&exchange, &mut counted)?;
        let status = answer.status;
        let content_length = answer.content_length();
        let headers = std::mem::take(&mut answer.headers);
        let memory = matches!(spec.output, Output::Memory);
        let limit = if memory {
            context.max_response_bytes
        } else {
            u64::MAX
        };
        let mut body = answer.into_body(limit);
        let (prefix, complete) = if memory {
            let whole = body.read_all()?;
            self.meter.set_receive_total(content_length);
            self.meter.add_received(whole.len() as u64);
            (whole, true)
        } else if status == 401 || could_be_refusal(&headers, content_length) {
            read_up_to(&mut body, MAX_REFUSAL_BODY)?
        } else {
            (Vec::new(), false)
        };
        Ok(Opened {
            status,
            headers,
            body,
            prefix,
            complete,
        })
    }
}

/// Whether a streamed answer may be a token refusal in a JSON envelope:
/// a JSON (or untyped) body of at most 64 KiB.
fn could_be_refusal(headers: &[(String, String)], content_length: Option<u64>) -> bool {
    let content_type = headers
        .iter()
        .find(|(name, _)| name == "content-type")
        .map(|(_, value)| value.as_str());
    let json = content_type.is_none_or(crate::signing::signs_body);
    json && content_length.is_none_or(|length| length <= MAX_REFUSAL_BODY as u64)
}

/// Reads at most `max` bytes of `body`; true when that was all of it.
fn read_up_to(body: &mut AnswerBody<'_>, max: usize) -> Result<(Vec<u8>, bool), Error> {
    let mut prefix = vec![0u8; max + 1];
    let mut filled = 0;
    while filled < prefix.len() {
        let read = body.read(&mut prefix[filled..])?;
        if read == 0 {
            prefix.truncate(filled);
            return Ok((prefix, true));
        }
        filled += read;
    }
    Ok((prefix, false))
}
