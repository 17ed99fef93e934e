//! `enos-token`: EnOS access tokens and signed API calls from the shell,
//! and a doctor that says why a setup fails. Argument parsing and printing
//! only: the work is the library's (`Client`, `enos_token::doctor`).

use std::io::{Read, Write};
use std::process::ExitCode;

use enos_token::doctor::{Setup, Step, diagnose};
use enos_token::{Client, ClientBuilder, Error};

const USAGE: &str = "usage: enos-token [OPTION]... COMMAND [ARG]... (enos-token --help for more)";

const HELP: &str = "enos-token: EnOS API-gateway access tokens and signed API calls from the shell.

Commands:
  token [--json]            print the managed token (--json: {\"accessToken\", \"expiresIn\"})
  headers [--query Q] [--data D|@FILE|@-]
                            print the three apim-* headers for that query and body,
                            one 'name: value' a line (for curl -H @file)
  request METHOD PATH [--data D|@FILE|@-] [--content-type T] [--include]
                            one signed API call; prints the body (--include: the
                            status line and headers first); a refused token is
                            renewed once. PATH is relative to the gateway URL.
  doctor                    check the setup step by step and say what to fix

Configuration (flags override the environment):
  --gateway URL             ENOS_GATEWAY_URL: the API gateway's base address
  --app-key KEY             ENOS_APP_KEY
  --secret-file PATH        ENOS_APP_SECRET_FILE, or the secret in ENOS_APP_SECRET
                            (never a flag: it would show in ps)
  --ca-file PEM             ENOS_CA_FILE: trust this CA instead of the built-in roots
  --proxy URL               the proxy (\"\" for none); default: the proxy variables
  --no-cache                do not share the token between invocations (default:
                            a shared cache in $XDG_RUNTIME_DIR/enos-token, or
                            ~/.cache/enos-token when that is unset)
  -h, --help                this; COMMAND --help for one command
  -V, --version             the version

--data @FILE reads the body from FILE, --data @- from standard input; anything
else is the body itself. With --data and no --content-type, the body is sent
as application/json;charset=UTF-8.

Exit codes: 0 success; 1 the API answered with a status other than 2xx
(request; the body is printed); 2 usage error; 3 configuration missing or
invalid; 10 + the library's status for its failures (13 connect, 14 timeout,
15 TLS, 16 HTTP status, 17 bad response, 18 gateway status, ...); doctor
exits 0 only when every step passed.

Examples:
  export ENOS_GATEWAY_URL=https://apim.example.com ENOS_APP_KEY=... ENOS_APP_SECRET_FILE=~/.enos-secret
  enos-token token
  enos-token headers --query 'orgId=o1' > headers.txt && curl -H @headers.txt \"$ENOS_GATEWAY_URL/asset-service/v2.1/assets?orgId=o1\"
  enos-token request GET '/asset-service/v2.1/assets?orgId=o1'
  enos-token request POST /asset-service/v2.1/assets --data @body.json
  enos-token doctor
";

/// `COMMAND --help`: one command, with examples.
fn command_help(command: &str) -> Option<&'static str> {
    Some(match command {
        "token" => {
            "enos-token token [--json]

Prints the managed token: cached between invocations (a shared cache in
$XDG_RUNTIME_DIR/enos-token unless --no-cache), refreshed early. --json prints
{\"accessToken\": ..., \"expiresIn\": SECONDS_LEFT}.

Examples:
  enos-token token
  TOKEN=$(enos-token token)
  enos-token token --json --no-cache
"
        }
        "headers" => {
            "enos-token headers [--query Q] [--data D|@FILE|@-]

Prints the three apim-* headers for an API call with that query and body,
one 'name: value' a line, signed with the managed token and a fresh
timestamp: send the call with exactly that query and body.

Examples:
  enos-token headers --query 'orgId=o1' > h.txt
  curl -H @h.txt \"$ENOS_GATEWAY_URL/asset-service/v2.1/assets?orgId=o1\"
  enos-token headers --query 'orgId=o1' --data @body.json
"
        }
        "request" => {
            "enos-token request METHOD PATH [--data D|@FILE|@-] [--content-type T] [--include]

One signed API call: METHOD on PATH (path and query relative to the gateway
URL). Prints the body; --include prints the status line and headers first.
A refused token is renewed and the call sent once more. With --data and no
--content-type the body is sent as application/json;charset=UTF-8. Exits 0
for a 2xx answer, 1 for any other (the body is printed all the same).

Examples:
  enos-token request GET '/asset-service/v2.1/assets?orgId=o1'
  enos-token request POST '/asset-service/v2.1/assets?orgId=o1' --data @body.json
  jq -c . body.json | enos-token request PUT /some/api --data @- --include
"
        }
        "doctor" => {
            "enos-token doctor

Checks the setup step by step, one line per step as it goes (OK or FAIL, what
was found, then what to do): the configuration (the secret only as set and
its length), the gateway URL, the proxy, DNS, the TCP connection, TLS and the
certificate (issuer, expiry, the CA trusted), the local clock against the
gateway's, a Get and a Refresh. Stops at a failure that makes the rest
meaningless. Exits 0 only when every step passed.

Examples:
  enos-token doctor
  ENOS_CA_FILE=/etc/ssl/private-ca.pem enos-token doctor
"
        }
        _ => return None,
    })
}

/// How the program ends: success, or an exit code and a message.
struct Failure {
    code: u8,
    message: String,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: format!("{}\n{USAGE}", message.into()),
    }
}

fn configuration(message: impl Into<String>) -> Failure {
    Failure {
        code: 3,
        message: message.into(),
    }
}

/// A failure of the library: 10 + its status; a refused argument is a usage error.
fn library(error: Error) -> Failure {
    let status = enos_token::ffi::enos_status::from(error.kind()) as u8;
    Failure {
        code: if error.kind() == enos_token::ErrorKind::InvalidArgument {
            2
        } else {
            10 + status
        },
        message: error.message().to_string(),
    }
}

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("enos-token: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// The options of any command.
#[derive(Default)]
struct Options {
    gateway: Option<String>,
    app_key: Option<String>,
    secret_file: Option<String>,
    ca_file: Option<String>,
    proxy: Option<String>,
    no_cache: bool,
    json: bool,
    include: bool,
    query: Option<String>,
    data: Option<String>,
    content_type: Option<String>,
    help: bool,
    positional: Vec<String>,
}

fn parse(args: Vec<String>) -> Result<Options, Failure> {
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
            "--no-cache" => options.no_cache = true,
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

fn run(args: Vec<String>) -> Result<u8, Failure> {
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("enos-token {}", env!("CARGO_PKG_VERSION"));
        return Ok(0);
    }
    let options = parse(args)?;
    let command = options.positional.first().cloned();
    if let Some(help) = command
        .as_deref()
        .filter(|_| options.help)
        .and_then(command_help)
    {
        print!("{help}");
        return Ok(0);
    }
    if options.help || command.is_none() {
        print!("{HELP}");
        return if command.is_none() && !options.help {
            Err(usage("a command is needed"))
        } else {
            Ok(0)
        };
    }
    match command.as_deref() {
        Some("token") => token(&options),
        Some("headers") => headers(&options),
        Some("request") => request(&options),
        Some("doctor") => doctor(&options),
        Some(other) => Err(usage(format!(
            "unknown command {other}: token, headers, request or doctor"
        ))),
        None => unreachable!("handled above"),
    }
}

/// The configuration, with where each part came from.
struct Configuration {
    gateway: String,
    app_key: String,
    secret: String,
    ca_file: Option<String>,
    sources: Vec<String>,
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

fn configuration_of(options: &Options) -> Result<Configuration, Failure> {
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
fn cache_directory(options: &Options) -> Option<String> {
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

fn client_of(options: &Options) -> Result<Client, Failure> {
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
    if let Some(directory) = cache_directory(options) {
        if let Some(parent) = std::path::Path::new(&directory).parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        builder.shared_cache(&directory).map_err(invalid)?;
    }
    builder.build().map_err(invalid)
}

/// A configuration the library refused: exit code 3.
fn configuration_failure(error: Error) -> Failure {
    configuration(error.message())
}

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

fn expect_arguments(options: &Options, count: usize, form: &str) -> Result<(), Failure> {
    if options.positional.len() != count {
        return Err(usage(format!("usage: enos-token {form}")));
    }
    Ok(())
}

fn token(options: &Options) -> Result<u8, Failure> {
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

fn headers(options: &Options) -> Result<u8, Failure> {
    expect_arguments(options, 1, "headers [--query Q] [--data D|@FILE|@-]")?;
    let body = body_of(options)?;
    let client = client_of(options)?;
    let headers = client
        .auth_headers(options.query.as_deref().unwrap_or(""), &body)
        .map_err(library)?;
    print!("{}", headers.replace("\r\n", "\n"));
    Ok(0)
}

fn request(options: &Options) -> Result<u8, Failure> {
    expect_arguments(
        options,
        3,
        "request METHOD PATH [--data D|@FILE|@-] [--content-type T] [--include]",
    )?;
    let body = body_of(options)?;
    let content_type = match (&options.content_type, options.data.is_some()) {
        (Some(content_type), _) => Some(content_type.as_str()),
        (None, true) => Some("application/json;charset=UTF-8"),
        (None, false) => None,
    };
    let client = client_of(options)?;
    let (method, path) = (&options.positional[1], &options.positional[2]);
    let response = client
        .request(method, path, content_type, &body)
        .map_err(library)?;
    let mut stdout = std::io::stdout().lock();
    if options.include {
        let mut head = format!("HTTP/1.1 {}\n", response.status());
        for (name, value) in response.headers() {
            head.push_str(&format!("{name}: {value}\n"));
        }
        head.push('\n');
        let _ = stdout.write_all(head.as_bytes());
    }
    let _ = stdout.write_all(response.body());
    let _ = stdout.flush();
    Ok(if (200..300).contains(&response.status()) {
        0
    } else {
        1
    })
}

fn doctor(options: &Options) -> Result<u8, Failure> {
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
