//! Tests of the step summary renderer: snapshots of what a reviewer reads for each kind of
//! run, and the guarantees about untrusted text (table cells, fences, `<details>`) and size.

use agent_gate::core::report::{
    CheckEntry, CheckStatus, FileEntry, Report, TaskInfo, TimelineEntry, Verdict, Violation,
    ViolationKind,
};
use agent_gate::core::scope::{Decision, Reason, RuleOrigin, RuleRef};
use agent_gate::core::summary::{SummaryContext, fence_for, inline, render};
use insta::assert_snapshot;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// builders (shared with the outputs tests)

pub fn policy_rule(text: &str, line: usize) -> RuleRef {
    RuleRef {
        text: text.into(),
        origin: RuleOrigin::Policy { line, column: 5 },
    }
}

pub fn allowed(text: &str, line: usize) -> Decision {
    Decision {
        in_scope: true,
        reason: Reason::Allowed {
            rule: policy_rule(text, line),
        },
    }
}

pub fn file(path: &str, status: &str, added: u64, deleted: u64, decision: Decision) -> FileEntry {
    FileEntry {
        path: path.to_string(),
        path_bytes: None,
        old_path: None,
        status: status.to_string(),
        added: Some(added),
        deleted: Some(deleted),
        binary: false,
        in_scope: decision.in_scope,
        decision,
        old_decision: None,
    }
}

pub fn check(name: &str, required: bool, status: CheckStatus, ms: u64) -> CheckEntry {
    CheckEntry {
        name: name.to_string(),
        required,
        status,
        detail: match status {
            CheckStatus::Passed => Some("exit 0".to_string()),
            CheckStatus::Failed => Some("exit 101".to_string()),
            _ => None,
        },
        duration_ms: ms,
        output_tail: String::new(),
        truncated_bytes: 0,
        github: None,
    }
}

pub fn task() -> TaskInfo {
    // `at`: when the gate's poll saw the change; `task_at`: the task's own updated_at then.
    let at = |state: &str, at: &str, s: f64, task_at: &str| TimelineEntry {
        state: state.to_string(),
        at: at.to_string(),
        elapsed_s: s,
        task_at: Some(task_at.to_string()),
    };
    TaskInfo {
        id: "a1b2c3d4-0000-4000-8000-000000000001".to_string(),
        url: Some("https://github.com/octo-org/payments/tasks/a1b2c3d4".to_string()),
        state: "completed".to_string(),
        attached: false,
        key: "ag-7f3a9c".to_string(),
        prompt_sha256: Some(
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_string(),
        ),
        branch: Some("copilot/fix-rounding".to_string()),
        pr_number: Some(42),
        pr_url: Some("https://github.com/octo-org/payments/pull/42".to_string()),
        ai_credits: 1.25,
        premium_requests: 0.0,
        timeline: vec![
            at("queued", "2026-07-01T10:00:02Z", 2.0, "2026-07-01T10:00:00Z"),
            at("in_progress", "2026-07-01T10:00:14Z", 14.0, "2026-07-01T10:00:09Z"),
            at("completed", "2026-07-01T10:04:31Z", 271.0, "2026-07-01T10:04:20Z"),
        ],
        created_at: Some("2026-07-01T10:00:00Z".to_string()),
        finished_at: Some("2026-07-01T10:04:20Z".to_string()),
        instruction: Some(
            "Round money amounts half-even in the payments service.\n\nUse `rust_decimal`; keep the public API.\nAdd tests for 0.5, 1.5 and -2.5.\nDo not touch migrations.\nUpdate the changelog.\nMention issue #12 in the PR."
                .to_string(),
        ),
        stop_actions: Vec::new(),
    }
}

fn base_report(verdict: Verdict) -> Report {
    let mut r = Report::new(verdict);
    r.policy = Some(".github/agent-gate.yml".to_string());
    r.base = Some("main".to_string());
    r.head = Some("copilot/fix-rounding".to_string());
    r.merge_base = Some("1111111111111111111111111111111111111111".to_string());
    r.head_sha = Some("2222222222222222222222222222222222222222".to_string());
    r
}

fn ctx() -> SummaryContext {
    SummaryContext {
        run_url: Some("https://github.com/octo-org/payments/actions/runs/123".to_string()),
        policy_url: Some(
            "https://github.com/octo-org/payments/blob/1111111/.github/agent-gate.yml".to_string(),
        ),
        ..SummaryContext::default()
    }
}

