//! `enos-token request`: one signed API call, with a body from the command
//! line, a file or standard input, multipart parts (`-F`, curl's syntax),
//! headers (`-H`) and the answer printed or streamed to a file (`-o`);
//! Ctrl-C cancels it.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use enos_token::Request;

use crate::configuration::client_of;
use crate::interrupt::Interrupts;
use crate::options::Options;
use crate::progress::{ProgressBar, stderr_is_a_terminal};
use crate::{Failure, expect_arguments, library, stdout, usage};

/// One `-F` part, as curl takes it.
#[derive(Debug, PartialEq, Eq)]
enum FormPart {
    /// `name=text`
    Text {
        name: String,
        text: String,
        content_type: Option<String>,
    },
    /// `name=<file`: a field holding the file's content.
    FileContent {
        name: String,
        path: String,
        content_type: Option<String>,
    },
    /// `name=@file`: a file part.
    File {
        name: String,
        path: String,
        file_name: Option<String>,
        content_type: Option<String>,
    },
}

/// Parses `name=value[;type=T][;filename=F]`.
fn form_part(spec: &str) -> Result<FormPart, Failure> {
    let Some((name, rest)) = spec.split_once('=') else {
        return Err(usage(format!(
            "-F {spec}: a part is name=value, name=<FILE or name=@FILE"
        )));
    };
    if name.is_empty() {
        return Err(usage(format!("-F {spec}: the part has no name")));
    }
    let mut segments = rest.split(';');
    let mut value = segments.next().unwrap_or("").to_string();
    let (mut content_type, mut file_name) = (None, None);
    for segment in segments {
        match segment.trim().split_once('=') {
            Some(("type", kind)) => content_type = Some(kind.to_string()),
            Some(("filename", name)) => file_name = Some(name.trim_matches('"').to_string()),
            _ => {
                value.push(';');
                value.push_str(segment);
            }
        }
    }
    let name = name.to_string();
    Ok(if let Some(path) = value.strip_prefix('@') {
        FormPart::File {
            name,
            path: path.to_string(),
            file_name,
            content_type,
        }
    } else if let Some(path) = value.strip_prefix('<') {
        FormPart::FileContent {
            name,
            path: path.to_string(),
            content_type,
        }
    } else {
        FormPart::Text {
            name,
            text: value,
            content_type,
        }
    })
}

/// The request the options describe.
fn request_of(options: &Options, method: &str, path: &str) -> Result<Request, Failure> {
    let invalid = |e: enos_token::Error| usage(e.message());
    let mut request = Request::new(method, path).map_err(invalid)?;
    for header in &options.headers {
        let Some((name, value)) = header.split_once(':') else {
            return Err(usage(format!("-H {header}: a header is 'Name: value'")));
        };
        request
            .header(name.trim(), Some(value.trim()))
            .map_err(invalid)?;
    }
    if !options.forms.is_empty() && options.data.is_some() {
        return Err(usage(
            "--data and -F are exclusive: a body is either one body or parts",
        ));
    }
    let content_type = options.content_type.as_deref();
    match options.data.as_deref() {
        None => {}
        Some("@-") => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| usage(format!("cannot read standard input: {e}")))?;
            request.body(content_type, body).map_err(invalid)?;
        }
        Some(data) => match data.strip_prefix('@') {
            Some(file) => {
                let content_type = content_type.unwrap_or(enos_token::JSON_CONTENT_TYPE);
                request
                    .body_file(Some(content_type), file)
                    .map_err(|e| usage(format!("--data @{file}: {}", e.message())))?;
            }
            None => {
                request
                    .body(content_type, data.as_bytes().to_vec())
                    .map_err(invalid)?;
            }
        },
    }
    for form in &options.forms {
        add_form_part(&mut request, form)?;
    }
    Ok(request)
}

