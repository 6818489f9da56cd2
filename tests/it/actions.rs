//! Tests of the Actions I/O adapter: escaping against the toolkit's vectors, command
//! rendering and the runner's parsing, the annotation budget, `GITHUB_OUTPUT` written and
//! read back with the runner's rules, the step summary limit, the environment, masking.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use agent_gate::adapters::actions::{
    ActionsEnv, ActionsError, ActionsIo, Annotation, Annotations, Command, DELIMITER_PREFIX,
    FileCommandParseError, Level, MAX_MESSAGE_LEN, Masker, SUMMARY_LIMIT, add_mask, debug,
    endgroup, error, escape_data, escape_property, fit_summary, format_key_value, group, notice,
    parse_file_command, set_output, unescape_data, unescape_property, warning, write_summary,
};
use insta::assert_snapshot;
use proptest::prelude::*;
use uuid::Uuid;

const TSV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/conformance/actions-commands.tsv"
);

// ---------------------------------------------------------------------------------------
// helpers

/// Decode the TSV's own escapes: `\\`, `\t`, `\n`, `\r`; everything else is literal.
fn decode_tsv(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            other => panic!("unknown escape \\{other:?} in {field:?}"),
        }
    }
    out
}

/// A temp dir with empty runner files, as the runner creates them before a step.
struct RunnerFiles {
    _dir: tempfile::TempDir,
    output: PathBuf,
    summary: PathBuf,
}

impl RunnerFiles {
    fn new() -> RunnerFiles {
        let dir = tempfile::tempdir().expect("temp dir");
        let output = dir.path().join("set_output_1");
        let summary = dir.path().join("step_summary_1");
        fs::write(&output, "").expect("output file");
        fs::write(&summary, "").expect("summary file");
        RunnerFiles {
            _dir: dir,
            output,
            summary,
        }
    }

    fn env(&self, actions: bool) -> ActionsEnv {
        let mut vars = vec![
            (
                "GITHUB_OUTPUT".to_string(),
                self.output.display().to_string(),
            ),
            (
                "GITHUB_STEP_SUMMARY".to_string(),
                self.summary.display().to_string(),
            ),
        ];
        if actions {
            vars.push(("GITHUB_ACTIONS".to_string(), "true".to_string()));
        }
        ActionsEnv::from_vars(vars)
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).expect("read runner file")
}

fn vars(pairs: &[(&str, &str)]) -> ActionsEnv {
    ActionsEnv::from_vars(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string())),
    )
}

// ---------------------------------------------------------------------------------------
// escaping

#[test]
fn escaping_matches_every_toolkit_vector() {
    let text = fs::read_to_string(TSV).expect("tests/data/conformance/actions-commands.tsv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("kind\tinput\tescaped\tsource"));
    let (mut data, mut property) = (0, 0);
    for (n, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 4, "row {}: {line:?}", n + 2);
        let (input, escaped) = (decode_tsv(fields[1]), decode_tsv(fields[2]));
        assert!(!escaped.contains(['\r', '\n']), "row {}", n + 2);
        match fields[0] {
            "data" => {
                data += 1;
                assert_eq!(
                    escape_data(&input),
                    escaped,
                    "row {} ({})",
                    n + 2,
                    fields[3]
                );
                assert_eq!(unescape_data(&escaped), input, "row {} decode", n + 2);
            }
            "property" => {
                property += 1;
                assert_eq!(
                    escape_property(&input),
                    escaped,
                    "row {} ({})",
                    n + 2,
                    fields[3]
                );
                assert_eq!(unescape_property(&escaped), input, "row {} decode", n + 2);
            }
            other => panic!("row {}: unknown kind {other}", n + 2),
        }
    }
    assert_eq!(
        (data, property),
        (23, 17),
        "the README promises 23 data and 17 property rows"
    );
}