pub fn passed_report() -> Report {
    let mut r = base_report(Verdict::Passed);
    r.task = Some(task());
    r.files = vec![
        file(
            "src/services/money.rs",
            "modified",
            12,
            3,
            allowed("src/services/**", 4),
        ),
        file("tests/money.rs", "added", 40, 0, allowed("tests/**", 5)),
    ];
    r.checks = vec![
        check("unit tests", true, CheckStatus::Passed, 48_200),
        check("clippy", true, CheckStatus::Passed, 21_030),
        check("ruff", false, CheckStatus::Skipped, 0),
    ];
    r.checks[2].detail = Some("no changed path matches `when`".to_string());
    r.isolation_notes = vec!["checks ran as uid 1001 in a private copy of the tree".to_string()];
    r.notes = vec![
        "attached to task `a1b2c3d4` (key `ag-7f3a9c`); its session log: https://github.com/octo-org/payments/tasks/a1b2c3d4."
            .to_string(),
    ];
    r.finish();
    r
}

pub fn violation_report() -> Report {
    let mut r = base_report(Verdict::Passed);
    let mut t = task();
    t.ai_credits = 0.5;
    t.premium_requests = 1.5;
    r.task = Some(t);
    let protected = Decision {
        in_scope: false,
        reason: Reason::Protected {
            rule: RuleRef {
                text: "/.github/workflows/".into(),
                origin: RuleOrigin::AlwaysProtected,
            },
        },
    };
    let denied = Decision {
        in_scope: false,
        reason: Reason::Denied {
            rule: policy_rule("migrations/**", 9),
        },
    };
    let mut rename = file(
        "ci-disabled.yml",
        "renamed",
        0,
        0,
        Decision {
            in_scope: false,
            reason: Reason::NoAllowRule,
        },
    );
    rename.old_path = Some(".github/workflows/ci.yml".to_string());
    rename.old_decision = Some(protected.clone());
    r.files = vec![
        file(
            "src/services/money.rs",
            "modified",
            2,
            1,
            allowed("src/services/**", 4),
        ),
        rename,
        file(
            "migrations/0042_drop|users.sql",
            "added",
            3,
            0,
            denied.clone(),
        ),
    ];
    r.violations = vec![
        Violation {
            kind: ViolationKind::OutOfScope,
            path: Some("ci-disabled.yml".to_string()),
            rule: None,
            message: "ci-disabled.yml: no allow rule matches".to_string(),
        },
        Violation {
            kind: ViolationKind::Protected,
            path: Some(".github/workflows/ci.yml".to_string()),
            rule: Some(RuleRef {
                text: "/.github/workflows/".into(),
                origin: RuleOrigin::AlwaysProtected,
            }),
            message: "renamed from .github/workflows/ci.yml: protected by \"/.github/workflows/\" \
                      (always protected) (to ci-disabled.yml)"
                .to_string(),
        },
        Violation {
            kind: ViolationKind::OutOfScope,
            path: Some("migrations/0042_drop|users.sql".to_string()),
            rule: Some(policy_rule("migrations/**", 9)),
            message: "migrations/0042_drop|users.sql: denied by \"migrations/**\" (line 9)"
                .to_string(),
        },
        Violation {
            kind: ViolationKind::MaxChangedLines,
            path: None,
            rule: None,
            message: "the change has 5210 changed lines, more than scope.max-changed-lines (5000)"
                .to_string(),
        },
    ];
    r.checks_skipped = Some(
        "the change violates the scope; its code is not run (checks-on-violation: skip)"
            .to_string(),
    );
    r.checks = vec![
        CheckEntry {
            detail: Some("scope violation".to_string()),
            ..check("unit tests", true, CheckStatus::Skipped, 0)
        },
        CheckEntry {
            detail: Some("scope violation".to_string()),
            ..check("clippy", true, CheckStatus::Skipped, 0)
        },
    ];
    r.finish();
    r
}

