//! Tests of the review gate (`flow::review`) against the in-process simulator: the commit
//! status on the gated commit, the one summary comment per task key (posted, then edited in
//! place), what is skipped and why, secrets, failures collected rather than raised; and the
//! simulator's comment endpoints (list with pagination, update) it relies on. At the end, the
//! gate against a scripted GitHub (`flow::ReviewApi`), for races and identities that read
//! more clearly as a script than through HTTP.

use std::time::Duration;

use agent_gate::adapters::actions::Masker;
use agent_gate::adapters::github::types::{CommentUser, CommitStatus, IssueComment, Viewer};
use agent_gate::adapters::github::{
    ApiError, Client, CreatedComment, ErrorInfo, create_task_request,
};
use agent_gate::core::report::{
    CheckEntry, CheckStatus, Report, Verdict, Violation, ViolationKind,
};
use agent_gate::flow::{
    CommentAction, MAX_COMMENT_BYTES, ReviewApi, ReviewOptions, ReviewRecord, comment_body,
    comment_marker, review, status_description, status_state,
};
use agent_gate::sim::{self, Scenario};
use insta::assert_snapshot;
use serde_json::Value;

use crate::summary::{check, checks_failed_report, passed_report, violation_report};
use crate::support::{Gate, World};

const TOKEN: &str = "ghp_reviewtesttoken";
const RUN_URL: &str = "https://github.com/octo-org/payments/actions/runs/77";
const CONTEXT: &str = "agent-gate/scope";
const CANARY: &str = "ghp_CANARY_c4n4ry_T0KEN_never_leaks";

/// A [`World`] at ×1000 in which the simulated agent has opened a pull request, and a
/// client for it.
struct Fixture {
    world: World,
    client: Client,
    /// The pull request the simulated agent opened: (number, head sha).
    pr: (i64, String),
}

async fn start(scenario: Option<Scenario>) -> Fixture {
    let gate = Gate::new().repository("octo-org/payments").token(TOKEN);
    let world = match scenario {
        Some(s) => gate.scenario(s),
        None => gate,
    }
    .start()
    .await;
    let client = world.client();
    client
        .create_task(&create_task_request("Fix the rounding", None))
        .await
        .expect("task created");
    let mut pulls = Vec::new();
    for _ in 0..500 {
        pulls = world.sim.pull_requests();
        if !pulls.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pr = pulls
        .first()
        .expect("the agent opened a pull request")
        .clone();
    Fixture {
        world,
        client,
        pr: (pr.number, pr.head.sha),
    }
}

fn scenario(yaml: &str) -> Scenario {
    Scenario::from_yaml(
        yaml,
        std::path::Path::new("test.yml"),
        std::path::Path::new("."),
    )
    .unwrap_or_else(|e| panic!("scenario: {e}"))
}

fn options(comment: bool) -> ReviewOptions {
    ReviewOptions::new(CONTEXT, comment, Some(RUN_URL.to_string()), Masker::new())
}

/// `report` aimed at the fixture's pull request and head commit.
fn on_pr(mut report: Report, f: &Fixture) -> Report {
    report.head_sha = Some(f.pr.1.clone());
    if let Some(t) = report.task.as_mut() {
        t.pr_number = Some(f.pr.0);
    }
    report
}

fn requests(f: &Fixture, method: &str, pattern: &str) -> usize {
    f.world.sim.count(method, pattern)
}

const COMMENTS: &str = "/repos/*/*/issues/*/comments";
const STATUSES: &str = "/repos/*/*/statuses/*";

#[tokio::test]
async fn first_review_posts_a_status_and_a_comment_the_second_edits_that_comment() {
    let f = start(None).await;
    let first = on_pr(violation_report(), &f);
    assert_eq!(first.verdict, Verdict::ScopeViolation);
    let n = first.violations.len();

    let rec = review(&f.client, &first, &options(true)).await;
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    let status = rec.status.clone().expect("status set");
    assert_eq!(
        (status.sha.as_str(), status.state.as_str()),
        (f.pr.1.as_str(), "failure")
    );
    let statuses = f.world.sim.statuses();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].sha, f.pr.1);
    assert_eq!(statuses[0].status.state, "failure");
    assert_eq!(statuses[0].status.context.as_deref(), Some(CONTEXT));
    assert_eq!(statuses[0].status.target_url.as_deref(), Some(RUN_URL));
    assert_eq!(
        statuses[0].status.description.as_deref(),
        Some(format!("agent-gate: scope-violation ({n} violations)").as_str())
    );

    let c1 = rec.comment.clone().expect("comment posted");
    assert_eq!(c1.action, CommentAction::Created);
    let comments = f.world.sim.comments();
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].id, c1.id);
    assert_eq!(comments[0].issue_number, u64::try_from(f.pr.0).unwrap());
    let body1 = comments[0].body.clone();
    assert!(body1.starts_with(&comment_marker("ag-7f3a9c")), "{body1}");
    assert!(body1.contains("scope-violation"), "{body1}");
    assert!(body1.contains(RUN_URL), "the summary links the run");

    // The same task key, a new verdict: one comment, edited in place.
    let mut second = on_pr(passed_report(), &f);
    second.task.as_mut().unwrap().key = "ag-7f3a9c".to_string();
    let rec2 = review(&f.client, &second, &options(true)).await;
    assert!(rec2.errors.is_empty(), "{:?}", rec2.errors);
    let c2 = rec2.comment.expect("comment updated");
    assert_eq!((c2.id, c2.action), (c1.id, CommentAction::Updated));
    let comments = f.world.sim.comments();
    assert_eq!(comments.len(), 1, "never a second comment");
    assert_eq!(comments[0].edits, 1);
    assert_ne!(comments[0].body, body1, "the body changed");
    assert!(
        comments[0].body.contains("`passed`"),
        "{}",
        comments[0].body
    );
    assert_eq!(requests(&f, "POST", COMMENTS), 1);
    assert_eq!(requests(&f, "PATCH", "/repos/*/*/issues/comments/*"), 1);
    let statuses = f.world.sim.statuses();
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses[1].status.state, "success");

    // Another key on the same pull request gets its own comment.
    let mut third = on_pr(passed_report(), &f);
    third.task.as_mut().unwrap().key = "ag-other".to_string();
    let rec3 = review(&f.client, &third, &options(true)).await;
    assert_eq!(rec3.comment.unwrap().action, CommentAction::Created);
    assert_eq!(f.world.sim.comments().len(), 2);
}