proptest! {
    #[test]
    fn data_round_trips_and_has_no_line_breaks(text in any::<String>()) {
        let escaped = escape_data(&text);
        prop_assert!(!escaped.contains(['\r', '\n']));
        prop_assert_eq!(unescape_data(&escaped), text);
    }

    #[test]
    fn property_round_trips_without_separators(text in any::<String>()) {
        let escaped = escape_property(&text);
        prop_assert!(!escaped.contains(['\r', '\n', ':', ',']));
        prop_assert_eq!(unescape_property(&escaped), text);
    }

    #[test]
    fn percent_heavy_text_round_trips(text in "[%0-9A-Dac:,\r\n]{0,40}") {
        prop_assert_eq!(unescape_data(&escape_data(&text)), text.clone());
        prop_assert_eq!(unescape_property(&escape_property(&text)), text);
    }

    #[test]
    fn rendered_commands_parse_back_as_the_runner_reads_them(
        title in any::<String>(),
        file in any::<String>(),
        line in 0u32..5000,
        message in "(?s).{0,300}",
    ) {
        let annotation = Annotation { title: Some(title.clone()), file: Some(file.clone()),
            line: Some(line), message: message.clone(), ..Annotation::default() };
        let rendered = error(&annotation).to_string();
        prop_assert!(!rendered.contains(['\r', '\n']));
        let parsed = Command::parse(&rendered).expect("a command");
        prop_assert_eq!(&parsed.name, "error");
        prop_assert_eq!(&parsed.message, &message);
        // Values keep everything but what the runner itself loses: the whole property
        // string is trimmed, so the last value loses trailing whitespace, and a value left
        // empty is dropped.
        let mut expected: Vec<(&str, String)> = vec![("title", title), ("file", file)];
        if line != 0 {
            expected.push(("line", line.to_string()));
        }
        expected.retain(|(_, v)| !v.is_empty());
        if let Some(last) = expected.last_mut() {
            last.1 = last.1.trim_end().to_string();
        }
        expected.retain(|(_, v)| !v.is_empty());
        let got: Vec<(&str, String)> =
            parsed.properties.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        prop_assert_eq!(got, expected);
    }
}

// ---------------------------------------------------------------------------------------
// commands

#[test]
fn command_lines_render_like_the_toolkit() {
    let full = Annotation::new("2 files outside the scope:\nsrc/a.rs\nsrc/b,c.rs")
        .file("src/a.rs")
        .lines(3, 3)
        .columns(5, 9)
        .title("Scope: deny rule `migrations/**`");
    let lines = [
        add_mask("tok%en\nline2"),
        error(&full),
        warning(&Annotation::new("check `clippy` timed out after 20m").title("")),
        notice(&Annotation::new("100% done").file("C:\\src\\a.rs").line(0)),
        group("check: unit tests (cargo test --locked)"),
        Command::new("x", "a::b"),
        endgroup(),
        debug("poll: state=working, next in 10s"),
    ]
    .map(|c| c.to_string())
    .join("\n");
    assert_snapshot!("command_lines", lines);
}

#[test]
fn empty_and_zero_properties_are_left_out() {
    let command = Annotation::new("m")
        .title("")
        .line(0)
        .to_command(Level::Warning);
    assert_eq!(command.to_string(), "::warning::m");
    let command = Command::new("error", "m")
        .property("file", "")
        .property("title", "t");
    assert_eq!(command.to_string(), "::error title=t::m");
}

#[test]
fn runner_parsing_rules_hold() {
    let parsed =
        Command::parse("   ::error file=a%2Cb.rs,,line=3,=x,y=,Title=one::msg::with::colons")
            .expect("command");
    assert_eq!(parsed.name, "error");
    assert_eq!(parsed.get("file"), Some("a,b.rs"));
    assert_eq!(parsed.get("line"), Some("3"));
    assert_eq!(
        parsed.get("title"),
        Some("one"),
        "keys are case-insensitive"
    );
    assert_eq!(parsed.get("y"), None, "empty values are dropped");
    assert_eq!(parsed.message, "msg::with::colons");
    assert_eq!(Command::parse("plain text"), None);
    assert_eq!(Command::parse("::no end"), None);
    assert_eq!(Command::parse("::endgroup::"), Some(endgroup()));
}

