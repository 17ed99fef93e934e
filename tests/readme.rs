//! The guides' code snippets (README.md and examples/*/README.md) are the
//! tested examples, word for word: each
//! block after `<!-- snippet: NAME FILE -->` must equal the lines between
//! `snippet:begin NAME` and `snippet:end NAME` in FILE (less their common
//! indentation). Change the example, then paste it into the guide.

use std::path::Path;

fn dedent(lines: &[&str]) -> String {
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

fn region(file: &str, name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let lines: Vec<&str> = text.lines().collect();
    let begin = lines
        .iter()
        .position(|l| l.contains(&format!("snippet:begin {name}")))
        .unwrap_or_else(|| panic!("{file} has no snippet:begin {name}"));
    let end = lines
        .iter()
        .position(|l| l.contains(&format!("snippet:end {name}")))
        .unwrap_or_else(|| panic!("{file} has no snippet:end {name}"));
    dedent(&lines[begin + 1..end])
}

/// The README and the per-language guides.
const GUIDES: [&str; 6] = [
    "README.md",
    "examples/c/README.md",
    "examples/cpp/README.md",
    "examples/python/README.md",
    "examples/node/README.md",
    "examples/go/README.md",
];

#[test]
fn readme_snippets_match_the_tested_examples() {
    let mut checked = Vec::new();
    for guide in GUIDES {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(guide);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{guide}: {e}"));
        checked.extend(check_snippets(guide, &text));
    }
    for expected in ["c", "cpp", "python", "node"] {
        assert!(
            checked.contains(&expected.to_string()),
            "no guide has the snippet {expected}: {checked:?}"
        );
    }
}

#[test]
fn the_readme_stays_short() {
    let readme = include_str!("../README.md");
    assert!(
        readme.len() <= 12 * 1024,
        "README.md is {} bytes",
        readme.len()
    );
}

/// Checks the snippets of one guide; returns their names.
fn check_snippets(guide: &str, text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut checked = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(marker) = line
            .trim()
            .strip_prefix("<!-- snippet: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        let (name, file) = marker.split_once(' ').expect("<!-- snippet: NAME FILE -->");
        let open = i + 1;
        assert!(
            lines[open].starts_with("```"),
            "{guide} line {}: a code block must follow",
            open + 1
        );
        let close = lines[open + 1..]
            .iter()
            .position(|l| l.starts_with("```"))
            .map(|p| open + 1 + p)
            .expect("the code block ends");
        let block = dedent(&lines[open + 1..close]);
        let example = region(file, name);
        assert_eq!(
            block, example,
            "{guide}: snippet {name} differs from {file}; paste the example into it"
        );
        checked.push(name.to_string());
    }
    checked
}
