//! The command line's options and their parsing.

use crate::{Failure, usage};

/// The options of any command.
#[derive(Default)]
pub struct Options {
    pub gateway: Option<String>,
    pub app_key: Option<String>,
    pub secret_file: Option<String>,
    pub ca_file: Option<String>,
    pub proxy: Option<String>,
    pub no_cache: bool,
    pub json: bool,
    pub include: bool,
    pub query: Option<String>,
    pub data: Option<String>,
    pub content_type: Option<String>,
    /// `-F` parts, in order, as given.
    pub forms: Vec<String>,
    /// `-H` headers, in order, as given.
    pub headers: Vec<String>,
    /// `-o`: a file, or `-` for standard output.
    pub output: Option<String>,
    /// `--retries N` and `--retry-base-ms M` (the library's defaults: 2, 200).
    pub retries: Option<u32>,
    pub retry_base_ms: Option<u64>,
    /// `-v`: the library's log lines on standard error.
    pub verbose: bool,
    /// `doctor --refresh`: also try a Refresh.
    pub refresh: bool,
    /// `--timeout SECONDS`: the whole call's time (over `ENOS_TIMEOUT_MS`).
    pub timeout: Option<String>,
    pub help: bool,
    pub positional: Vec<String>,
}

/// A whole number given to `flag`.
fn number<T: std::str::FromStr>(text: &str, flag: &str) -> Result<T, Failure> {
    text.parse()
        .map_err(|_| usage(format!("{flag} takes a whole number, not {text:?}")))
}

pub fn parse(args: Vec<String>) -> Result<Options, Failure> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--gateway" => options.gateway = Some(value("--gateway")?),
            "--app-key" => options.app_key = Some(value("--app-key")?),
            "--secret-file" => options.secret_file = Some(value("--secret-file")?),
            "--ca-file" => options.ca_file = Some(value("--ca-file")?),
            "--proxy" => options.proxy = Some(value("--proxy")?),
            "--query" => options.query = Some(value("--query")?),
            "--data" => options.data = Some(value("--data")?),
            "--content-type" => options.content_type = Some(value("--content-type")?),
            "-F" | "--form" => options.forms.push(value("-F")?),
            "-H" | "--header" => options.headers.push(value("-H")?),
            "-o" | "--output" => options.output = Some(value("-o")?),
            "--retries" => options.retries = Some(number(&value("--retries")?, "--retries")?),
            "--retry-base-ms" => {
                options.retry_base_ms = Some(number(&value("--retry-base-ms")?, "--retry-base-ms")?)
            }
            "-v" | "--verbose" => options.verbose = true,
            "--no-cache" => options.no_cache = true,
            "--refresh" => options.refresh = true,
            "--timeout" => options.timeout = Some(value("--timeout")?),
            "--json" => options.json = true,
            "--include" | "-i" => options.include = true,
            "--help" | "-h" => options.help = true,
            "--secret" | "--app-secret" => {
                return Err(usage(
                    "the secret is never a flag (it would show in ps): set ENOS_APP_SECRET or use --secret-file",
                ));
            }
            flag if flag.starts_with('-') && flag != "-" => {
                return Err(usage(format!("unknown option {flag}")));
            }
            _ => options.positional.push(arg),
        }
    }
    Ok(options)
}
