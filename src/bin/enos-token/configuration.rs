//! The configuration (flags over the environment), the shared cache's
//! directory, and the client built from them.

use std::os::unix::fs::DirBuilderExt;

use enos_token::{Client, ClientBuilder, Error, LogLevel, Logger};

use crate::options::Options;
use crate::{Failure, configuration, usage};

/// The configuration, with where each part came from, and what is worth a
/// warning (a secret file others may read).
pub struct Configuration {
    pub gateway: String,
    pub app_key: String,
    pub secret: String,
    pub ca_file: Option<String>,
    pub sources: Vec<String>,
    pub warnings: Vec<String>,
}

impl Drop for Configuration {
    fn drop(&mut self) {
        // SAFETY: zero bytes keep the String valid UTF-8.
        unsafe { self.secret.as_bytes_mut() }.fill(0);
    }
}

fn from_flag_or_environment(
    flag: &Option<String>,
    flag_name: &str,
    variable: &str,
) -> Option<(String, String)> {
    match flag {
        Some(value) => Some((value.clone(), flag_name.to_string())),
        None => std::env::var(variable)
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| (v, variable.to_string())),
    }
}

pub fn configuration_of(options: &Options) -> Result<Configuration, Failure> {
    let mut missing = Vec::new();
    let gateway = from_flag_or_environment(&options.gateway, "--gateway", "ENOS_GATEWAY_URL");
    let app_key = from_flag_or_environment(&options.app_key, "--app-key", "ENOS_APP_KEY");
    let secret_file = from_flag_or_environment(
        &options.secret_file,
        "--secret-file",
        "ENOS_APP_SECRET_FILE",
    );
    let mut warnings = Vec::new();
    let secret = match &secret_file {
        Some((path, source)) => {
            warnings.extend(secret_file_warning(path));
            let text = std::fs::read_to_string(path).map_err(|e| {
                configuration(format!(
                    "cannot read the secret file {path} ({source}): {e}"
                ))
            })?;
            // A trailing newline is how files end; nothing else is trimmed.
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            Some((text.to_string(), format!("the file {path} ({source})")))
        }
        None => std::env::var("ENOS_APP_SECRET")
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| (v, "ENOS_APP_SECRET".to_string())),
    };
    if gateway.is_none() {
        missing.push("the gateway URL (ENOS_GATEWAY_URL or --gateway)");
    }
    if app_key.is_none() {
        missing.push("the app key (ENOS_APP_KEY or --app-key)");
    }
    if secret.is_none() {
        missing.push("the app secret (ENOS_APP_SECRET, ENOS_APP_SECRET_FILE or --secret-file)");
    }
    let (Some(gateway), Some(app_key), Some(secret)) = (gateway, app_key, secret) else {
        return Err(configuration(format!("missing: {}", missing.join(", "))));
    };
    let ca_file = from_flag_or_environment(&options.ca_file, "--ca-file", "ENOS_CA_FILE");
    let sources = vec![
        format!(
            "gateway {} from {}",
            enos_token::doctor::url_for_display(&gateway.0),
            gateway.1
        ),
        format!("app key {} from {}", app_key.0, app_key.1),
        format!(
            "secret from {} (set, {} characters)",
            secret.1,
            secret.0.chars().count()
        ),
        match &ca_file {
            Some((path, source)) => format!("CA file {path} from {source}"),
            None => "no CA file (the built-in roots)".to_string(),
        },
    ];
    Ok(Configuration {
        gateway: gateway.0,
        app_key: app_key.0,
        secret: secret.0,
        ca_file: ca_file.map(|(path, _)| path),
        sources,
        warnings,
    })
}

/// What is wrong with how the secret file is kept, as OpenSSH checks a
/// private key: a symbolic link, readable by group or others, or another
/// user's. The file is read all the same.
fn secret_file_warning(path: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let link = std::fs::symlink_metadata(path).ok()?;
    let metadata = std::fs::metadata(path).ok()?;
    let mut wrong = Vec::new();
    if link.file_type().is_symlink() {
        wrong.push("is a symbolic link".to_string());
    }
    if metadata.mode() & 0o077 != 0 {
        wrong.push(format!(
            "can be read by group or others (mode {:03o}: chmod 600 it)",
            metadata.mode() & 0o777
        ));
    }
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if metadata.uid() != me {
        wrong.push(format!(
            "belongs to user {}, not to you ({me})",
            metadata.uid()
        ));
    }
    (!wrong.is_empty()).then(|| format!("the secret file {path} {}", wrong.join(", ")))
}

