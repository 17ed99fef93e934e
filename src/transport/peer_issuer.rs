//! Who issued the certificate a server presents: for the message of a
//! certificate that was not trusted ("issued by CN=…"), so that a wrong CA
//! file or a missing one is named at once.
//!
//! Only after a handshake failed with an unknown issuer: one more TCP
//! connection and a TLS handshake whose verifier records the server's
//! certificate and then refuses it (nothing is sent over it). The issuer's
//! distinguished name is read from the certificate's DER with a few lines of
//! parsing, not a certificate library.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// What the doctor says of a server's certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PresentedCertificate {
    /// `CN=…, O=…`.
    pub(crate) issuer: Option<String>,
    /// `YYYY-MM-DD HH:MM:SS UTC`.
    pub(crate) not_after: Option<String>,
}

/// Records the server's certificate, then refuses it.
#[derive(Debug)]
struct Recorder {
    presented: Mutex<Option<PresentedCertificate>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self
            .presented
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(PresentedCertificate {
            issuer: issuer_of(end_entity),
            not_after: not_after_of(end_entity),
        });
        Err(rustls::Error::General("recorded, not trusted".into()))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The issuer of the certificate `host:port` presents (`CN=…, O=…`), if a
/// TLS handshake gets that far within `timeout`.
pub(crate) fn issuer_presented_by(host: &str, port: u16, timeout: Duration) -> Option<String> {
    certificate_presented_by(host, port, timeout)?.issuer
}

/// The certificate `host:port` presents, if a TLS handshake gets that far
/// within `timeout`.
pub(crate) fn certificate_presented_by(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Option<PresentedCertificate> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let recorder = Arc::new(Recorder {
        presented: Mutex::new(None),
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string()).ok()?;
    let mut connection = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
    let address = (host, port).to_socket_addrs().ok()?.next()?;
    let mut socket = TcpStream::connect_timeout(&address, timeout).ok()?;
    socket.set_read_timeout(Some(timeout)).ok()?;
    socket.set_write_timeout(Some(timeout)).ok()?;
    while connection.is_handshaking() {
        if connection.complete_io(&mut socket).is_err() {
            break; // the recorder refused the certificate (or the server failed)
        }
    }
    recorder
        .presented
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
}

/// One DER element: its tag, its content, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |length, &byte| (length << 8) | usize::from(byte));
        (length, &rest[count..])
    };
    (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
}

const SEQUENCE: u8 = 0x30;

/// The issuer name and validity of a DER certificate, as DER contents.
fn issuer_and_validity(certificate: &[u8]) -> Option<(&[u8], &[u8])> {
    let (SEQUENCE, certificate, _) = element(certificate)? else {
        return None;
    };
    let (SEQUENCE, to_be_signed, _) = element(certificate)? else {
        return None;
    };
    let (mut tag, _, mut rest) = element(to_be_signed)?;
    if tag == 0xa0 {
        (tag, _, rest) = element(rest)?; // the version, then the serial number
    }
    if tag != 0x02 {
        return None;
    }
    let (_, _, rest) = element(rest)?; // the signature algorithm
    let (SEQUENCE, name, rest) = element(rest)? else {
        return None;
    };
    let (SEQUENCE, validity, _) = element(rest)? else {
        return None;
    };
    Some((name, validity))
}

/// When a DER certificate expires, as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn not_after_of(certificate: &[u8]) -> Option<String> {
    let (_, validity) = issuer_and_validity(certificate)?;
    let (_, _, rest) = element(validity)?; // notBefore
    let (tag, time, _) = element(rest)?;
    let time = std::str::from_utf8(time).ok()?;
    let full = match tag {
        0x17 if time.len() >= 12 => {
            // UTCTime: YYMMDDHHMMSSZ, years 50-99 are 19xx.
            let century = if time[..2].parse::<u32>().ok()? >= 50 {
                "19"
            } else {
                "20"
            };
            format!("{century}{time}")
        }
        0x18 if time.len() >= 14 => time.to_string(),
        _ => return None,
    };
    if !full[..14].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        "{}-{}-{} {}:{}:{} UTC",
        &full[..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    ))
}

/// The issuer name of a DER certificate, as `CN=…, O=…`.
pub(crate) fn issuer_of(certificate: &[u8]) -> Option<String> {
    let (mut name, _) = issuer_and_validity(certificate)?;
    let mut parts = Vec::new();
    while !name.is_empty() {
        let (_, set, next) = element(name)?;
        name = next;
        let (_, attribute, _) = element(set)?;
        let (_, oid, value) = element(attribute)?;
        let (_, value, _) = element(value)?;
        let label = match oid {
            [0x55, 0x04, 0x03] => "CN",
            [0x55, 0x04, 0x0a] => "O",
            [0x55, 0x04, 0x0b] => "OU",
            [0x55, 0x04, 0x06] => "C",
            _ => continue,
        };
        let value = crate::error::sanitize_for_message(&String::from_utf8_lossy(value), 80);
        parts.push(format!("{label}={value}"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_issuer_of_a_pem_certificate_is_read() {
        let pem = include_bytes!("../../tests/data/tls/localhost.crt");
        let der = ureq::tls::parse_pem(pem)
            .find_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(certificate)) => {
                    Some(certificate.der().to_vec())
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(
            super::issuer_of(&der).as_deref(),
            Some("CN=enos-token test CA")
        );
        assert_eq!(super::issuer_of(&der[..40]), None);
        let expiry = super::not_after_of(&der).unwrap();
        assert!(expiry.len() == 23 && expiry.ends_with(" UTC"), "{expiry}");
        assert_eq!(super::issuer_of(b"\x30\x84\xff\xff\xff\xff"), None);
    }
}