#[test]
fn long_messages_are_truncated_with_a_marker() {
    let long = "a".repeat(5000);
    let rendered = error(&Annotation::new(long.clone())).to_string();
    let message = Command::parse(&rendered).expect("command").message;
    assert_eq!(message.encode_utf16().count(), MAX_MESSAGE_LEN);
    assert!(message.starts_with("aaaa"));
    assert_snapshot!("truncated_message_tail", &message[message.len() - 60..]);

    // Counted in UTF-16 units as the .NET runner counts: an emoji is two.
    let emoji = "🦀".repeat(3000);
    let message = Command::parse(&debug(&emoji).to_string())
        .expect("command")
        .message;
    assert!(message.encode_utf16().count() <= MAX_MESSAGE_LEN);
    assert!(message.ends_with("more characters]"));

    // Exactly at the limit: untouched.
    let exact = "b".repeat(MAX_MESSAGE_LEN);
    assert_eq!(
        Command::parse(&debug(&exact).to_string())
            .expect("command")
            .message,
        exact
    );

    // A secret is never cut: the runner would mask only its head.
    let secret = "s".repeat(5000);
    assert_eq!(
        Command::parse(&add_mask(&secret).to_string())
            .expect("command")
            .message,
        secret
    );
}

// ---------------------------------------------------------------------------------------
// annotation budget

fn numbered(annotations: &mut Annotations, level: Level, priorities: &[u32]) {
    for (i, p) in priorities.iter().enumerate() {
        annotations.push(level, *p, Annotation::new(format!("{level:?} #{i} p{p}")));
    }
}

#[test]
fn at_most_ten_per_level_most_important_first_with_a_note() {
    let mut annotations = Annotations::new();
    let priorities: Vec<u32> = (0..25).map(|i| (i * 7) % 25).collect();
    numbered(&mut annotations, Level::Error, &priorities);
    numbered(&mut annotations, Level::Warning, &[1, 5, 5]);
    let commands = annotations.commands();
    let errors: Vec<&Command> = commands.iter().filter(|c| c.name == "error").collect();
    let warnings: Vec<&Command> = commands.iter().filter(|c| c.name == "warning").collect();
    assert_eq!(errors.len(), 10);
    // Priorities 24..=16 shown, in that order.
    let shown: Vec<String> = errors[..9].iter().map(|c| c.message.clone()).collect();
    let expected: Vec<String> = (16..25)
        .rev()
        .map(|p| {
            let i = priorities.iter().position(|&x| x == p).expect("priority");
            format!("Error #{i} p{p}")
        })
        .collect();
    assert_eq!(shown, expected);
    assert_snapshot!("overflow_note", errors[9].to_string());
    // Warnings fit: all shown, equal priorities in insertion order, no note.
    let warnings: Vec<&str> = warnings.iter().map(|c| c.message.as_str()).collect();
    assert_eq!(
        warnings,
        ["Warning #1 p5", "Warning #2 p5", "Warning #0 p1"]
    );
    // Errors come before warnings; the hidden ones are the 16 lowest.
    assert_eq!(commands[0].name, "error");
    let hidden = annotations.hidden();
    assert_eq!(hidden.len(), 16);
    assert!(
        hidden
            .iter()
            .all(|e| e.level == Level::Error && e.priority < 16)
    );
}

#[test]
fn exactly_ten_fit_and_eleven_overflow_by_two() {
    let mut ten = Annotations::new();
    numbered(&mut ten, Level::Warning, &[0; 10]);
    assert_eq!(ten.commands().len(), 10);
    assert!(
        ten.commands()
            .iter()
            .all(|c| c.message.starts_with("Warning #"))
    );
    assert!(ten.hidden().is_empty());

    let mut eleven = Annotations::new();
    numbered(&mut eleven, Level::Warning, &[0; 11]);
    let commands = eleven.commands();
    assert_eq!(commands.len(), 10);
    assert!(
        commands[9]
            .message
            .starts_with("2 more warnings are listed in the step summary")
    );
    assert_eq!(
        commands[9].name, "warning",
        "the note takes the level's own slot"
    );
    assert_eq!(eleven.hidden().len(), 2);
}

// ---------------------------------------------------------------------------------------
// GITHUB_OUTPUT