/// `--timeout SECONDS` (a decimal number), else `ENOS_TIMEOUT_MS`, else the
/// library's 30 s.
fn timeout_of(options: &Options) -> Result<Option<std::time::Duration>, Failure> {
    let (text, what, scale) = match (&options.timeout, std::env::var("ENOS_TIMEOUT_MS")) {
        (Some(seconds), _) => (seconds.clone(), "--timeout", 1000.0),
        (None, Ok(ms)) if !ms.is_empty() => (ms, "ENOS_TIMEOUT_MS", 1.0),
        _ => return Ok(None),
    };
    let ms = text
        .trim()
        .parse::<f64>()
        .ok()
        .map(|value| value * scale)
        .filter(|ms| ms.is_finite() && *ms >= 1.0 && *ms <= 86_400_000.0);
    match ms {
        Some(ms) => Ok(Some(std::time::Duration::from_millis(ms as u64))),
        None if what == "--timeout" => Err(usage(format!(
            "--timeout takes seconds (for example 5 or 0.5, at most a day), not {text:?}"
        ))),
        None => Err(configuration(format!(
            "ENOS_TIMEOUT_MS is {text:?}: give milliseconds, 1 to 86400000"
        ))),
    }
}

/// The token cache between invocations.
pub enum Cache {
    /// `--no-cache`.
    None,
    /// A directory the library accepted.
    Usable(String),
    /// No candidate was usable: why (the command goes on without it).
    Unusable(String),
}

/// The candidates for the cache, in order: `$XDG_RUNTIME_DIR/enos-token`,
/// then `$XDG_CACHE_HOME/enos-token` or `~/.cache/enos-token`.
fn cache_candidates() -> Vec<String> {
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut candidates = Vec::new();
    if let Some(runtime) = set("XDG_RUNTIME_DIR") {
        candidates.push(format!("{runtime}/enos-token"));
    }
    match (set("XDG_CACHE_HOME"), set("HOME")) {
        (Some(cache), _) => candidates.push(format!("{cache}/enos-token")),
        (None, Some(home)) => candidates.push(format!("{home}/.cache/enos-token")),
        (None, None) => {}
    }
    candidates
}

/// The first usable cache directory (its parent made, private, when
/// missing), or why there is none; never an error: the cache was not asked
/// for by name.
pub fn cache_of(options: &Options) -> Cache {
    if options.no_cache {
        return Cache::None;
    }
    let mut why = Vec::new();
    for directory in cache_candidates() {
        if let Some(parent) = std::path::Path::new(&directory).parent() {
            if !parent.exists() {
                let _ = std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent);
            }
        }
        let mut probe = match ClientBuilder::new("http://127.0.0.1/", "probe", "probe") {
            Ok(probe) => probe,
            Err(e) => return Cache::Unusable(e.message().to_string()),
        };
        match probe.shared_cache(&directory) {
            Ok(_) => return Cache::Usable(directory),
            Err(e) => why.push(e.message().to_string()),
        }
    }
    if why.is_empty() {
        why.push("neither XDG_RUNTIME_DIR, XDG_CACHE_HOME nor HOME is set".to_string());
    }
    Cache::Unusable(why.join("; "))
}

pub fn client_of(options: &Options) -> Result<Client, Failure> {
    let configuration = configuration_of(options)?;
    let invalid = |e: Error| configuration_failure(e);
    let mut builder = ClientBuilder::new(
        &configuration.gateway,
        &configuration.app_key,
        &configuration.secret,
    )
    .map_err(invalid)?;
    if let Some(file) = &configuration.ca_file {
        builder.ca_file(file).map_err(invalid)?;
    }
    if let Some(proxy) = &options.proxy {
        builder.proxy(proxy).map_err(invalid)?;
    }
    if let Some(total) = timeout_of(options)? {
        // Connecting gets at most the library's 10 s of it.
        let connect = total.min(std::time::Duration::from_secs(10));
        builder.timeouts(connect, total).map_err(invalid)?;
    }
    if options.retries.is_some() || options.retry_base_ms.is_some() {
        let base = std::time::Duration::from_millis(options.retry_base_ms.unwrap_or(200));
        builder
            .retries(options.retries.unwrap_or(2), base)
            .map_err(|e| usage(format!("--retries/--retry-base-ms: {}", e.message())))?;
    }
    if options.verbose {
        // The library's own lines, redacted as always, on standard error.
        builder.logger(Some(Logger::new(|level, line| {
            let level = match level {
                LogLevel::Error => "error",
                LogLevel::Warn => "warning",
                LogLevel::Info => "info",
                LogLevel::Debug => "debug",
            };
            eprintln!("enos-token: {level}: {line}");
        })));
    }
    for warning in &configuration.warnings {
        eprintln!("enos-token: warning: {warning}");
    }
    match cache_of(options) {
        Cache::Usable(directory) => {
            if let Err(e) = builder.shared_cache(&directory) {
                eprintln!(
                    "enos-token: warning: the token is not kept between invocations ({})",
                    e.message()
                );
            }
        }
        Cache::Unusable(why) => eprintln!(
            "enos-token: warning: the token is not kept between invocations ({why}); \
             --no-cache silences this"
        ),
        Cache::None => {}
    }
    builder.build().map_err(invalid)
}

/// A configuration the library refused: exit code 3.
pub fn configuration_failure(error: Error) -> Failure {
    configuration(error.message())
}
