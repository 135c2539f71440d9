//! The README's option tables say what the binary does: every flag of
//! `duplex` and of `duplex push` has a row with its env variable and
//! default, and no row names a flag that does not exist.
//!
//! The truth is the binary's own `--help`, so the flags of `main.rs` (its
//! `Cli` flattens `Config` and adds `--log-format` and `--workers`) are
//! covered without a copy of that struct here and without anything made
//! public for the test.

use std::collections::BTreeMap;
use std::process::Command;

/// One option as `--help` prints it.
#[derive(Debug)]
struct HelpOption {
    env: Option<String>,
    default: Option<String>,
}

/// One row of a README table: flag, env and default cells.
#[derive(Debug)]
struct Row {
    env: String,
    default: String,
}

/// Runs `duplex ARGS --help` with an empty environment (so clap shows no
/// `DUPLEX_*` values from the caller's shell) and returns its text.
fn help(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_duplex"))
        .args(args)
        .arg("--help")
        .env_clear()
        .output()
        .expect("duplex runs");
    assert!(output.status.success(), "duplex {args:?} --help failed");
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

/// The `--long` options of a help text, with the `[env: …]` and
/// `[default: …]` clap prints for each. `--help` and `--version` are left
/// out: they have nothing to configure.
///
/// An option starts at a line indented by at most 6 spaces whose text
/// starts with `-` (`      --listen <LISTEN>`, `  -h, --help`); its
/// description, inline or on the lines after (indented by 10), runs to the
/// next such line or a blank-line-separated section.
fn parse_help(text: &str) -> BTreeMap<String, HelpOption> {
    let mut options = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    let mut finish = |current: Option<(String, String)>| {
        if let Some((long, block)) = current
            && long != "--help"
            && long != "--version"
        {
            let option = HelpOption {
                env: bracketed(&block, "[env: ")
                    .map(|env| env.split('=').next().unwrap_or_default().to_owned()),
                default: bracketed(&block, "[default: "),
            };
            options.insert(long, option);
        }
    };
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        if indent <= 6 && trimmed.starts_with('-') {
            finish(current.take());
            let long = trimmed
                .split([' ', ','])
                .find(|word| word.starts_with("--"))
                .unwrap_or_else(|| panic!("no --long flag in help line {line:?}"));
            current = Some((long.to_owned(), line.to_owned()));
        } else if indent < 10 && !trimmed.is_empty() {
            // A heading ("Commands:", "Arguments:") or a positional
            // argument: the option before it has ended.
            finish(current.take());
        } else if let Some((_, block)) = &mut current {
            block.push('\n');
            block.push_str(line);
        }
    }
    finish(current);
    options
}

/// The text between `open` and the next `]`, if `open` occurs.
fn bracketed(block: &str, open: &str) -> Option<String> {
    let start = block.find(open)? + open.len();
    let end = block[start..].find(']')? + start;
    Some(block[start..end].to_owned())
}

/// The rows of the README table whose header row starts with
/// `| {first_header} |`, keyed by the flag in the first cell.
fn readme_table(readme: &str, first_header: &str) -> BTreeMap<String, Row> {
    let header = format!("| {first_header} |");
    let mut lines = readme.lines().skip_while(|line| !line.starts_with(&header));
    assert!(
        lines.next().is_some(),
        "README.md has no table whose header starts with {header:?}"
    );
    let mut rows = BTreeMap::new();
    for line in lines.skip(1).take_while(|line| line.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // cells[0] is the empty text before the first `|`.
        let [_, flag, env, default, ..] = cells[..] else {
            panic!("README row {line:?} has fewer than three cells");
        };
        let flag = flag.trim_matches('`').to_owned();
        let row = Row {
            env: env.to_owned(),
            default: default.to_owned(),
        };
        assert!(
            rows.insert(flag.clone(), row).is_none(),
            "README table {header:?} has two rows for {flag}"
        );
    }
    rows
}

/// Every disagreement between `--help` and the README table, one line each.
fn drift(
    command: &str,
    help: &BTreeMap<String, HelpOption>,
    rows: &BTreeMap<String, Row>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (long, option) in help {
        let Some(row) = rows.get(long) else {
            problems.push(format!("{command} {long}: no row in the README table"));
            continue;
        };
        let want_env = option
            .env
            .as_ref()
            .map_or_else(String::new, |env| format!("`{env}`"));
        if row.env != want_env {
            problems.push(format!(
                "{command} {long}: README env is {:?}, the binary's is {want_env:?}",
                row.env
            ));
        }
        match &option.default {
            // A note may follow the value: `0` (one per usable CPU).
            Some(default) => {
                let want = format!("`{default}`");
                let value = row.default.split_whitespace().next().unwrap_or_default();
                if value != want {
                    problems.push(format!(
                        "{command} {long}: README default is {:?}, the binary's is {want:?}",
                        row.default
                    ));
                }
            }
            None => {
                if !matches!(row.default.as_str(), "" | "unset") {
                    problems.push(format!(
                        "{command} {long}: README default is {:?}, but the binary has none \
                         (write `unset` or leave the cell empty)",
                        row.default
                    ));
                }
            }
        }
    }
    for flag in rows.keys() {
        if !help.contains_key(flag) {
            problems.push(format!(
                "{command} {flag}: the README table has a row for it, but the binary has no such flag"
            ));
        }
    }
    problems
}

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"))
}

#[test]
fn help_is_parsed_into_every_option() {
    // Guards the parser: if clap's help layout changed under it, the drift
    // checks below would compare against nothing.
    let options = parse_help(&help(&[]));
    assert!(options.len() >= 20, "only {} options parsed", options.len());
    let listen = &options["--listen"];
    assert_eq!(listen.env.as_deref(), Some("DUPLEX_LISTEN"));
    assert_eq!(listen.default.as_deref(), Some("127.0.0.1:8080"));
    let token = &options["--push-token"];
    assert_eq!(token.env.as_deref(), Some("DUPLEX_PUSH_TOKEN"));
    assert_eq!(token.default, None);
    assert_eq!(options["--log-format"].default.as_deref(), Some("text"));
    let push = parse_help(&help(&["push"]));
    assert_eq!(push["--timeout"].env, None);
    assert_eq!(push["--timeout"].default.as_deref(), Some("10s"));
}

#[test]
fn configuration_table_matches_the_server_flags() {
    let problems = drift(
        "duplex",
        &parse_help(&help(&[])),
        &readme_table(&readme(), "flag"),
    );
    assert!(
        problems.is_empty(),
        "README.md's Configuration table drifted from the code:\n{}",
        problems.join("\n")
    );
}

#[test]
fn push_table_matches_the_push_flags() {
    let problems = drift(
        "duplex push",
        &parse_help(&help(&["push"])),
        &readme_table(&readme(), "`duplex push`"),
    );
    assert!(
        problems.is_empty(),
        "README.md's `duplex push` table drifted from the code:\n{}",
        problems.join("\n")
    );
}