#[test]
fn outputs_are_heredocs_with_a_random_checked_delimiter() {
    let files = RunnerFiles::new();
    set_output(&files.output, "my out", "out val").expect("set output");
    let text = read(&files.output);
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines.len(), 4, "{text:?}");
    let delimiter = lines[0].strip_prefix("my out<<").expect("heredoc header");
    let uuid = delimiter
        .strip_prefix(DELIMITER_PREFIX)
        .expect("ghadelimiter_ prefix");
    assert_eq!(Uuid::parse_str(uuid).expect("uuid").get_version_num(), 4);
    assert_eq!(lines[1..], ["out val", delimiter, ""]);
}

#[test]
fn tricky_values_round_trip_through_writer_and_runner_parser() {
    let files = RunnerFiles::new();
    let values = [
        ("multi", "line 1\nline 2\n"),
        ("percent", "100% %25 %0A"),
        ("commands", "::error::not a command\n::set-output name=x::y"),
        ("cr", "a\r\nb\r"),
        (
            "looks-like-delimiter",
            "ghadelimiter_9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d\nEOF\n<<EOF",
        ),
        ("empty", ""),
        ("only newline", "\n"),
        ("equals", "a=b<<c"),
        ("unicode", "héllo 🦀"),
    ];
    for (name, value) in values {
        set_output(&files.output, name, value).expect(name);
    }
    let parsed = parse_file_command(&read(&files.output)).expect("runner parses the file");
    let expected: Vec<(String, String)> = values
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    assert_eq!(parsed, expected, "every output, in order");
}

#[test]
fn a_delimiter_found_in_the_value_is_drawn_again() {
    let first = Uuid::from_u128(0x9b1d_eb4d_3b7d_4bad_9bdd_2b0d_7b3d_cb6d);
    let second = Uuid::from_u128(0x1111_1111_1111_4111_8111_1111_1111_1111);
    let value = format!("x\n{DELIMITER_PREFIX}{first}\ny");
    let mut draws = [first, second].into_iter();
    let record = format_key_value("out", &value, || draws.next().expect("a uuid")).expect("record");
    assert!(record.starts_with(&format!("out<<{DELIMITER_PREFIX}{second}\n")));
    assert_eq!(
        parse_file_command(&record).expect("parse"),
        [("out".to_string(), value.clone())]
    );

    let error = format_key_value("out", &value, || first).expect_err("always colliding");
    assert!(
        matches!(error, ActionsError::DelimiterCollision { attempts: 3, .. }),
        "{error:?}"
    );
    let error = format_key_value(&format!("{DELIMITER_PREFIX}{first}"), "v", || first)
        .expect_err("the name holds the delimiter");
    assert!(matches!(error, ActionsError::DelimiterCollision { .. }));
}

#[test]
fn names_the_runner_would_misread_are_refused() {
    let files = RunnerFiles::new();
    for name in ["", "a\nb", "a\rb", "a=b", "a<<b", "a<", "<<"] {
        let error = set_output(&files.output, name, "v").expect_err(name);
        assert!(
            matches!(error, ActionsError::InvalidName { .. }),
            "{name:?}: {error:?}"
        );
    }
    assert_eq!(read(&files.output), "", "nothing written");
    let error = set_output(&files.output, "a=b", "v").expect_err("refused");
    assert_snapshot!("invalid_name_error", error.to_string());
    // Names the toolkit example uses are fine.
    set_output(&files.output, "my out", "v").expect("space is fine");
    set_output(&files.output, "task-id", "v").expect("hyphen is fine");
}

#[test]
fn a_missing_output_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("missing");
    let error = set_output(&path, "x", "y").expect_err("no file");
    assert!(matches!(&error, ActionsError::Io { path: p, .. } if *p == path));
    assert!(!path.exists(), "the runner's file is not invented");
}

proptest! {
    #[test]
    fn any_value_round_trips(
        name in "[A-Za-z_][A-Za-z0-9 _-]{0,20}",
        value in any::<String>(),
        other in any::<String>(),
    ) {
        let record = format_key_value(&name, &value, Uuid::new_v4).expect("record");
        let record2 = format_key_value("second", &other, Uuid::new_v4).expect("record");
        let parsed = parse_file_command(&(record + &record2)).expect("parse");
        prop_assert_eq!(parsed, vec![(name, value), ("second".to_string(), other)]);
    }
}