pub fn checks_failed_report() -> Report {
    let mut r = base_report(Verdict::Passed);
    r.task = Some(task());
    r.files = vec![file(
        "src/services/money.rs",
        "modified",
        5,
        5,
        allowed("src/services/**", 4),
    )];
    let mut unit = check("unit tests", true, CheckStatus::Failed, 75_400);
    unit.output_tail = "running 3 tests\n\
         test rounding ... \u{1b}[31mFAILED\u{1b}[0m\n\
         ---- rounding stdout ----\n\
         thread 'rounding' panicked: assertion failed: `left == right`\n\
         ```\n\
         </details>\n\
         <script>alert(1)</script>\n\
         ````not a fence end\n\
         test result: FAILED. 2 passed; 1 failed\n"
        .to_string();
    unit.truncated_bytes = 20_480;
    let mut ruff = check("ruff", false, CheckStatus::Failed, 900);
    ruff.detail = Some("exit 1".to_string());
    ruff.output_tail = "app.py:1:1: F401 `os` imported but unused\n".to_string();
    r.checks = vec![
        unit,
        check("clippy", true, CheckStatus::Passed, 30_000),
        CheckEntry {
            detail: Some("killed after 20m (process group)".to_string()),
            ..check("integration", true, CheckStatus::TimedOut, 1_200_000)
        },
        ruff,
    ];
    r.finish();
    r
}

pub fn config_error_report() -> Report {
    let mut r = Report::error(
        Verdict::ConfigError,
        ".github/agent-gate.yml:7:3: unknown field `alow`, expected one of `allow`, `deny`, \
         `protected`\n  caused by: scope.alow (read at the base ref `main`)",
    );
    r.policy = Some(".github/agent-gate.yml".to_string());
    r.errors
        .push("--scope: invalid pattern `src/[`: unclosed character class".to_string());
    r.finish();
    r
}

// ---------------------------------------------------------------------------------------
// snapshots

#[test]
fn passed_run_with_task() {
    assert_snapshot!(render(&passed_report(), &ctx()));
}

#[test]
fn scope_violation_with_protected_file_and_rename() {
    let report = violation_report();
    assert_eq!(report.verdict, Verdict::ScopeViolation);
    assert_snapshot!(render(&report, &ctx()));
}

#[test]
fn checks_failed_with_hostile_output_tail() {
    let report = checks_failed_report();
    assert_eq!(report.verdict, Verdict::ChecksFailed);
    let md = render(&report, &ctx());
    // The output's own fences and `</details>` stay inside a longer fence.
    assert!(md.contains("\n`````text\n"), "{md}");
    assert!(!md.contains('\u{1b}'));
    assert_snapshot!(md);
}

#[test]
fn config_error_with_errors() {
    assert_snapshot!(render(&config_error_report(), &SummaryContext::default()));
}

#[test]
fn check_report_without_task() {
    let mut r = base_report(Verdict::Passed);
    r.head = Some("feature/x".to_string());
    r.files = vec![FileEntry {
        binary: true,
        added: None,
        deleted: None,
        ..file(
            "assets/logo.png",
            "added",
            0,
            0,
            Decision {
                in_scope: true,
                reason: Reason::AllowedByDefault,
            },
        )
    }];
    r.checks = vec![check("unit tests", true, CheckStatus::Passed, 850)];
    r.finish();
    assert_snapshot!(render(&r, &SummaryContext::default()));
}

#[test]
fn timed_out_task_lists_stop_actions() {
    let mut r = base_report(Verdict::TimedOut);
    let mut t = task();
    t.state = "in_progress".to_string();
    t.timeline.pop();
    t.stop_actions = vec![
        "set commit status agent-gate: failure on 2222222".to_string(),
        "labelled pull request #42 agent-gate:timed-out".to_string(),
    ];
    r.task = Some(t);
    r.finish();
    let md = render(&r, &ctx());
    assert!(
        md.contains("the task was <code>in&#95;progress</code>"),
        "{md}"
    );
    assert!(md.contains("labelled pull request &#35;42"), "{md}");
    assert!(md.contains("GitHub offers no way to cancel a task"));
}

// ---------------------------------------------------------------------------------------
// untrusted text and size

/// The cells of a GFM table row: split on `|` not preceded by a backslash.
fn cells(row: &str) -> usize {
    let bytes = row.as_bytes();
    (0..bytes.len())
        .filter(|&i| bytes[i] == b'|' && (i == 0 || bytes[i - 1] != b'\\'))
        .count()
        - 1
}

