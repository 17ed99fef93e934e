//! `enos-token token`, `headers` and `doctor`.

use std::io::Read;

use enos_token::doctor::{Setup, Step, diagnose};

use crate::configuration::{Cache, cache_of, client_of, configuration_of};
use crate::options::Options;
use crate::{Failure, expect_arguments, library, stdout, usage};

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
        stdout::write(format!("{json}\n"))?;
    } else {
        stdout::write(format!("{token}\n"))?;
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
    stdout::write(headers.replace("\r\n", "\n"))?;
    Ok(0)
}

pub fn doctor(options: &Options) -> Result<u8, Failure> {
    expect_arguments(options, 1, "doctor [--refresh]")?;
    let configuration = match configuration_of(options) {
        Ok(configuration) => configuration,
        Err(failure) => {
            stdout::write(format!(
                "FAIL configuration: {}\n     → set what is missing (enos-token --help lists the variables)\n",
                failure.message
            ))?;
            return Ok(3);
        }
    };
    for warning in &configuration.warnings {
        stdout::write(format!("WARN {warning}\n"))?;
    }
    stdout::write(format!(
        "OK   configuration: {}\n",
        configuration.sources.join("; ")
    ))?;
    let cache = cache_of(options);
    stdout::write(match &cache {
        Cache::None => "SKIP token cache: --no-cache\n".to_string(),
        Cache::Usable(directory) => format!("OK   token cache: {directory}\n"),
        Cache::Unusable(why) => format!(
            "WARN token cache: {why}\n     → the other commands work without it, fetching a token each time; \
             fix the directory, or give --no-cache\n"
        ),
    })?;
    let setup = Setup {
        gateway_url: configuration.gateway.clone(),
        app_key: configuration.app_key.clone(),
        app_secret: configuration.secret.clone(),
        ca_file: configuration.ca_file.clone(),
        proxy: options.proxy.clone(),
        refresh: options.refresh,
        shared_cache: match &cache {
            Cache::Usable(directory) => Some(directory.clone()),
            _ => None,
        },
    };
    // The exit code of the first failure: 3 configuration, 10 + the
    // library's status, 1 a check without one (the clock).
    let mut first_failure: Option<u8> = None;
    let mut print = |step: &Step| {
        if !step.passed && first_failure.is_none() {
            first_failure = Some(match step.kind {
                Some(enos_token::ErrorKind::InvalidArgument) => 3,
                Some(kind) => 10 + enos_token::ffi::enos_status::from(kind) as u8,
                None => 1,
            });
        }
        let verdict = if step.passed { "OK  " } else { "FAIL" };
        let mut lines = format!("{verdict} {}: {}\n", step.name, step.finding);
        if let Some(advice) = &step.advice {
            lines.push_str(&format!("     → {advice}\n"));
        }
        if let Err(failure) = stdout::write(lines) {
            eprintln!("enos-token: {}", failure.message);
            std::process::exit(i32::from(failure.code));
        }
    };
    let passed = diagnose(&setup, &mut print);
    drop(setup);
    if passed && !options.refresh {
        stdout::write(
            "SKIP Refresh: not tried: it retires the token every process and host of this app key \
             holds (enos-token doctor --refresh tries it, and shares the new token through the cache)\n",
        )?;
    }
    Ok(if passed {
        0
    } else {
        first_failure.unwrap_or(1)
    })
}