#[tokio::test]
async fn comment_off_sets_only_the_status() {
    let f = start(None).await;
    let rec = review(&f.client, &on_pr(passed_report(), &f), &options(false)).await;
    assert_eq!(rec.status.unwrap().state, "success");
    assert!(rec.comment.is_none());
    assert!(
        rec.notes
            .iter()
            .any(|n| n.contains("report.comment is off")),
        "{:?}",
        rec.notes
    );
    assert_eq!(requests(&f, "GET", COMMENTS), 0);
    assert_eq!(requests(&f, "POST", COMMENTS), 0);
    assert_eq!(requests(&f, "POST", STATUSES), 1);
    assert!(f.world.sim.comments().is_empty());
}

#[tokio::test]
async fn without_a_pull_request_nothing_is_sent_and_a_note_says_why() {
    let f = start(None).await;
    let before = f.world.sim.request_log().len();
    let mut no_pr = passed_report();
    no_pr.head_sha = Some(f.pr.1.clone());
    no_pr.task.as_mut().unwrap().pr_number = None;
    let mut no_task = passed_report();
    no_task.task = None;
    for report in [no_pr, no_task] {
        let rec = review(&f.client, &report, &options(true)).await;
        assert!(rec.status.is_none() && rec.comment.is_none() && rec.errors.is_empty());
        assert!(
            rec.notes.iter().any(|n| n.contains("no pull request")),
            "{:?}",
            rec.notes
        );
    }
    assert_eq!(f.world.sim.request_log().len(), before, "no request at all");

    // A pull request but no gated commit: the comment, no status.
    let mut no_sha = on_pr(passed_report(), &f);
    no_sha.head_sha = None;
    let rec = review(&f.client, &no_sha, &options(true)).await;
    assert!(rec.status.is_none());
    assert!(
        rec.notes.iter().any(|n| n.contains("no gated commit")),
        "{:?}",
        rec.notes
    );
    assert_eq!(rec.comment.unwrap().action, CommentAction::Created);
    assert_eq!(requests(&f, "POST", STATUSES), 0);
}

