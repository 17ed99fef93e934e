//! The configuration (flags over the environment), the shared cache's
//! directory, and the client built from them.

use enos_token::{Client, ClientBuilder, Error, LogLevel, Logger};

use crate::options::Options;
use crate::{Failure, configuration, usage};

/// The configuration, with where each part came from.
pub struct Configuration {
    pub gateway: String,
    pub app_key: String,
    pub secret: String,
    pub ca_file: Option<String>,
    pub sources: Vec<String>,
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
    let secret = match &secret_file {
        Some((path, source)) => {
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
        format!("gateway {} from {}", gateway.0, gateway.1),
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
    })
}

/// Where the token is shared between invocations, unless --no-cache.
pub fn cache_directory(options: &Options) -> Option<String> {
    if options.no_cache {
        return None;
    }
    let runtime = std::env::var("XDG_RUNTIME_DIR")
        .ok()
        .filter(|v| !v.is_empty());
    let base = runtime.or_else(|| {
        std::env::var("XDG_CACHE_HOME")
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| {
                std::env::var("HOME")
                    .ok()
                    .map(|home| format!("{home}/.cache"))
            })
    })?;
    Some(format!("{base}/enos-token"))
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
    if let Some(directory) = cache_directory(options) {
        if let Some(parent) = std::path::Path::new(&directory).parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        builder.shared_cache(&directory).map_err(invalid)?;
    }
    builder.build().map_err(invalid)
}

/// A configuration the library refused: exit code 3.
pub fn configuration_failure(error: Error) -> Failure {
    configuration(error.message())
}
