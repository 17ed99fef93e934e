//! The command line's help texts.

pub const USAGE: &str =
    "usage: enos-token [OPTION]... COMMAND [ARG]... (enos-token --help for more)";

pub const HELP: &str = "enos-token: EnOS API-gateway access tokens and signed API calls from the shell.

Commands:
  token [--json]            print the managed token (--json: {\"accessToken\", \"expiresIn\"})
  headers [--query Q] [--data D|@FILE|@-]
                            print the three apim-* headers for that query and body,
                            one 'name: value' a line (for curl -H @file)
  request METHOD PATH [--data D|@FILE|@-] [--content-type T] [-F PART]... [-H HEADER]...
          [-o FILE] [--include]
                            one signed API call; prints the body (--include: the
                            status line and headers first) or writes it to FILE;
                            files go as multipart parts (-F, curl's syntax); a
                            refused token is renewed once. PATH is relative to
                            the gateway URL.
  doctor                    check the setup step by step and say what to fix

Configuration (flags override the environment):
  --gateway URL             ENOS_GATEWAY_URL: the API gateway's base address
  --app-key KEY             ENOS_APP_KEY
  --secret-file PATH        ENOS_APP_SECRET_FILE, or the secret in ENOS_APP_SECRET
                            (never a flag: it would show in ps); a file others
                            can read, or not yours, is warned about
  --ca-file PEM             ENOS_CA_FILE: trust this CA instead of the built-in roots
  --proxy URL               the proxy (\"\" for none); default: the proxy variables
  --retries N               retries of a rate-limited (429) or unavailable (502/503/504,
                            GET-like methods only) call or a failed connection
                            (default 2); --retry-base-ms M: the first wait, doubled
                            each time, with jitter (default 200); a Retry-After
                            header is honoured
  --timeout SECONDS         ENOS_TIMEOUT_MS (in milliseconds): how long a call may
                            take in all, a token fetch included (default 30 s;
                            connecting gets at most 10 s of it)
  -v, --verbose             the library's log lines on standard error (each retry
                            and its wait, each call; never a token or the secret)
  --no-cache                do not share the token between invocations (default:
                            a shared cache in $XDG_RUNTIME_DIR/enos-token, else
                            ~/.cache/enos-token, made private; when neither is
                            usable, one warning line and no cache)
  -h, --help                this; COMMAND --help for one command
  -V, --version             the version

--data @FILE sends FILE as the body (streamed), --data @- standard input;
anything else is the body itself. With --data and no --content-type, the body
is sent as application/json;charset=UTF-8, and signed (only JSON bodies are).

Exit codes: 0 success; 1 the API answered with a status other than 2xx
(request; the body is printed); 2 usage error; 3 configuration missing or
invalid; 4 standard output could not be written (a full disk; a reader
that went away ends the program quietly, as SIGPIPE does); 10 + the
library's status for its failures (13 connect, 14 timeout, 15 TLS, 16 HTTP
status, 17 bad response, 18 gateway status, ...); 130 a request
interrupted by Ctrl-C (the call is cancelled, its connection shut down);
doctor exits 0 only when every step passed.

Examples:
  export ENOS_GATEWAY_URL=https://apim.example.com ENOS_APP_KEY=... ENOS_APP_SECRET_FILE=~/.enos-secret
  enos-token token
  enos-token headers --query 'orgId=o1' > headers.txt && curl -H @headers.txt \"$ENOS_GATEWAY_URL/asset-service/v2.1/assets?orgId=o1\"
  enos-token request GET '/asset-service/v2.1/assets?orgId=o1'
  enos-token request POST /asset-service/v2.1/assets --data @body.json
  enos-token request POST '/connect-service/v2.1/integration?action=postMeasurepoint&orgId=o1' \\
      -F 'enos-message=<msg.json;type=application/json' -F 'enos-file=@reading.csv'
  enos-token request GET '/connect-service/v2.1/files?action=download&fileUri=enos-connect://…' -o fw.bin
  enos-token doctor
";

/// `COMMAND --help`: one command, with examples.
pub fn command_help(command: &str) -> Option<&'static str> {
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

Prints the three apim-* headers for an API call with that query and JSON body,
one 'name: value' a line, signed with the managed token and a fresh
timestamp: send the call with exactly that query and body, as
Content-Type: application/json (only JSON bodies are signed; for any other
body, give no --data).

Examples:
  enos-token headers --query 'orgId=o1' > h.txt
  curl -H @h.txt \"$ENOS_GATEWAY_URL/asset-service/v2.1/assets?orgId=o1\"
  enos-token headers --query 'orgId=o1' --data @body.json > h.txt
  curl -H @h.txt -H 'Content-Type: application/json' --data @body.json \\
      \"$ENOS_GATEWAY_URL/asset-service/v2.1/assets?orgId=o1\"
"
        }
        "request" => {
            "enos-token request METHOD PATH [--data D|@FILE|@-] [--content-type T]
                   [-F PART]... [-H 'Name: value']... [-o FILE|-] [--include]

One signed API call: METHOD on PATH (path and query relative to the gateway
URL). Prints the body; --include prints the status line and headers first.
On a terminal, control characters the server sent are shown escaped (\x1b);
into a pipe or a file (or with -o) the bytes are exact.
A refused token is renewed and the call sent once more. Exits 0 for a 2xx
answer, 1 for any other (the body is printed all the same). Ctrl-C cancels
the call (its connection is shut down; a POST may have been processed: the
message says so) and exits 130.

  --data D|@FILE|@-   the body: D itself, FILE (streamed from disk) or standard
                      input; sent as application/json;charset=UTF-8 unless
                      --content-type says otherwise; a JSON body is signed
  -F, --form PART     a multipart/form-data part, as curl takes it:
                        name=value          a text field
                        name=<FILE          a field holding FILE's content
                        name=@FILE          a file part (streamed; its name sent)
                      each followed by ;type=TYPE and, for @FILE, ;filename=NAME;
                      every part carries its own Content-Length (EnOS 2.1.0)
  -H, --header H      another header, 'Name: value' (not apim-*, Content-Type
                      or Content-Length)
  -o, --output FILE   write the body to FILE as it arrives (- for standard
                      output), in constant memory; a GET cut mid-body resumes
                      where it broke. A progress bar goes to standard error when
                      it is a terminal and the transfer is over 1 MiB.

Examples:
  enos-token request GET '/asset-service/v2.1/assets?orgId=o1'
  enos-token request POST '/asset-service/v2.1/assets?orgId=o1' --data @body.json
  jq -c . body.json | enos-token request PUT /some/api --data @- --include
  enos-token request POST '/connect-service/v2.1/integration?action=postMeasurepoint&orgId=o1' \\
      -F 'enos-message=<msg.json;type=application/json' -F 'enos-file=@firmware.bin'
  enos-token request GET '/connect-service/v2.1/files?action=download&fileUri=enos-connect://…' -o fw.bin
"
        }
        "doctor" => {
            "enos-token doctor [--refresh]

Checks the setup step by step, one line per step as it goes (OK, WARN, SKIP
or FAIL, what was found, then what to do): the configuration (the secret only
as set and its length; the URL without user info), the token cache, the
gateway URL, the proxy, DNS, the TCP connection, TLS and the certificate
(issuer, expiry, the CA trusted), the local clock against the gateway's, and
a Get. Stops at a failure that makes the rest meaningless. Exits 0 when every
step passed; else by the first failure, as the other commands: 3 the
configuration (the URL, the proxy, the CA file), 13 the network (DNS, TCP,
the proxy), 14 a timeout, 15 TLS, 16 an HTTP status, 17 a bad answer, 18 a
gateway status (a wrong key or secret), 1 the clock.

  --refresh   also a Refresh. It retires the token every other process and
              host of this app key holds (each Gets the new one when the
              gateway refuses its own); the new token is put in the cache
              for this command line's next invocations.

Examples:
  enos-token doctor
  ENOS_CA_FILE=/etc/ssl/private-ca.pem enos-token doctor
"
        }
        _ => return None,
    })
}
