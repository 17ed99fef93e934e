//! An API's answer: any HTTP status, its headers and its body.

/// An API's answer: any HTTP status, its headers (in the order received;
/// through a proxy, grouped by name) and
/// its body (empty when the request streamed it to an output).
pub struct Response {
    pub(crate) status: u16,
    /// In the order received (through a proxy: grouped by name, the names
    /// in the order they first came); names lower case.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// Sends made for this call: 1 for the first try, more for a renewed
    /// token's resend, a resumed download or a retry.
    pub(crate) attempts: u32,
    /// The EnOS envelope's `requestId`, read from the body when first asked.
    pub(crate) request_id: std::sync::OnceLock<Option<String>>,
}

impl std::fmt::Debug for Response {
    // Not the body or the header values: they are the API's data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers.len())
            .field("body_bytes", &self.body.len())
            .field("attempts", &self.attempts)
            .finish()
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        crate::secret::wipe(&mut self.body);
    }
}

impl Response {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body, exactly as received (empty when it was streamed to an
    /// output).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The first value of header `name` (any case), if there is one.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every header in the order received, names lower case. Through a
    /// proxy (ureq's HTTP parser), grouped by name instead: the names in
    /// the order they first came, each name's values in the order received.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// How many sends the call made: 1 for the first try; a renewed
    /// token's resend, each retry and each resumed download add one.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The `requestId` of an EnOS answer envelope (`{"code"|"status", "msg",
    /// "requestId", "data"}`), the id EnOS support asks for; `None` when the
    /// body (kept in memory, at most 1 MiB) is not such an envelope.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id
            .get_or_init(|| request_id_of(&self.body))
            .as_deref()
    }

    /// The parts, the request id only if it was already read (it is read
    /// from the body on demand: most callers never ask).
    pub(crate) fn into_parts(mut self) -> ResponseParts {
        ResponseParts {
            status: self.status,
            headers: std::mem::take(&mut self.headers),
            body: std::mem::take(&mut self.body),
            attempts: self.attempts,
            request_id: self.request_id.take(),
        }
    }
}

/// A response taken apart, for the C side's own type.
pub(crate) struct ResponseParts {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) attempts: u32,
    /// Unset until read: [`request_id_of`] the body.
    pub(crate) request_id: Option<Option<String>>,
}

/// The `requestId` string of a JSON object body, if it has one (visible
/// ASCII, at most 128 bytes: it goes into log lines).
pub(crate) fn request_id_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "requestId")]
        request_id: Option<serde_json::Value>,
    }
    if body.len() > 1024 * 1024 || body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    let id = match envelope.request_id? {
        serde_json::Value::String(id) => id,
        serde_json::Value::Number(id) => id.to_string(),
        _ => return None,
    };
    (!id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_id_is_read_from_an_enos_envelope_only() {
        let id = |body: &[u8]| request_id_of(body);
        assert_eq!(
            id(br#"{"code":0,"msg":"OK","requestId":"a1b2-c3","data":[]}"#),
            Some("a1b2-c3".into())
        );
        assert_eq!(id(br#" {"status":0,"requestId":42}"#), Some("42".into()));
        assert_eq!(id(br#"{"code":0}"#), None);
        assert_eq!(id(br#"[{"requestId":"x"}]"#), None);
        assert_eq!(id(b"not json"), None);
        assert_eq!(
            id(br#"{"requestId":"line
break"}"#),
            None,
            "kept out of log lines"
        );
        assert_eq!(id(br#"{"requestId":""}"#), None);
    }
}
