//! An API's answer: any HTTP status, its headers and its body.

/// An API's answer: any HTTP status, its headers in the order received and
/// its body (empty when the request streamed it to an output).
pub struct Response {
    pub(crate) status: u16,
    /// In the order received; names lower case.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// Sends made for this call: 1 for the first try, more for a renewed
    /// token's resend, a resumed download or a retry.
    pub(crate) attempts: u32,
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

    /// Every header, in the order received (names lower case).
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// How many sends the call made: 1 for the first try; a renewed
    /// token's resend and each resumed download add one.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    pub(crate) fn into_parts(mut self) -> (u16, Vec<(String, String)>, Vec<u8>, u32) {
        let headers = std::mem::take(&mut self.headers);
        let body = std::mem::take(&mut self.body);
        (self.status, headers, body, self.attempts)
    }
}