#[tokio::test]
async fn a_canary_secret_in_the_report_never_reaches_github() {
    let f = start(None).await;
    let mut masker = Masker::new();
    masker.register(CANARY);
    let opts = ReviewOptions::new(CONTEXT, true, Some(RUN_URL.to_string()), masker);

    let mut report = on_pr(checks_failed_report(), &f);
    // In every kind of field: escaped inline text, code, fenced output, error, description.
    report.files[0].path = format!("src/{CANARY}.rs");
    report.checks[0].name = format!("tests {CANARY}");
    report.checks[0].output_tail += "token=";
    report.checks[0].output_tail += CANARY;
    report.violations.push(Violation {
        kind: ViolationKind::OutOfScope,
        path: Some(format!("leak/{CANARY}")),
        rule: None,
        message: format!("leak/{CANARY} is out of scope"),
    });
    report.isolation_notes.push(format!("env had {CANARY}"));
    report.task.as_mut().unwrap().key = format!("key-{CANARY}");
    report.finish();
    report.set_verdict(Verdict::ApiError);
    report
        .errors
        .push(format!("GET /x failed: Bearer {CANARY}"));

    let rec = review(&f.client, &report, &opts).await;
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    assert_eq!(rec.status.as_ref().unwrap().state, "error");
    assert!(rec.comment.is_some());
    // A distinctive part that no escaping changes: a leak in any encoded form
    // (`ghp&#95;…`, `%5F`, JSON) still shows it.
    let part = "c4n4ry";
    let serialized = serde_json::to_string(&rec).unwrap();
    assert!(!serialized.contains(part));
    for r in f.world.sim.request_log() {
        assert!(
            !r.body.contains(part),
            "{} {} leaked the canary",
            r.method,
            r.path
        );
        assert!(!r.path.contains(part) && !r.query.contains(part));
    }
    let body = &f.world.sim.comments()[0].body;
    assert!(body.contains("***"), "{body}");
    let description = f.world.sim.statuses()[0]
        .status
        .description
        .clone()
        .unwrap();
    assert_eq!(
        description,
        "agent-gate: api-error (GET /x failed: Bearer ***)"
    );

    // The redacted key still finds the same comment on the next run.
    let rec = review(&f.client, &report, &opts).await;
    assert_eq!(rec.comment.unwrap().action, CommentAction::Updated);
    assert_eq!(f.world.sim.comments().len(), 1);
}

