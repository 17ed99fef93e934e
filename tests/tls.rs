//! HTTPS against a real TLS server (the fake gateway with a test CA from
//! `tests/data/tls`): trusted through a CA file, refused otherwise, and each
//! certificate problem reported as `ErrorKind::Tls` with its cause.

mod support;

use enos_token::ErrorKind;
use support::*;

fn https_fake(identity: &str) -> enos_token::fake::FakeGateway {
    fake_with(|config| config.tls = Some(tls_identity(identity)))
}

fn https_url(fake: &enos_token::fake::FakeGateway, host: &str) -> String {
    format!("https://{host}:{}", fake.address().port())
}

#[test]
fn trusted_through_the_ca_file() {
    let fake = https_fake("localhost");
    for host in ["localhost", "127.0.0.1"] {
        let mut builder = builder(&https_url(&fake, host));
        builder.ca_file(&tls_file("ca.crt")).unwrap();
        let client = builder.build().unwrap();
        for _ in 0..10 {
            client.get_token().expect("HTTPS Get with the test CA");
        }
    }
    assert_eq!(
        fake.stats().connections,
        2,
        "one pooled TLS connection per client"
    );
}

fn tls_error(fake: &enos_token::fake::FakeGateway, ca_file: Option<&str>) -> enos_token::Error {
    let mut builder = builder(&https_url(fake, "localhost"));
    if let Some(ca_file) = ca_file {
        builder.ca_file(&tls_file(ca_file)).unwrap();
    }
    let e = builder.build().unwrap().get_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    e
}

#[test]
fn rejected_without_the_ca_file_or_with_another() {
    let fake = https_fake("localhost");
    let e = tls_error(&fake, None);
    assert!(e.message().contains("not trusted (unknown issuer"), "{e}");
    assert!(
        e.message().contains("issued by \"CN=enos-token test CA\""),
        "{e}"
    );
    // With a CA file, the message no longer suggests setting one: it names
    // the file and the issuer the server presented.
    let e = tls_error(&fake, Some("other-ca.crt"));
    assert!(
        e.message().contains(&format!(
            "does not lead to the CA in {}",
            tls_file("other-ca.crt")
        )) && e.message().contains("issued by \"CN=enos-token test CA\""),
        "{e}"
    );
    assert!(!e.message().contains("set a CA file"), "{e}");
}

#[test]
fn a_scheme_mix_up_names_the_right_scheme() {
    // https:// to a plain HTTP server (the fake).
    let plain = fake();
    let url = plain.url().replace("http://", "https://");
    let e = client(&url).get_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    assert!(
        e.message().contains("answered in plain HTTP") && e.message().contains("use http://"),
        "{e}"
    );
    // http:// to an HTTPS server.
    let tls = https_fake("localhost");
    let url = format!("http://localhost:{}", tls.address().port());
    let e = client(&url).get_token().unwrap_err();
    assert!(
        e.message().contains("answered in TLS") && e.message().contains("use https://"),
        "{e}"
    );
}

#[test]
fn self_signed_certificate() {
    let fake = https_fake("selfsigned");
    let e = tls_error(&fake, Some("ca.crt"));
    assert!(e.message().contains("issued by \"CN=localhost\""), "{e}");
}

#[test]
fn wrong_host_name() {
    let fake = https_fake("wronghost");
    let e = tls_error(&fake, Some("ca.crt"));
    assert!(e.message().contains("not valid for that host name"), "{e}");
}

#[test]
fn expired_certificate() {
    let fake = https_fake("expired");
    let e = tls_error(&fake, Some("ca.crt"));
    assert!(e.message().contains("has expired"), "{e}");
}

#[test]
fn plain_http_on_the_https_port() {
    // Like nginx or Apache on a plain port: the ClientHello is a bad request.
    let server = RawServer::start(|mut stream| {
        use std::io::{Read, Write};
        let mut hello = [0u8; 64];
        let _ = stream.read(&mut hello);
        let _ = stream.write_all(&http_answer(
            "400 Bad Request",
            "text/html",
            b"<html>400</html>",
        ));
    });
    let mut builder = builder(&format!("https://localhost:{}", server.address.port()));
    builder.ca_file(&tls_file("ca.crt")).unwrap();
    let e = builder.build().unwrap().get_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    assert!(e.message().contains("answered in plain HTTP"), "{e}");
}

#[test]
fn ca_files_that_hold_no_certificate() {
    let mut builder = builder("https://localhost:1");
    let e = builder.ca_file(&tls_file("ca.key")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("holds no PEM certificate"), "{e}");
    let e = builder.ca_file(&tls_file("make-certs.sh")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("holds no PEM certificate"), "{e}");
}