fn add_form_part(request: &mut Request, spec: &str) -> Result<(), Failure> {
    let named = |e: enos_token::Error| usage(format!("-F {spec}: {}", e.message()));
    match form_part(spec)? {
        FormPart::Text {
            name,
            text,
            content_type,
        } => request.part(&name, content_type.as_deref(), text.into_bytes()),
        FormPart::FileContent {
            name,
            path,
            content_type,
        } => {
            let content = std::fs::read(&path)
                .map_err(|e| usage(format!("-F {spec}: cannot read {path}: {e}")))?;
            request.part(&name, content_type.as_deref(), content)
        }
        FormPart::File {
            name,
            path,
            file_name,
            content_type,
        } => request.file_part(&name, file_name.as_deref(), content_type.as_deref(), &path),
    }
    .map(|_| ())
    .map_err(named)
}

/// Where `-o` sends the body: a file created now, or standard output.
enum Output {
    File(std::fs::File),
    Stdout,
}

pub fn request(options: &Options) -> Result<u8, Failure> {
    expect_arguments(
        options,
        3,
        "request METHOD PATH [--data D|@FILE|@-] [--content-type T] [-F PART]... [-H HEADER]... [-o FILE] [--include]",
    )?;
    // Before any thread starts: Ctrl-C then cancels the call (exit 130).
    let interrupts = Interrupts::take();
    let (method, path) = (&options.positional[1], &options.positional[2]);
    let mut request = request_of(options, method, path)?;
    let output = match options.output.as_deref() {
        None => None,
        Some("-") => Some(Output::Stdout),
        Some(file) => Some(Output::File(std::fs::File::create(file).map_err(|e| {
            Failure {
                code: 2,
                message: format!("-o {file}: {e}"),
            }
        })?)),
    };
    match &output {
        Some(Output::File(file)) => {
            request.output_fd(file.as_raw_fd()).map_err(library)?;
        }
        Some(Output::Stdout) => {
            request.output_fd(1).map_err(library)?;
        }
        None => {}
    }
    let bar = stderr_is_a_terminal().then(|| Arc::new(ProgressBar::new()));
    if let Some(bar) = &bar {
        let drawing = bar.clone();
        request.progress(move |progress| drawing.show(progress));
    }
    let client = client_of(options)?;
    let call = client.send_async(&request);
    let interrupted = interrupts
        .as_ref()
        .is_some_and(|interrupts| interrupts.interrupted_before(&call));
    if interrupted {
        call.cancel();
    }
    let sent = call.wait(None);
    if let Some(bar) = &bar {
        bar.finish();
    }
    if interrupted {
        // The call's message says whether the server may have processed it.
        let why = sent
            .err()
            .map_or_else(String::new, |e| format!(": {}", e.message()));
        return Err(Failure {
            code: 130,
            message: format!("interrupted{why}"),
        });
    }
    let response = match sent {
        Ok(response) => response,
        // `-o -` into a pipe whose reader went away: end as `head` would.
        Err(e) if e.kind() == enos_token::ErrorKind::Io && stdout::reader_gone() => {
            stdout::die_of_sigpipe()
        }
        Err(e) => return Err(library(e)),
    };
    if options.include {
        let mut head = format!("HTTP/1.1 {}\n", response.status());
        for (name, value) in response.headers() {
            head.push_str(&format!("{name}: {value}\n"));
        }
        head.push('\n');
        stdout::write_from_server(head.as_bytes())?;
    }
    stdout::write_from_server(response.body())?;
    Ok(if (200..300).contains(&response.status()) {
        0
    } else {
        1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_read_as_curl_reads_them() {
        assert_eq!(
            form_part("enos-message=<msg.json;type=application/json").unwrap(),
            FormPart::FileContent {
                name: "enos-message".into(),
                path: "msg.json".into(),
                content_type: Some("application/json".into())
            }
        );
        assert_eq!(
            form_part("enos-file=@fw.bin;filename=\"fw 2.bin\";type=application/octet-stream")
                .unwrap(),
            FormPart::File {
                name: "enos-file".into(),
                path: "fw.bin".into(),
                file_name: Some("fw 2.bin".into()),
                content_type: Some("application/octet-stream".into())
            }
        );
        assert_eq!(
            form_part("note=a;b=c").unwrap(),
            FormPart::Text {
                name: "note".into(),
                text: "a;b=c".into(),
                content_type: None
            }
        );
        assert!(form_part("no-equals").is_err());
        assert!(form_part("=x").is_err());
    }
}