#[tokio::test]
async fn a_403_on_statuses_is_collected_and_the_comment_still_posted() {
    let f = start(Some(scenario(
        "faults: [{endpoint: create-status, status: 403, message: 'Resource not accessible by integration'}]",
    )))
    .await;
    let rec = review(&f.client, &on_pr(passed_report(), &f), &options(true)).await;
    assert!(rec.status.is_none());
    assert_eq!(rec.errors.len(), 1, "{:?}", rec.errors);
    assert!(
        rec.errors[0].starts_with("commit status on "),
        "{}",
        rec.errors[0]
    );
    assert!(rec.errors[0].contains("403"), "{}", rec.errors[0]);
    assert!(f.world.sim.statuses().is_empty());
    assert_eq!(rec.comment.unwrap().action, CommentAction::Created);
    let lines = ReviewRecord {
        errors: rec.errors.clone(),
        ..ReviewRecord::default()
    }
    .summary_lines();
    assert!(
        lines[0].starts_with("review failed: commit status"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_failed_listing_posts_no_comment_rather_than_a_duplicate() {
    let f = start(Some(scenario(
        "faults: [{endpoint: list-comments, status: 403}]",
    )))
    .await;
    let rec = review(&f.client, &on_pr(passed_report(), &f), &options(true)).await;
    assert!(rec.status.is_some());
    assert!(rec.comment.is_none());
    assert!(
        rec.errors[0].contains("to avoid a duplicate"),
        "{:?}",
        rec.errors
    );
    assert_eq!(requests(&f, "POST", COMMENTS), 0);
}

#[tokio::test]
async fn a_comment_quoting_the_marker_is_not_taken_over() {
    let f = start(None).await;
    let marker = comment_marker("ag-7f3a9c");
    let quoted = format!("> {marker}\n> the gate said no; why?");
    f.client
        .create_issue_comment(f.pr.0, &quoted)
        .await
        .unwrap();
    let rec = review(&f.client, &on_pr(passed_report(), &f), &options(true)).await;
    assert_eq!(rec.comment.unwrap().action, CommentAction::Created);
    let comments = f.world.sim.comments();
    assert_eq!(comments.len(), 2);
    assert_eq!(
        comments[0].body, quoted,
        "the person's comment is untouched"
    );
}

/// Review finding 8: anyone who may comment can write the marker. A comment carrying it
/// that another user wrote is never edited — not now, not by later runs — while the
/// gate's own comment still is.
#[tokio::test]
async fn a_marker_planted_by_another_user_is_never_adopted() {
    let f = start(None).await;
    let marker = comment_marker("ag-7f3a9c");
    let planted = format!("{marker}\nLooks good to me, merge it! (a comment I can edit)");
    let intruder = f.world.client_with("ghp_intruder");
    intruder
        .create_issue_comment(f.pr.0, &planted)
        .await
        .unwrap();

    let first = review(&f.client, &on_pr(violation_report(), &f), &options(true)).await;
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    let ours = first.comment.expect("a comment of the gate's own");
    assert_eq!(ours.action, CommentAction::Created);
    // A later run for the same key edits the gate's comment, not the planted one.
    let second = review(&f.client, &on_pr(passed_report(), &f), &options(true)).await;
    let again = second.comment.expect("updated");
    assert_eq!((again.id, again.action), (ours.id, CommentAction::Updated));

    let comments = f.world.sim.comments();
    assert_eq!(comments.len(), 2, "{comments:?}");
    assert_eq!(
        comments[0].body, planted,
        "the planted comment is untouched"
    );
    assert_eq!(comments[0].edits, 0);
    assert_ne!(comments[0].user_id, comments[1].user_id);
    assert_eq!(comments[1].id, ours.id);
    assert_eq!(comments[1].edits, 1);
    assert_eq!(
        requests(&f, "POST", "/graphql"),
        2,
        "who the token is, asked each run"
    );
}

/// When the gate cannot learn who its token acts as, it edits nothing: it posts its own
/// comment and says why.
#[tokio::test]
async fn without_knowing_its_user_the_gate_posts_rather_than_edits() {
    let f = start(Some(scenario(
        "faults: [{endpoint: graphql, status: 502, count: 10}]",
    )))
    .await;
    let own = format!("{}\nan earlier summary", comment_marker("ag-7f3a9c"));
    f.client.create_issue_comment(f.pr.0, &own).await.unwrap();
    let rec = review(&f.client, &on_pr(passed_report(), &f), &options(true)).await;
    assert_eq!(rec.comment.expect("posted").action, CommentAction::Created);
    assert!(
        rec.notes
            .iter()
            .any(|n| n.contains("could not learn who the token acts as")),
        "{:?}",
        rec.notes
    );
    let comments = f.world.sim.comments();
    assert_eq!((comments.len(), comments[0].edits), (2, 0), "{comments:?}");
}

#[tokio::test]
async fn a_huge_summary_is_cut_below_githubs_comment_limit_with_a_note() {
    let f = start(None).await;
    let mut report = on_pr(checks_failed_report(), &f);
    let line = format!("out ```` <details> {}\n", "x".repeat(60));
    let tail = line.repeat(400);
    report.checks = (0..60)
        .map(|i| CheckEntry {
            output_tail: tail.clone(),
            ..check(&format!("check {i}"), true, CheckStatus::Failed, 10)
        })
        .collect();
    report.finish();
    let o = options(true);
    let (body, cut) = comment_body(&report, o.run_url.as_deref(), &o.masker);
    assert!(cut);
    assert!(body.len() <= MAX_COMMENT_BYTES, "{}", body.len());
    assert!(body.contains("cut to fit GitHub's 65,536-character comment limit"));
    assert!(body.trim_end().ends_with("The gate never merges.</sub>"));
    // Whatever was cut, fences and <details> are closed again.
    let fences = body
        .lines()
        .filter(|l| l.trim_start().starts_with("```"))
        .count();
    assert_eq!(fences % 2, 0, "balanced fences");
    let opened = body.lines().filter(|l| l.starts_with("<details>")).count();
    let closed = body.lines().filter(|l| l.trim() == "</details>").count();
    assert_eq!(opened, closed, "balanced <details>");

    let rec = review(&f.client, &report, &options(true)).await;
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    let c = rec.comment.unwrap();
    assert!(c.truncated);
    assert!(f.world.sim.comments()[0].body.chars().count() <= 65_536);
}

#[test]
fn status_states_and_descriptions_follow_the_verdict() {
    let m = Masker::new();
    assert_eq!(status_state(Verdict::Passed), "success");
    assert_eq!(status_state(Verdict::ConfigError), "error");
    assert_eq!(status_state(Verdict::ApiError), "error");
    for v in [
        Verdict::OverBudget,
        Verdict::Cancelled,
        Verdict::TimedOut,
        Verdict::AgentFailed,
        Verdict::ScopeViolation,
        Verdict::ChecksFailed,
    ] {
        assert_eq!(status_state(v), "failure", "{v}");
    }
    let descriptions = [
        status_description(&passed_report(), &m),
        status_description(&violation_report(), &m),
        status_description(&checks_failed_report(), &m),
        {
            let mut r = passed_report();
            r.task.as_mut().unwrap().state = "failed".into();
            r.set_verdict(Verdict::AgentFailed);
            status_description(&r, &m)
        },
        {
            let mut r = Report::error(
                Verdict::ConfigError,
                format!("policy.yml:3:1: {}\nsecond line", "bad ".repeat(60)),
            );
            r.finish();
            status_description(&r, &m)
        },
    ];
    for d in &descriptions {
        assert!(d.chars().count() <= 140, "{d}");
        assert!(!d.contains('\n'));
    }
    assert_snapshot!(descriptions.join("\n"), @r"
    agent-gate: passed (2 files, +52 -3)
    agent-gate: scope-violation (4 violations)
    agent-gate: checks-failed (2 required checks failed: unit tests, integration)
    agent-gate: agent-failed (task state: failed)
    agent-gate: config-error (policy.yml:3:1: bad bad bad bad bad bad bad bad bad bad bad bad bad bad bad bad bad bad bad bad bad bad bad bad b…
    ");
}

#[test]
fn markers_are_stable_one_line_html_comments_for_any_key() {
    assert_eq!(
        comment_marker("ag1-0a1b2c"),
        "<!-- agent-gate:review key=ag1-0a1b2c -->"
    );
    let hostile = comment_marker("x --> <b>hi</b>\n@team");
    assert_eq!(
        hostile,
        "<!-- agent-gate:review key=x%20-%2D%3E%20%3Cb%3Ehi%3C/b%3E%0A%40team -->"
    );
    assert_eq!(hostile.matches("-->").count(), 1);
    assert_eq!(comment_marker(" k "), comment_marker("k"));
}

#[test]
fn the_comment_body_is_the_marker_the_summary_and_a_footer() {
    let o = options(true);
    let (body, cut) = comment_body(&passed_report(), o.run_url.as_deref(), &o.masker);
    assert!(!cut);
    assert_snapshot!(body);
}

// ---------------------------------------------------------------------------------------
// The simulator's comment endpoints.

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn req(f: &Fixture, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
    http()
        .request(method, format!("{}{path}", f.world.sim.url()))
        .header("user-agent", "agent-gate-tests")
        .header("x-github-api-version", "2026-03-10")
        .bearer_auth(token)
}

#[tokio::test]
async fn sim_lists_comments_with_pagination_and_updates_them() {
    let f = start(Some(scenario("api: {read-only-tokens: [ghp_reader]}"))).await;
    let n = f.pr.0;
    for i in 0..3 {
        f.client
            .create_issue_comment(n, &format!("c{i}"))
            .await
            .unwrap();
    }
    let path = format!("/repos/octo-org/payments/issues/{n}/comments");
    let r = req(
        &f,
        reqwest::Method::GET,
        &format!("{path}?per_page=2"),
        TOKEN,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let link = r.headers()["link"].to_str().unwrap().to_string();
    assert!(
        link.contains("page=2") && link.contains("rel=\"next\""),
        "{link}"
    );
    assert!(r.headers().contains_key("x-github-request-id"));
    assert!(r.headers().contains_key("etag"));
    let page: Vec<Value> = r.json().await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["body"], "c0");
    assert!(page[0]["user"]["id"].as_i64().unwrap() == sim::user_id_for_token(TOKEN));
    let r = req(
        &f,
        reqwest::Method::GET,
        &format!("{path}?per_page=2&page=2"),
        TOKEN,
    )
    .send()
    .await
    .unwrap();
    let page: Vec<Value> = r.json().await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["body"], "c2");

    let id = page[0]["id"].as_i64().unwrap();
    let edit = format!("/repos/octo-org/payments/issues/comments/{id}");
    let r = req(&f, reqwest::Method::PATCH, &edit, TOKEN)
        .body(r#"{"body":"c2, edited"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["id"].as_i64(), v["body"].as_str()),
        (Some(id), Some("c2, edited"))
    );
    let recorded = f.world.sim.comments();
    assert_eq!(recorded[2].body, "c2, edited");
    assert_eq!(recorded[2].edits, 1);

    let status = |r: reqwest::Response| r.status().as_u16();
    let edit_as = |path: &str, token: &str, body: String| {
        req(&f, reqwest::Method::PATCH, path, token)
            .body(body)
            .send()
    };
    assert_eq!(
        status(
            edit_as(
                "/repos/octo-org/payments/issues/comments/999999",
                TOKEN,
                r#"{"body":"x"}"#.into()
            )
            .await
            .unwrap()
        ),
        404
    );
    assert_eq!(
        status(
            edit_as(&edit, TOKEN, r#"{"body":""}"#.into())
                .await
                .unwrap()
        ),
        422
    );
    let long = serde_json::json!({ "body": "x".repeat(65_537) }).to_string();
    let r = edit_as(&edit, TOKEN, long).await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("body is too long"));
    let r = edit_as(&edit, "ghp_reader", r#"{"body":"x"}"#.into())
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().contains_key("x-accepted-github-permissions"));
    assert_eq!(
        status(
            req(
                &f,
                reqwest::Method::GET,
                "/repos/octo-org/payments/issues/999/comments",
                TOKEN
            )
            .send()
            .await
            .unwrap()
        ),
        404
    );
    assert_eq!(
        f.world.sim.comments()[2].body,
        "c2, edited",
        "refused edits change nothing"
    );
}

#[tokio::test]
async fn client_lists_every_page_of_comments_and_edits_one() {
    let f = start(None).await;
    let n = f.pr.0;
    for i in 0..101 {
        f.client
            .create_issue_comment(n, &format!("c{i}"))
            .await
            .unwrap();
    }
    let all = f.client.list_issue_comments(n).await.unwrap();
    assert_eq!(all.len(), 101);
    assert_eq!(all[100].body.as_deref(), Some("c100"));
    assert_eq!(requests(&f, "GET", COMMENTS), 2, "two pages of 100");
    let edited = f
        .client
        .update_issue_comment(all[5].id, "five")
        .await
        .unwrap();
    assert_eq!(
        (edited.id, edited.body.as_deref()),
        (all[5].id, Some("five"))
    );
    let again = f.client.list_issue_comments(n).await.unwrap();
    assert_eq!(
        again[5].body.as_deref(),
        Some("five"),
        "not served from a stale ETag cache"
    );
}

// ---- The review gate against a scripted GitHub (`flow::ReviewApi`) --------------------------
//
// Races and identities the simulator would need a choreography for, said in a line each.

/// Who the scripted token acts as.
const ME: i64 = 1001;

/// A GitHub that answers the review gate's five calls as scripted, and logs each call.
struct Scripted {
    comments: Vec<IssueComment>,
    /// `update_issue_comment` answers 404: the comment was deleted after it was listed.
    deleted_after_listing: bool,
    calls: std::sync::Mutex<Vec<String>>,
}

impl Scripted {
    fn new(comments: Vec<IssueComment>) -> Scripted {
        Scripted {
            comments,
            deleted_after_listing: false,
            calls: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn log(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

fn not_found(method: &str, path: String) -> ApiError {
    ApiError::NotFound {
        info: Box::new(ErrorInfo {
            method: method.to_string(),
            path,
            status: 404,
            message: Some("Not Found".to_string()),
            documentation_url: None,
            request_id: None,
            accepted_permissions: None,
        }),
    }
}

impl ReviewApi for Scripted {
    async fn create_commit_status(&self, sha: &str, status: &CommitStatus) -> Result<(), ApiError> {
        self.log(format!("status {sha} {}", status.state));
        Ok(())
    }
    async fn viewer(&self) -> Result<Viewer, ApiError> {
        self.log("viewer".to_string());
        Ok(Viewer {
            login: "gate-bot".to_string(),
            database_id: Some(ME),
        })
    }
    async fn list_issue_comments(&self, number: i64) -> Result<Vec<IssueComment>, ApiError> {
        self.log(format!("list {number}"));
        Ok(self.comments.clone())
    }
    async fn create_issue_comment(
        &self,
        number: i64,
        _body: &str,
    ) -> Result<CreatedComment, ApiError> {
        self.log(format!("create {number}"));
        Ok(CreatedComment {
            id: 9,
            html_url: "https://github.com/octo-org/payments/pull/7#issuecomment-9".to_string(),
        })
    }
    async fn update_issue_comment(
        &self,
        comment_id: i64,
        body: &str,
    ) -> Result<IssueComment, ApiError> {
        self.log(format!("update {comment_id}"));
        if self.deleted_after_listing {
            return Err(not_found(
                "PATCH",
                format!("/repos/octo-org/payments/issues/comments/{comment_id}"),
            ));
        }
        Ok(comment(comment_id, body, ME, "gate-bot"))
    }
}

fn comment(id: i64, body: &str, user: i64, login: &str) -> IssueComment {
    IssueComment {
        id,
        body: Some(body.to_string()),
        html_url: format!("https://github.com/octo-org/payments/pull/7#issuecomment-{id}"),
        user: Some(CommentUser {
            id: user,
            login: login.to_string(),
            user_type: Some("User".to_string()),
        }),
        created_at: None,
        updated_at: None,
    }
}

/// A passed report on pull request 7 at `abc123`, and the marker its comment starts with.
fn scripted_report() -> (Report, String) {
    let mut report = passed_report();
    report.head_sha = Some("abc123".to_string());
    if let Some(t) = report.task.as_mut() {
        t.pr_number = Some(7);
    }
    let (body, _) = comment_body(&report, Some(RUN_URL), &Masker::new());
    let marker = body.lines().next().unwrap_or_default().to_string();
    (report, marker)
}

#[tokio::test]
async fn a_comment_deleted_between_the_listing_and_the_edit_is_posted_again() {
    let (report, marker) = scripted_report();
    let mut github = Scripted::new(vec![comment(5, &format!("{marker}\nold"), ME, "gate-bot")]);
    github.deleted_after_listing = true;
    let rec = review(&github, &report, &options(true)).await;
    assert_eq!(
        github.calls(),
        [
            "status abc123 success",
            "viewer",
            "list 7",
            "update 5",
            "create 7"
        ]
    );
    let posted = rec.comment.expect("a comment was posted");
    assert_eq!((posted.id, posted.action), (9, CommentAction::Created));
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
}

#[tokio::test]
async fn our_marker_in_someone_elses_comment_is_never_edited() {
    let (report, marker) = scripted_report();
    let github = Scripted::new(vec![
        comment(5, &format!("{marker}\nforged"), 666, "mallory"),
        comment(6, &format!("{marker}\nours"), ME, "gate-bot"),
    ]);
    let rec = review(&github, &report, &options(true)).await;
    assert_eq!(
        github.calls(),
        ["status abc123 success", "viewer", "list 7", "update 6"]
    );
    let edited = rec.comment.expect("our comment was edited");
    assert_eq!((edited.id, edited.action), (6, CommentAction::Updated));

    // Only the forged one: a new comment, the forged one untouched.
    let github = Scripted::new(vec![comment(
        5,
        &format!("{marker}\nforged"),
        666,
        "mallory",
    )]);
    let rec = review(&github, &report, &options(true)).await;
    assert_eq!(
        github.calls(),
        ["status abc123 success", "viewer", "list 7", "create 7"]
    );
    assert_eq!(rec.comment.map(|c| c.action), Some(CommentAction::Created));
}
