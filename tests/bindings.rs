//! The bindings cannot drift from the header: every C function declared in
//! `include/enos_token.h` is bound by the C++ wrapper, the Python module, the
//! Node module and the Go package (its two files), and every status is known to the Python and Node error
//! tables by its name and number. Adding a function or a status to the C
//! API without binding it fails here (the few intended exceptions are
//! listed with their reason).

use std::collections::BTreeSet;

const HEADER: &str = include_str!("../include/enos_token.h");

const BINDINGS: [(&str, &str); 4] = [
    ("C++", include_str!("../include/enos_token.hpp")),
    (
        "Python",
        include_str!("../examples/python/enos_token/__init__.py"),
    ),
    ("Node", include_str!("../examples/node/enos_token.js")),
    (
        "Go",
        concat!(
            include_str!("../examples/go/enostoken.go"),
            include_str!("../examples/go/request.go"),
            include_str!("../examples/go/context.go"),
            include_str!("../examples/go/logger.go")
        ),
    ),
];

/// Functions a binding leaves out on purpose, and why.
const NOT_BOUND: [(&str, &str, &str); 2] = [
    (
        "Go",
        "enos_call_fd",
        "DoContext waits on the completion callback through a channel; the descriptor is for hosts with their own event loop",
    ),
    (
        "Go",
        "enos_call_done",
        "DoContext waits on the completion callback through a channel; polling is for hosts with their own event loop",
    ),
];

/// The functions the header declares.
fn functions() -> BTreeSet<String> {
    HEADER
        .lines()
        .filter(|line| !line.starts_with(' ') && !line.starts_with('*') && line.contains('('))
        .filter_map(|line| {
            let name_end = line.find('(')?;
            let name = line[..name_end].rsplit([' ', '*']).next()?;
            name.starts_with("enos_").then(|| name.to_string())
        })
        .collect()
}

/// `(name, value)` of every `enos_status`.
fn statuses() -> Vec<(String, u32)> {
    HEADER
        .lines()
        .filter_map(|line| {
            let (name, value) = line.trim().trim_end_matches(',').split_once(" = ")?;
            (name == "ENOS_OK" || name.starts_with("ENOS_ERR_"))
                .then(|| (name.to_string(), value.parse().ok()))?
                .1
                .map(|value| (name.to_string(), value))
        })
        .collect()
}

fn mentions(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let after = text[at + word.len()..].chars().next();
        let before = text[..at].chars().next_back();
        let part_of_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !part_of_word(before) && !part_of_word(after)
    })
}

#[test]
fn the_header_declares_what_the_bindings_are_checked_against() {
    let functions = functions();
    assert!(functions.len() >= 24, "{functions:?}");
    assert!(functions.contains("enos_client_builder_set_shared_cache"));
    let statuses = statuses();
    assert_eq!(statuses.len(), 12, "{statuses:?}");
    assert_eq!(statuses[9], ("ENOS_ERR_INTERNAL".to_string(), 9));
    assert_eq!(statuses[11], ("ENOS_ERR_IO".to_string(), 11));
}

#[test]
fn every_c_function_is_bound_everywhere() {
    let mut missing = Vec::new();
    for function in functions() {
        for (binding, text) in BINDINGS {
            let excused = NOT_BOUND
                .iter()
                .any(|(b, f, _)| *b == binding && *f == function);
            if !excused && !mentions(text, &function) {
                missing.push(format!("{binding}: {function}"));
            }
        }
    }
    assert!(missing.is_empty(), "not bound: {missing:#?}");
}

#[test]
fn every_status_is_in_the_python_and_node_tables() {
    let (python, node) = (BINDINGS[1].1, BINDINGS[2].1);
    let node_table = node
        .split("const STATUS_NAMES = [")
        .nth(1)
        .and_then(|rest| rest.split("];").next())
        .expect("Node's STATUS_NAMES");
    let node_names: Vec<&str> = node_table
        .split(',')
        .map(|name| name.trim().trim_matches('\''))
        .filter(|name| !name.is_empty())
        .collect();
    for (name, value) in statuses() {
        assert_eq!(
            node_names.get(value as usize).copied(),
            Some(name.as_str()),
            "Node's STATUS_NAMES[{value}]"
        );
        if value > 0 {
            assert!(
                python.contains(&format!("\"\"\"{name} ({value}):")),
                "Python has no error class for {name} ({value})"
            );
            assert!(
                python.contains(&format!("    {value}: ")),
                "Python's table has no entry for {value}"
            );
        }
    }
}