#[test]
fn hostile_path_cannot_break_the_files_table() {
    let mut r = base_report(Verdict::Passed);
    r.files = vec![file(
        "a|b`c<img src=x onerror=alert(1)>\n| injected | row |\r&amp;@octocat #1 :tada:",
        "added",
        1,
        0,
        allowed("**", 3),
    )];
    r.finish();
    let md = render(&r, &SummaryContext::default());
    let rows: Vec<&str> = md
        .lines()
        .skip_while(|l| !l.starts_with("| In scope"))
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert_eq!(rows.len(), 3, "{md}");
    assert!(rows.iter().all(|row| cells(row) == 5), "{rows:#?}");
    assert!(!md.contains("<img"));
    assert!(!md.contains("@octocat"));
    assert!(
        !md.contains("&amp;"),
        "a literal `&amp;` is escaped as `&#38;amp;`"
    );
    assert!(md.contains("&#92;n"), "the newline is shown as \\n");
}

#[test]
fn files_table_is_capped_with_a_note() {
    let mut r = base_report(Verdict::Passed);
    r.files = (0..20_000)
        .map(|i| {
            file(
                &format!("src/services/generated/module_{i:05}/very/deep/path/file.rs"),
                "added",
                10,
                0,
                allowed("src/services/**", 4),
            )
        })
        .collect();
    r.finish();
    let ctx = SummaryContext {
        full_report: Some("the `agent-gate-audit` artifact".to_string()),
        ..SummaryContext::default()
    };
    let md = render(&r, &ctx);
    let rows = md.lines().filter(|l| l.contains("module&#95;")).count();
    assert_eq!(rows, 500);
    assert!(md.contains("_19500 more files are in the `agent-gate-audit` artifact._"));
    assert!(
        md.len() < 256 * 1024,
        "typical worst case stays far below 1 MiB: {}",
        md.len()
    );
}

#[test]
fn long_single_line_output_keeps_its_end() {
    let mut r = base_report(Verdict::Passed);
    let mut c = check("fmt", true, CheckStatus::Failed, 10);
    c.output_tail = format!("{}THE-END", "é".repeat(40_000));
    r.checks = vec![c];
    r.finish();
    let md = render(&r, &SummaryContext::default());
    assert!(md.contains("THE-END"));
    assert!(md.len() < 20 * 1024, "{}", md.len());
}

proptest! {
    #[test]
    fn fence_is_longer_than_any_backtick_run(text in "[`a\n]{0,40}") {
        let fence = fence_for(&text);
        prop_assert!(fence.len() >= 3);
        prop_assert!(!text.contains(fence.as_str()));
    }

    #[test]
    fn inline_text_has_no_markup_characters(text in "\\PC{0,40}|[|<>`*_\\[\\]\n\r&@#:-]{0,20}") {
        let out = inline(&text);
        for c in ['|', '<', '>', '`', '*', '_', '[', ']', '\n', '\r', '@', ':'] {
            prop_assert!(!out.contains(c), "{c:?} in {out:?}");
        }
        // `&` only starts a numeric entity, and `#` only appears inside one.
        for (i, _) in out.match_indices('&') {
            prop_assert!(out[i..].starts_with("&#"), "{out:?}");
        }
        for (i, _) in out.match_indices('#') {
            prop_assert!(i > 0 && &out[i - 1..i] == "&", "{out:?}");
        }
    }
}

/// Notes are Markdown: their `code` spans as code and their URLs as links, while anything
/// else that Markdown or HTML would read stays inert.
#[test]
fn notes_render_code_and_links_and_nothing_else() {
    use agent_gate::core::summary::prose;
    assert_eq!(
        prose("key `ag-1`, see https://example.com/x."),
        "key <code>ag-1</code>, see [https&#58;//example.com/x](https://example.com/x)."
    );
    let hostile = prose("<img src=x> *b* [l](j) `<script>` http://a/(b)c");
    assert!(
        !hostile.contains('<')
            || hostile.matches('<').count()
                == hostile.matches("<code>").count() + hostile.matches("</code>").count(),
        "{hostile}"
    );
    assert!(
        !hostile.contains("*b*") && !hostile.contains("[l]"),
        "{hostile}"
    );
    assert!(hostile.contains("(http://a/%28b%29c)"), "{hostile}");
    // An odd number of backticks: escaped whole.
    assert_eq!(prose("a ` b"), "a &#96; b");
}