#[test]
fn runner_parser_reads_name_value_lines_and_heredocs() {
    let text = "a=b=c\n\nx=1<<y\nh<<EOF\nv=1\n<<\nEOF\ncr=v\r\nlast<<E\nE";
    let parsed = parse_file_command(text).expect("valid");
    let expected = [
        ("a", "b=c"),
        ("x", "1<<y"),
        ("h", "v=1\n<<"),
        ("cr", "v\r"),
        ("last", ""),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    assert_eq!(parsed, expected);
    assert_eq!(parse_file_command("").expect("empty file"), []);
}

#[test]
fn runner_parser_errors() {
    let missing = parse_file_command("ok=1\nname<<EOF\nvalue\nEOF2\n").expect_err("no delimiter");
    assert_eq!(
        missing,
        FileCommandParseError::MissingDelimiter {
            line: 2,
            name: "name".into(),
            delimiter: "EOF".into()
        }
    );
    assert_snapshot!("missing_delimiter_error", missing.to_string());
    let eof = parse_file_command("name<<EOF\nvalue").expect_err("unterminated");
    assert!(
        matches!(
            eof,
            FileCommandParseError::EofMissingNewline { line: 2, .. }
        ),
        "{eof:?}"
    );
    for bad in ["garbage", "=value", "<<EOF", "name<<"] {
        let error = parse_file_command(bad).expect_err(bad);
        assert!(
            matches!(error, FileCommandParseError::InvalidFormat { line: 1, .. }),
            "{bad}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// step summary

#[test]
fn a_summary_under_the_limit_is_appended_as_is() {
    let files = RunnerFiles::new();
    let first = write_summary(&files.summary, "# one\n", "x").expect("write");
    let second = write_summary(&files.summary, "# two\n", "x").expect("write");
    assert!(!first.truncated && !second.truncated);
    assert_eq!(read(&files.summary), "# one\n# two\n");
}

#[test]
fn an_oversized_summary_is_cut_at_a_line_under_one_mib_with_a_note() {
    let files = RunnerFiles::new();
    fs::write(&files.summary, "# earlier step content\n").expect("seed");
    let mut markdown =
        String::from("## Checks\n\n<details><summary>unit tests</summary>\n\n```text\n");
    let mut n = 0;
    while markdown.len() < 2 * SUMMARY_LIMIT {
        writeln!(markdown, "test module::case_{n} ... ok — é").expect("write to a String");
        n += 1;
    }
    let result = write_summary(
        &files.summary,
        &markdown,
        "the `agent-gate-report` artifact",
    )
    .expect("write");
    let bytes = fs::read(&files.summary).expect("read");
    assert!(bytes.len() <= SUMMARY_LIMIT, "{} bytes", bytes.len());
    assert!(bytes.len() > SUMMARY_LIMIT - 4096, "the room is used");
    let text = String::from_utf8(bytes).expect("valid UTF-8");
    assert!(result.truncated);
    assert_eq!(
        result.written + "# earlier step content\n".len(),
        text.len()
    );
    let note_at = text.find("\n> [!WARNING]").expect("note");
    let kept = &text["# earlier step content\n".len()..note_at];
    // Cut after a whole line, then the fence and the <details> closed.
    let body = kept.strip_suffix("```\n</details>\n").expect("closers");
    assert!(markdown.starts_with(body) && body.ends_with(" ok — é\n"));
    assert_eq!(result.omitted, markdown.len() - body.len());
    assert!(text.ends_with(&format!(
        "{} bytes were left out to stay under GitHub's 1 MiB step-summary limit. The full report is in the `agent-gate-report` artifact.\n",
        result.omitted
    )));
}

#[test]
fn the_truncated_summary_reads_well() {
    let markdown = "# agent-gate: checks-failed\n\n\
        | file | rule |\n|---|---|\n\
        | src/a.rs | allow `src/**` (line 3) |\n\
        | src/b.rs | allow `src/**` (line 3) |\n\n\
        <details><summary>unit tests: exit 101</summary>\n\n\
        ```text\n\
        test a ... ok\n\
        test b ... FAILED\n\
        test c ... ok\n\
        test d ... ok\n\
        test e ... ok\n\
        test f ... ok\n\
        test g ... ok\n\
        test h ... ok\n\
        test i ... ok\n\
        test j ... ok\n\
        test k ... ok\n\
        test l ... ok\n\
        test m ... ok\n\
        test n ... ok\n\
        test result: FAILED. 13 passed; 1 failed\n\
        ```\n\
        </details>\n";
    let limit = 440;
    let report = "the audit file `/github/runner_temp/agent-gate.jsonl`";
    let (text, result) = fit_summary(limit, 0, markdown, report);
    assert!(markdown.len() > limit, "{} bytes", markdown.len());
    assert!(
        result.truncated && text.len() <= limit,
        "{} bytes",
        text.len()
    );
    assert_snapshot!("truncated_summary", text);
}

#[test]
fn one_huge_line_is_cut_on_a_character_boundary() {
    let markdown = "é".repeat(SUMMARY_LIMIT);
    let (text, result) = fit_summary(SUMMARY_LIMIT, 10, &markdown, "x");
    assert!(result.truncated);
    assert!(text.len() + 10 <= SUMMARY_LIMIT);
    assert!(text.starts_with("éé"));
    // A full file: nothing fits, nothing is written.
    let (text, result) = fit_summary(SUMMARY_LIMIT, SUMMARY_LIMIT, "more", "x");
    assert_eq!((text.as_ref(), result.written, result.omitted), ("", 0, 4));
}

// ---------------------------------------------------------------------------------------
// environment

#[test]
fn the_environment_is_read_from_the_injected_variables() {
    let env = vars(&[
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_OUTPUT", "/github/file_commands/set_output_1"),
        (
            "GITHUB_STEP_SUMMARY",
            "/github/file_commands/step_summary_1",
        ),
        ("GITHUB_ENV", "/github/file_commands/set_env_1"),
        ("GITHUB_STATE", "/github/file_commands/save_state_1"),
        ("GITHUB_PATH", ""),
        ("GITHUB_WORKSPACE", "/github/workspace"),
        ("GITHUB_EVENT_PATH", "/github/workflow/event.json"),
        ("GITHUB_REPOSITORY", "octo-org/payments"),
        ("GITHUB_RUN_ID", "1234567890"),
        ("GITHUB_RUN_ATTEMPT", "1"),
        ("GITHUB_JOB", "gate"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_API_URL", "https://api.github.com"),
        ("GITHUB_REF", "refs/heads/main"),
        ("GITHUB_SHA", "0123abcd"),
        ("GITHUB_ACTOR", "octocat"),
        ("GITHUB_EVENT_NAME", "workflow_dispatch"),
        ("GITHUB_WORKFLOW", "agent"),
        ("RUNNER_TEMP", "/github/runner_temp"),
        ("INPUT_NUM-OCTOCATS", "  3 \n"),
        ("INPUT_MY_INPUT", "spaced"),
        ("INPUT_BLANK", "   "),
        ("INPUT_EMPTY", ""),
    ]);
    assert!(env.is_actions);
    assert_eq!(
        env.output_file.as_deref(),
        Some(Path::new("/github/file_commands/set_output_1"))
    );
    assert_eq!(
        env.summary_file.as_deref(),
        Some(Path::new("/github/file_commands/step_summary_1"))
    );
    assert_eq!(
        env.env_file.as_deref(),
        Some(Path::new("/github/file_commands/set_env_1"))
    );
    assert_eq!(
        env.state_file.as_deref(),
        Some(Path::new("/github/file_commands/save_state_1"))
    );
    assert_eq!(env.path_file, None, "empty counts as unset");
    assert_eq!(
        env.workspace.as_deref(),
        Some(Path::new("/github/workspace"))
    );
    assert_eq!(
        env.event_path.as_deref(),
        Some(Path::new("/github/workflow/event.json"))
    );
    assert_eq!(
        env.runner_temp.as_deref(),
        Some(Path::new("/github/runner_temp"))
    );
    assert_eq!(env.repository.as_deref(), Some("octo-org/payments"));
    assert_eq!(
        (env.run_id, env.run_attempt),
        (Some(1_234_567_890), Some(1))
    );
    assert_eq!(env.job.as_deref(), Some("gate"));
    assert_eq!(env.api_url.as_deref(), Some("https://api.github.com"));
    assert_eq!(env.git_ref.as_deref(), Some("refs/heads/main"));
    assert_eq!(env.sha.as_deref(), Some("0123abcd"));
    assert_eq!(env.actor.as_deref(), Some("octocat"));
    assert_eq!(env.event_name.as_deref(), Some("workflow_dispatch"));
    assert_eq!(env.workflow.as_deref(), Some("agent"));
    assert_eq!(
        env.input("num-octocats").as_deref(),
        Some("3"),
        "hyphen kept, trimmed"
    );
    assert_eq!(
        env.input("my input").as_deref(),
        Some("spaced"),
        "space becomes _"
    );
    assert_eq!(
        env.input("My_Input").as_deref(),
        Some("spaced"),
        "upper-cased"
    );
    assert_eq!(env.input("blank"), None);
    assert_eq!(env.input("empty"), None);
    assert_eq!(env.input("absent"), None);
    assert_eq!(ActionsEnv::input_var("github-token"), "INPUT_GITHUB-TOKEN");
    assert_eq!(
        env.run_url().as_deref(),
        Some("https://github.com/octo-org/payments/actions/runs/1234567890")
    );
}

#[test]
fn run_url_names_the_attempt_after_the_first() {
    let env = vars(&[
        ("GITHUB_SERVER_URL", "https://ghe.example.com/"),
        ("GITHUB_REPOSITORY", "o/r"),
        ("GITHUB_RUN_ID", "42"),
        ("GITHUB_RUN_ATTEMPT", "3"),
    ]);
    assert_eq!(
        env.run_url().as_deref(),
        Some("https://ghe.example.com/o/r/actions/runs/42/attempts/3")
    );
    assert_eq!(
        vars(&[("GITHUB_RUN_ID", "42")]).run_url(),
        None,
        "no repository"
    );
    let default_server = vars(&[("GITHUB_REPOSITORY", "o/r"), ("GITHUB_RUN_ID", "7")]);
    assert_eq!(
        default_server.run_url().as_deref(),
        Some("https://github.com/o/r/actions/runs/7")
    );
}

#[test]
fn only_github_actions_true_means_actions() {
    assert!(!vars(&[]).is_actions);
    assert!(!vars(&[("GITHUB_ACTIONS", "1")]).is_actions);
    assert!(!vars(&[("GITHUB_ACTIONS", "TRUE ")]).is_actions);
    assert!(vars(&[("GITHUB_ACTIONS", "true")]).is_actions);
    // Later duplicates win, as with a process environment built in order.
    let env = ActionsEnv::from_vars([
        ("GITHUB_ACTIONS".to_string(), "false".to_string()),
        ("GITHUB_ACTIONS".to_string(), "true".to_string()),
    ]);
    assert!(env.is_actions);
}

// ---------------------------------------------------------------------------------------
// masking

#[test]
fn every_occurrence_of_a_secret_is_redacted() {
    let mut masker = Masker::new();
    assert!(masker.redact("nothing").as_ref() == "nothing");
    assert!(masker.register("ghp_secret"));
    assert!(!masker.register("ghp_secret"), "registered once");
    assert!(!masker.register(""), "empty is ignored");
    assert_eq!(
        masker
            .redact("a ghp_secret b ghp_secretghp_secret c")
            .as_ref(),
        "a *** b *** c",
        "adjacent occurrences become one mask"
    );
    masker.register("cret-x");
    assert_eq!(
        masker.redact("ghp_secret-x").as_ref(),
        "***",
        "overlapping secrets"
    );
}

#[test]
fn encoded_forms_and_lines_of_a_secret_are_redacted() {
    let mut masker = Masker::new();
    masker.register("p@ss:w,o%rd\"\nsecond-line");
    let property = escape_property("p@ss:w,o%rd\"");
    assert!(property.contains("%3A"));
    let text = format!(
        "{property} / {} / {{\"v\":\"p@ss:w,o%rd\\\"\\nsecond-line\"}}",
        escape_data("p@ss:w,o%rd\"\nsecond-line")
    );
    assert_eq!(masker.redact(&text).as_ref(), "*** / *** / {\"v\":\"***\"}");
    assert_eq!(
        masker.redact("log: second-line").as_ref(),
        "log: ***",
        "line by line"
    );
}

#[test]
fn short_secrets_are_still_masked() {
    let mut masker = Masker::new();
    masker.register("ab");
    assert_eq!(masker.redact("cab abc").as_ref(), "c*** ***c");
}

#[test]
fn add_mask_announces_the_value_and_each_line() {
    let mut masker = Masker::new();
    let mut out = Vec::new();
    masker.add_mask("one\ntwo", &mut out).expect("write");
    masker.add_mask("one\ntwo", &mut out).expect("write");
    assert_eq!(
        String::from_utf8(out).expect("utf8"),
        "::add-mask::one%0Atwo\n::add-mask::one\n::add-mask::two\n",
        "announced once"
    );
}

proptest! {
    #[test]
    fn redacted_text_never_contains_the_secret(
        secret in "[a-z0-9_%:,]{4,12}",
        pieces in proptest::collection::vec("[a-z0-9_%:, ]{0,8}", 0..6),
    ) {
        let mut masker = Masker::new();
        masker.register(&secret);
        let text = pieces.join(&secret);
        let redacted = masker.redact(&text);
        prop_assert!(!redacted.contains(&secret), "{redacted}");
        let escaped_text = escape_property(&text);
        let escaped = masker.redact(&escaped_text);
        prop_assert!(!escaped.contains(&escape_property(&secret)), "{escaped}");
    }
}

// ---------------------------------------------------------------------------------------
// the whole door

const CANARY: &str = "ghu_CANARY0123456789abcdefCANARY";

#[test]
fn inside_actions_masks_come_first_and_no_token_reaches_any_file() {
    let files = RunnerFiles::new();
    let mut io = ActionsIo::new(files.env(true), Vec::new());
    io.add_mask(CANARY).expect("mask");
    io.command(&error(
        &Annotation::new(format!("API refused token {CANARY}")).title(format!("auth {CANARY}")),
    ))
    .expect("command");
    io.command(&group(&format!("check with {CANARY}")))
        .expect("group");
    io.print(&format!("Authorization: Bearer {CANARY}\n"))
        .expect("print");
    io.command(&endgroup()).expect("endgroup");
    io.set_output("task-url", &format!("https://x/?t={CANARY}"))
        .expect("output");
    io.write_summary(&format!("# Report\n\ntoken `{CANARY}`\n"), CANARY)
        .expect("summary");
    let stdout = String::from_utf8(io.into_inner()).expect("utf8");

    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some(format!("::add-mask::{CANARY}").as_str()),
        "mask first"
    );
    let rest: Vec<&str> = lines.collect();
    assert_eq!(
        rest,
        [
            "::error title=auth ***::API refused token ***",
            "::group::check with ***",
            "Authorization: Bearer ***",
            "::endgroup::",
        ]
    );
    let output = read(&files.output);
    let summary = read(&files.summary);
    for (what, text) in [("outputs", &output), ("summary", &summary)] {
        assert!(!text.contains(CANARY), "{what} holds the token: {text}");
    }
    assert_eq!(
        parse_file_command(&output).expect("parse"),
        [("task-url".to_string(), "https://x/?t=***".to_string())]
    );
    assert_eq!(summary, "# Report\n\ntoken `***`\n");
}

#[test]
fn outside_actions_nothing_announces_the_secret_and_files_are_refused() {
    let mut io = ActionsIo::new(vars(&[]), Vec::new());
    io.add_mask(CANARY).expect("mask");
    io.command(&warning(&Annotation::new(CANARY)))
        .expect("command");
    let error = io
        .set_output("verdict", "passed")
        .expect_err("no GITHUB_OUTPUT");
    assert!(matches!(
        error,
        ActionsError::NotInActions {
            variable: "GITHUB_OUTPUT",
            ..
        }
    ));
    assert_snapshot!("not_in_actions_error", error.to_string());
    let error = io
        .write_summary("# x", "y")
        .expect_err("no GITHUB_STEP_SUMMARY");
    assert!(matches!(
        error,
        ActionsError::NotInActions {
            variable: "GITHUB_STEP_SUMMARY",
            ..
        }
    ));
    let stdout = String::from_utf8(io.into_inner()).expect("utf8");
    assert_eq!(
        stdout, "::warning::***\n",
        "no add-mask line, no set-output fallback"
    );
}
