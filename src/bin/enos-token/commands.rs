//! `enos-token token`, `headers` and `doctor`.

use std::io::{Read, Write};

use enos_token::doctor::{Setup, Step, diagnose};

use crate::configuration::{client_of, configuration_of};
use crate::options::Options;
use crate::{Failure, expect_arguments, library, usage};

/// The body of --data: the text itself, @FILE, or @- for standard input.
fn body_of(options: &Options) -> Result<Vec<u8>, Failure> {
    match options.data.as_deref() {
        None => Ok(Vec::new()),
        Some("@-") => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| usage(format!("cannot read standard input: {e}")))?;
            Ok(body)
        }
        Some(data) => match data.strip_prefix('@') {
            Some(path) => std::fs::read(path).map_err(|e| usage(format!("--data @{path}: {e}"))),
            None => Ok(data.as_bytes().to_vec()),
        },
    }
}

pub fn token(options: &Options) -> Result<u8, Failure> {
    expect_arguments(options, 1, "token [--json]")?;
    let client = client_of(options)?;
    let (token, seconds_left) = client.access_token_and_seconds_left().map_err(library)?;
    if options.json {
        let json = serde_json::json!({"accessToken": token, "expiresIn": seconds_left});
        println!("{json}");
    } else {
        println!("{token}");
    }
    Ok(0)
}

pub fn headers(options: &Options) -> Result<u8, Failure> {
    expect_arguments(options, 1, "headers [--query Q] [--data D|@FILE|@-]")?;
    let body = body_of(options)?;
    let client = client_of(options)?;
    let headers = client
        .auth_headers(options.query.as_deref().unwrap_or(""), &body)
        .map_err(library)?;
    print!("{}", headers.replace("\r\n", "\n"));
    Ok(0)
}

pub fn doctor(options: &Options) -> Result<u8, Failure> {
    expect_arguments(options, 1, "doctor")?;
    let configuration = match configuration_of(options) {
        Ok(configuration) => configuration,
        Err(failure) => {
            println!("FAIL configuration: {}", failure.message);
            println!("     → set what is missing (enos-token --help lists the variables)");
            return Ok(3);
        }
    };
    println!("OK   configuration: {}", configuration.sources.join("; "));
    let setup = Setup {
        gateway_url: configuration.gateway.clone(),
        app_key: configuration.app_key.clone(),
        app_secret: configuration.secret.clone(),
        ca_file: configuration.ca_file.clone(),
        proxy: options.proxy.clone(),
    };
    let mut print = |step: &Step| {
        let verdict = if step.passed { "OK  " } else { "FAIL" };
        println!("{verdict} {}: {}", step.name, step.finding);
        if let Some(advice) = &step.advice {
            println!("     → {advice}");
        }
        let _ = std::io::stdout().flush();
    };
    let passed = diagnose(&setup, &mut print);
    drop(setup);
    Ok(if passed { 0 } else { 1 })
}
