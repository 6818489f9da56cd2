//! A batch: twenty real `run`s against the simulator (one per repository of a fleet, as
//! the matrix jobs of `agent-gate plan` would run them), their audit records written as the
//! Action writes them, then `agent-gate report` merging them into one fleet report.

use std::process::Command;

use agent_gate::adapters::actions::{ActionsEnv, Masker};
use agent_gate::adapters::audit::{AuditEvent, AuditLog, task_events};
use agent_gate::adapters::shutdown::Shutdown;
use agent_gate::core::report::Verdict;
use agent_gate::flow::{RunOptions, run};
use agent_gate::sim::{FileOp, FinalState, Scenario, TaskScript};

use crate::support::{Cli, Gate, World};

const POLICY: &str = "version: 1\nagent:\n  timeout: 5m\n  poll: { initial: 1s, max: 1s }\nscope:\n  allow: [\"src/**\"]\n  deny: [\"**/*.pem\"]\nchecks:\n  - name: unit tests\n    run: sh tests/run.sh\n";

fn agent(matches: &str, path: &str, content: &str) -> TaskScript {
    TaskScript {
        matches: Some(matches.to_string()),
        files: Some(vec![FileOp::Write {
            path: path.to_string(),
            content: content.as_bytes().to_vec(),
        }]),
        final_state: FinalState::Completed,
        ..TaskScript::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn report_merges_twenty_audit_records_of_real_runs() {
    // One origin the simulator serves; twenty workspaces cloned from it, each run for its
    // own repository of the fleet.
    let world = Gate::new()
        .file("src/lib.sh", "add() { echo $(($1 + $2)); }\n")
        .file(
            "tests/run.sh",
            ". ./src/lib.sh\n[ \"$(add 2 3)\" = 5 ] || { echo FAIL; exit 1; }\n",
        )
        .policy(POLICY)
        .tasks(vec![
            agent("break the tests", "src/lib.sh", "add() { echo 0; }\n"),
            agent("leak a key", "src/key.pem", "secret\n"),
            agent("", "src/feature.sh", "feature() { :; }\n"),
        ])
        .token("ghp_fleet")
        .start()
        .await;
    let root = tempfile::tempdir().unwrap();

    let mut runs = Vec::new();
    for i in 0..20 {
        let ws = world.clone_origin();
        let instruction = match i % 7 {
            0 => "break the tests",
            1 => "leak a key",
            _ => "add a feature",
        };
        let opts = RunOptions {
            task_key: Some(format!("nightly-{i:02}")),
            jobs: Some(1),
            repo: ws.path().to_path_buf(),
            repository: format!("octo/svc-{i:02}").parse().unwrap(),
            ..world.opts(&format!("{instruction} (#{i})"))
        };
        runs.push(tokio::spawn(async move {
            let mut progress = Vec::new();
            let report = run(opts, Shutdown::never(), &mut progress).await;
            drop(ws);
            report
        }));
    }
    let mut files = Vec::new();
    let mut expected = std::collections::BTreeMap::<&str, usize>::new();
    for (i, handle) in runs.into_iter().enumerate() {
        let report = handle.await.unwrap();
        let want = match i % 7 {
            0 => Verdict::ChecksFailed,
            1 => Verdict::ScopeViolation,
            _ => Verdict::Passed,
        };
        assert_eq!(report.verdict, want, "run {i}: {}", report.render_text());
        *expected.entry(want.as_str()).or_default() += 1;
        let env = ActionsEnv::from_vars([
            ("GITHUB_REPOSITORY".to_string(), format!("octo/svc-{i:02}")),
            ("GITHUB_RUN_ID".to_string(), "77".to_string()),
        ]);
        let path = root.path().join(format!("audit/audit-{i:02}.jsonl"));
        let mut log = AuditLog::open(&path, Masker::new()).unwrap();
        let mut events = vec![AuditEvent::Trigger(
            agent_gate::flow::publish::audit_trigger(&env),
        )];
        events.extend(task_events(report.task.as_ref().unwrap()));
        events.extend(AuditLog::events_for_report(&report, env.target()));
        log.write_all(&events).unwrap();
        files.push(path);
    }
    assert_eq!(world.sim.tasks().len(), 20, "one task per run");

    let mut args: Vec<String> = vec!["report".into(), "--format".into(), "json".into()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let out = Cli::new()
        .args(&args)
        .env_remove("GITHUB_STEP_SUMMARY")
        .run_async()
        .await;
    assert_eq!(out.code(), Some(0), "{}", out.stderr());
    let fleet: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let merged = fleet["runs"].as_array().unwrap();
    assert_eq!(merged.len(), 20);
    for (verdict, n) in &expected {
        assert_eq!(
            fleet["totals"][verdict], *n,
            "{verdict}: {}",
            fleet["totals"]
        );
    }
    assert!(
        merged
            .iter()
            .all(|r| r["task_id"].is_string() && r["pr_number"].is_number()),
        "every run has its task and PR"
    );
    let repos: std::collections::BTreeSet<&str> = merged
        .iter()
        .filter_map(|r| r["repository"].as_str())
        .collect();
    assert_eq!(repos.len(), 20);
    world.sim.shutdown().await;
}

/// `report --format text` is plain text for a terminal: aligned columns, names as written,
/// no Markdown and no HTML entities (those are for the step summary).
#[test]
fn the_fleet_report_as_text_has_no_markdown_or_entities() {
    use agent_gate::flow::fleet::{FleetReport, FleetRun};
    let mut report = FleetReport::default();
    for (repo, verdict, pr) in [
        ("octo/svc_b", "scope-violation", Some(7)),
        ("octo/svc-a", "passed", Some(12)),
    ] {
        report.runs.push(FleetRun {
            file: format!("audit/{repo}.jsonl"),
            repository: Some(repo.to_string()),
            task_id: Some("1234abcd-5678".to_string()),
            task_url: Some("https://github.com/octo/x/copilot/tasks/1".to_string()),
            pr_number: pr,
            verdict: Some(verdict.to_string()),
            duration_s: Some(41.6),
            files: 3,
            checks_passed: 2,
            violations: usize::from(verdict != "passed"),
            ..FleetRun::default()
        });
        *report.totals.entry(verdict.to_string()).or_default() += 1;
    }
    let text = report.render_text();
    assert!(!text.contains("&#"), "{text}");
    assert!(!text.contains('|') && !text.contains('`'), "{text}");
    insta::assert_snapshot!(text);
    // The Markdown (step summary) keeps its escaping.
    assert!(report.render_markdown().contains("svc&#95;b"));
}

const CAPPED: &str = "version: 1\nagent:\n  timeout: 5m\n  max-concurrent-tasks: 3\n  poll: { initial: 1s, max: 1s }\nscope:\n  allow: [\"**\"]\n";

/// Requests of one run against the simulator: (reads of tasks other than its own, task-list
/// reads).
fn requests_of(log: &[agent_gate::sim::LoggedRequest], own: &str) -> (usize, usize) {
    let reads_of_others = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/tasks/") && !r.path.contains(own))
        .count();
    let lists = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/tasks"))
        .count();
    (reads_of_others, lists)
}

/// A night on one repository, one run after another: every run finds out whether its task
/// exists and counts the running ones without reading the other tasks (the task index on
/// the remote says which task is whose), so its requests do not grow with the tasks the
/// repository already has. A re-run attaches by reading only its own task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_run_stay_constant_as_a_repositorys_tasks_grow() {
    let gate = Gate::new()
        .shell_project()
        .policy(CAPPED)
        .repository("octo/fleet")
        .token("ghp_x")
        .start()
        .await;
    let mut per_run = Vec::new();
    let mut first_task = String::new();
    for n in 0..16 {
        let before = gate.sim.request_log().len();
        let mut opts = gate.opts("add the sim file");
        opts.task_key = Some(format!("night-{n}"));
        let (report, text) = gate.run(opts).await;
        assert_eq!(report.verdict, Verdict::Passed, "{text}");
        let own = report.task.as_ref().unwrap().id.clone();
        if n == 0 {
            first_task.clone_from(&own);
        }
        per_run.push(requests_of(&gate.sim.request_log()[before..], &own));
    }
    assert!(
        per_run.iter().all(|r| r.0 == 0),
        "reads of other tasks per run: {per_run:?}"
    );
    assert!(
        per_run.iter().all(|r| r.1 == per_run[0].1),
        "list reads per run: {per_run:?}"
    );
    assert_eq!(gate.creates(), 16);

    // A re-run of the first key: attached, with no read of any other task.
    let before = gate.sim.request_log().len();
    let mut opts = gate.opts("add the sim file");
    opts.task_key = Some("night-0".into());
    let (report, text) = gate.run(opts).await;
    assert!(report.task.as_ref().unwrap().attached, "{text}");
    assert_eq!(report.task.as_ref().unwrap().id, first_task);
    assert_eq!(
        requests_of(&gate.sim.request_log()[before..], &first_task).0,
        0
    );
    assert_eq!(gate.creates(), 16);
}

/// Twelve runs started together under a cap of three, each with its own token (so the
/// simulator's log tells whose request is whose): they wait, and while they wait they learn
/// the tasks of the runs admitted before them from the task index, so a run reads at most
/// a task or two of the others (one started between another run's reading of the index and
/// its recording there, at most one per wave), however many ran before it — not one read
/// per task per run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_waiting_together_read_few_tasks_of_others() {
    // Tasks that run long enough (about 1.4 s) to be seen running by the runs that wait.
    let gate = std::sync::Arc::new(
        Gate::new()
            .shell_project()
            .policy(CAPPED)
            .time_scale(5.0)
            .repository("octo/fleet")
            .token("ghp_x")
            .start()
            .await,
    );
    let mut runs = Vec::new();
    for n in 0..12 {
        let gate = gate.clone();
        runs.push(tokio::spawn(async move {
            let mut opts = gate.opts("add the sim file");
            opts.task_key = Some(format!("batch-{n}"));
            opts.token = Some(format!("ghp_batch_run_{n}").into());
            gate.run(opts).await
        }));
    }
    let mut own = Vec::new();
    for (n, r) in runs.into_iter().enumerate() {
        let (report, text) = r.await.unwrap();
        assert_eq!(report.verdict, Verdict::Passed, "{text}");
        let user = agent_gate::sim::user_id_for_token(&format!("ghp_batch_run_{n}"));
        own.push((user, report.task.unwrap().id));
    }
    assert_eq!(gate.creates(), 12);
    assert!(gate.sim.peak_running("octo", "fleet") <= 3);
    let log = gate.sim.request_log();
    let per_run: Vec<usize> = own
        .iter()
        .map(|(user, id)| {
            log.iter()
                .filter(|r| {
                    r.user == Some(*user)
                        && r.method == "GET"
                        && r.path.contains("/tasks/")
                        && !r.path.ends_with(id.as_str())
                })
                .count()
        })
        .collect();
    // Without the index the last runs read nearly every task before theirs (a measured
    // batch: [9, 7, 0, 10, 3, 10, 4, 1, 5, 8, 6, 2]); with it, at most one per wave.
    assert!(
        per_run.iter().all(|&n| n <= 3) && per_run.iter().sum::<usize>() <= 12,
        "reads of other tasks per run: {per_run:?}"
    );
}

/// A slot caps running agent tasks, not runs: when the task of the run holding the only
/// slot ends, the run gives its lease back before its checks (here 4 s), and the run
/// waiting for the slot — which re-checks only every 30 s by its policy — sees the lease go
/// within a second and starts. Its audit line says what it waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiting_run_starts_within_seconds_of_the_slot_freeing() {
    const ONE_SLOT: &str = "version: 1\nagent:\n  timeout: 5m\n  max-concurrent-tasks: 1\n  poll: { initial: 1s, max: 30s }\nscope:\n  allow: [\"**\"]\nchecks:\n  - name: slow tests\n    run: sleep 4\n";
    // Tasks of about 1.4 s.
    let gate = std::sync::Arc::new(
        Gate::new()
            .file("src/lib.sh", crate::support::SHELL_LIB)
            .policy(ONE_SLOT)
            .time_scale(5.0)
            .repository("octo/fleet")
            .token("ghp_x")
            .start()
            .await,
    );
    let first = {
        let gate = gate.clone();
        tokio::spawn(async move {
            let mut opts = gate.opts("add the sim file");
            opts.task_key = Some("slot-first".into());
            let (report, text) = gate.run(opts).await;
            (report, text, std::time::Instant::now())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut opts = gate.opts("add the sim file");
    opts.task_key = Some("slot-second".into());
    let (second, text) = gate.run(opts).await;
    assert_eq!(second.verdict, Verdict::Passed, "{text}");
    let (first, first_text, first_done) = first.await.unwrap();
    assert_eq!(first.verdict, Verdict::Passed, "{first_text}");
    assert!(gate.sim.peak_running("octo", "fleet") <= 1);
    let admission = second.admission.clone().unwrap();
    assert!(
        admission.waited_for_slots_s > 0.5,
        "the second run waited {admission:?}"
    );
    // It started while the first run's checks were still running: within the 4 s those take
    // after the first task freed the slot. Said by the order of events, not by a wall-clock
    // bound, which a loaded runner would break.
    let second_task = second.task.as_ref().unwrap().id.clone();
    let created = gate
        .sim
        .request_log()
        .into_iter()
        .find(|r| r.method == "POST" && r.body.contains("slot-second"))
        .expect("the second run's create");
    let first_done = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::try_from(first_done.elapsed()).unwrap())
        .unwrap();
    assert!(
        created.at < first_done,
        "{second_task} created after the first run ended"
    );
    let waiting = admission.waited_for().unwrap();
    assert!(
        waiting.starts_with("waited ") && waiting.contains("for a slot (1 of 1 busy"),
        "{waiting}"
    );
}

const REVIEW_CAP: &str = "version: 1\nagent:\n  timeout: 5m\n  max-open-pull-requests: 2\n  poll: { initial: 1s, max: 1s }\nscope:\n  allow: [\"**\"]\n";

async fn run_key(gate: &World, key: &str) -> (agent_gate::core::report::Report, String) {
    let mut opts = gate.opts("add the sim file");
    opts.task_key = Some(key.to_string());
    gate.run(opts).await
}

/// Review capacity: with two of agent-gate's pull requests open, a third run starts
/// nothing and ends `over-budget` with the oldest ones listed; a re-run of a task already
/// started is never refused; once a pull request is merged the next run starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_max_open_pull_requests_no_task_starts_until_one_is_reviewed() {
    let gate = Gate::new()
        .shell_project()
        .policy(REVIEW_CAP)
        .repository("octo/fleet")
        .token("ghp_x")
        .start()
        .await;
    let (first, text) = run_key(&gate, "review-1").await;
    assert_eq!(first.verdict, Verdict::Passed, "{text}");
    assert_eq!(first.review_load.as_ref().unwrap().open, 0);
    let (second, text) = run_key(&gate, "review-2").await;
    assert_eq!(second.verdict, Verdict::Passed, "{text}");
    assert_eq!(second.review_load.as_ref().unwrap().open, 1);
    let pr1 = first.task.as_ref().unwrap().pr_number.unwrap();
    let pr2 = second.task.as_ref().unwrap().pr_number.unwrap();

    let (third, text) = run_key(&gate, "review-3").await;
    assert_eq!(third.verdict, Verdict::OverBudget, "{text}");
    assert_eq!(third.verdict.exit_code(), 14);
    assert_eq!(gate.creates(), 2, "nothing was started");
    let load = third.review_load.as_ref().unwrap();
    assert!(!load.admitted);
    assert_eq!((load.open, load.limit), (2, 2));
    assert_eq!(
        load.oldest.iter().map(|p| p.number).collect::<Vec<_>>(),
        [pr1, pr2],
        "oldest first"
    );
    let error = third.errors.join("\n");
    assert!(
        error.contains(
            "2 of 2 open pull requests from agent-gate's tasks on octo/fleet wait for review"
        ) && error.contains(&format!("#{pr1} (opened ")),
        "{error}"
    );
    let env = agent_gate::adapters::actions::ActionsEnv::from_vars([(
        "GITHUB_REPOSITORY".to_string(),
        "octo/fleet".to_string(),
    )]);
    let Some(agent_gate::adapters::audit::AuditEvent::Admission(event)) =
        agent_gate::adapters::audit::AuditEvent::admission_of(&third, env.target(), &[])
    else {
        panic!("no admission event");
    };
    assert!(!event.allowed);
    assert_eq!(event.open_pull_requests, Some(2));
    assert!(event.refused.unwrap().contains("wait for review"));

    // A re-run of a task already started attaches: never refused.
    let (again, text) = run_key(&gate, "review-1").await;
    assert_eq!(again.verdict, Verdict::Passed, "{text}");
    assert!(again.task.as_ref().unwrap().attached);

    // A reviewer merges the first pull request: the next run starts.
    assert!(
        gate.sim
            .close_pull("octo", "fleet", u64::try_from(pr1).unwrap())
    );
    let (fourth, text) = run_key(&gate, "review-3").await;
    assert_eq!(fourth.verdict, Verdict::Passed, "{text}");
    assert_eq!(fourth.review_load.as_ref().unwrap().open, 1);
    assert_eq!(gate.creates(), 3);
}

/// `on-review-backlog: wait`: the run waits at the limit and starts when a pull request is
/// closed, the wait in its report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_on_review_backlog_wait_a_run_starts_when_a_pull_request_closes() {
    let policy = REVIEW_CAP.replace(
        "max-open-pull-requests: 2",
        "max-open-pull-requests: 1\n  on-review-backlog: wait",
    );
    let gate = std::sync::Arc::new(
        Gate::new()
            .shell_project()
            .policy(&policy)
            .repository("octo/fleet")
            .token("ghp_x")
            .start()
            .await,
    );
    let (first, text) = run_key(&gate, "wait-1").await;
    assert_eq!(first.verdict, Verdict::Passed, "{text}");
    let pr = u64::try_from(first.task.as_ref().unwrap().pr_number.unwrap()).unwrap();
    let closer = {
        let gate = gate.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
            assert!(gate.sim.close_pull("octo", "fleet", pr));
        })
    };
    let (second, text) = run_key(&gate, "wait-2").await;
    closer.await.unwrap();
    assert_eq!(second.verdict, Verdict::Passed, "{text}");
    assert!(
        text.contains("waiting for review capacity: 1 of 1 open pull requests"),
        "{text}"
    );
    let load = second.review_load.as_ref().unwrap();
    assert!(
        load.admitted && load.open == 0 && load.waited_s >= 2.0,
        "{load:?}"
    );
}

/// A task creation refused by a rate limit was not acted on: the gate sends it again after
/// the wait GitHub asks for, more than the three POSTs it allows for failures whose outcome
/// is unknown, and one task results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_refused_by_rate_limits_is_sent_again_until_accepted() {
    use agent_gate::sim::{Endpoint, Fault, FaultAction, When};
    let scenario = Scenario {
        faults: vec![Fault {
            endpoint: Endpoint::CreateTask,
            nth: 1,
            count: 4,
            when: When::Before,
            delay: None,
            action: FaultAction::SecondaryRateLimit {
                status: 403,
                retry_after: Some(std::time::Duration::from_secs(1)),
            },
            line: 0,
        }],
        ..Scenario::default()
    };
    let gate = Gate::new()
        .shell_project()
        .policy(CAPPED)
        .scenario(scenario)
        .repository("octo/fleet")
        .token("ghp_x")
        .start()
        .await;
    let (report, text) = run_key(&gate, "limited-1").await;
    assert_eq!(report.verdict, Verdict::Passed, "{text}");
    assert_eq!(gate.creates(), 5, "four refused, then accepted");
    assert_eq!(gate.sim.tasks().len(), 1, "one task");
}

const UNCAPPED: &str = "version: 1\nagent:\n  timeout: 5m\n  poll: { initial: 1s, max: 1s }\nscope:\n  allow: [\"**\"]\n";

/// Eight runs started together on one token, the simulator refusing more than four writes
/// of a user in any two seconds (GitHub's 80 a minute, compressed), and every run writing
/// a task creation, commit statuses and a comment. Without a pace the burst is refused;
/// with `write-pace: 3/2s` and one ledger, every write of every run is accepted.
async fn eight_runs_on_one_token(
    pace: Option<&str>,
) -> (std::sync::Arc<World>, Vec<agent_gate::core::report::Report>) {
    use agent_gate::sim::CreationLimit;
    let scenario = Scenario {
        creation_limits: vec![CreationLimit {
            max: 4,
            window: std::time::Duration::from_secs(2),
            status: 403,
            retry_after: None,
        }],
        ..Scenario::default()
    };
    let gate = std::sync::Arc::new(
        Gate::new()
            .policy(UNCAPPED)
            .scenario(scenario)
            .time_scale(10.0)
            .repository("octo/fleet")
            .token("ghp_fleet")
            .start()
            .await,
    );
    let mut runs = Vec::new();
    for n in 0..8 {
        let gate = gate.clone();
        let pace = pace.map(|p| {
            agent_gate::flow::pace::WritePace::parse(p)
                .unwrap()
                .unwrap()
        });
        runs.push(tokio::spawn(async move {
            let mut opts = gate.opts("add the sim file");
            opts.task_key = Some(format!("paced-{n}"));
            opts.write_pace = pace;
            gate.run(opts).await
        }));
    }
    let mut reports = Vec::new();
    for r in runs {
        let (report, text) = r.await.unwrap();
        assert_eq!(report.verdict, Verdict::Passed, "{text}");
        reports.push(report);
    }
    (gate, reports)
}

/// A content-creating request (a GraphQL query is a read sent as a POST).
fn is_write(r: &agent_gate::sim::LoggedRequest) -> bool {
    r.method != "GET" && r.path != "/graphql"
}

fn refused_writes(log: &[agent_gate::sim::LoggedRequest]) -> Vec<String> {
    log.iter()
        .filter(|r| is_write(r) && matches!(r.status, Some(403 | 429)))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_write_pace_a_fleets_burst_of_writes_is_refused() {
    let (gate, _) = eight_runs_on_one_token(None).await;
    let log = gate.sim.request_log();
    assert!(
        !refused_writes(&log).is_empty(),
        "eight runs writing at once stay under 4 writes in 2 s: the paced test below proves nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_a_write_pace_no_write_of_the_fleet_is_refused() {
    let (gate, reports) = eight_runs_on_one_token(Some("3/2s")).await;
    let log = gate.sim.request_log();
    assert_eq!(refused_writes(&log), Vec::<String>::new());
    let writes: Vec<jiff::Timestamp> = log.iter().filter(|r| is_write(r)).map(|r| r.at).collect();
    // Task creations, statuses and comments all went through the pace.
    for what in ["/tasks", "/statuses/", "/comments"] {
        assert!(
            log.iter().any(|r| r.method == "POST"
                && r.path.contains(what)
                && r.status.is_some_and(|s| s < 300)),
            "no accepted write to {what}"
        );
    }
    // At the server, at most 3 writes in any 2 s (the pace, not just the limit's 4), less
    // a quarter second for a request's way there (the first of a client opens its
    // connection).
    for (i, t0) in writes.iter().enumerate() {
        let within = writes[i..]
            .iter()
            .filter(|t| t.duration_since(*t0) < jiff::SignedDuration::from_millis(1750))
            .count();
        assert!(
            within <= 3,
            "{within} writes within 2 s from {t0}: {:?}",
            writes
                .iter()
                .map(|t| t.duration_since(writes[0]).as_millis_f64())
                .collect::<Vec<_>>()
        );
    }
    // Each run says what the pace cost it; the ledger is on the shared remote.
    for r in &reports {
        let note = r
            .notes
            .iter()
            .find(|n| n.starts_with("write pace 3/2s"))
            .unwrap_or_else(|| panic!("{:?}", r.notes));
        assert!(note.contains("write(s) timed"), "{note}");
    }
    // One claim on the ledger (a ref named by its time) per write the server saw.
    let ledger = Command::new("git")
        .args([
            "for-each-ref",
            "--format=%(refname)",
            "refs/agent-gate/pace/writes/",
        ])
        .current_dir(gate.bare.path())
        .output()
        .unwrap();
    let claims = String::from_utf8_lossy(&ledger.stdout).lines().count();
    assert_eq!(claims, writes.len());
}

const BUDGETED: &str = "version: 1\nagent:\n  timeout: 5m\n  max-tasks-per-day: 50\n  poll: { initial: 1s, max: 1s }\nscope:\n  allow: [\"**\"]\n";

/// The daily budget counts the day's agent-gate sessions. Each run records in the task index
/// what its task's sessions cost once they ended, so the next runs count a finished task
/// from the index instead of reading it: a night of runs on one repository reads no task
/// of another run, and the count is still exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_budget_counts_finished_tasks_without_reading_them() {
    let gate = Gate::new()
        .shell_project()
        .policy(BUDGETED)
        .repository("octo/fleet")
        .token("ghp_x")
        .start()
        .await;
    let mut reads = Vec::new();
    for n in 0..8u32 {
        let before = gate.sim.request_log().len();
        let (report, text) = run_key(&gate, &format!("budget-{n}")).await;
        assert_eq!(report.verdict, Verdict::Passed, "{text}");
        let budget = report.budget.as_ref().expect("the budget was checked");
        assert_eq!(budget.tasks_today, n, "sessions counted before run {n}");
        assert_eq!(
            budget.tasks_read, 0,
            "run {n} read tasks for the budget: {text}"
        );
        let own = report.task.as_ref().unwrap().id.clone();
        reads.push(requests_of(&gate.sim.request_log()[before..], &own).0);
    }
    assert_eq!(reads, vec![0; 8], "reads of other runs' tasks per run");
}

/// `plan --review-load` shows, per repository of the batch, the open pull requests from
/// agent-gate's tasks (read from GitHub and from the repository's task index), and says
/// which repositories it could not count; it needs a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_shows_the_review_load_of_each_repository() {
    let gate = Gate::new()
        .shell_project()
        .policy(UNCAPPED)
        .repository("octo/fleet")
        .token("ghp_x")
        .start()
        .await;
    for n in 0..3 {
        let (report, text) = run_key(&gate, &format!("load-{n}")).await;
        assert_eq!(report.verdict, Verdict::Passed, "{text}");
    }
    assert!(
        gate.sim.close_pull("octo", "fleet", 2),
        "pull request #2 closed"
    );
    // GitHub's git server: a directory of bare repositories; octo/other has none.
    let dir = tempfile::tempdir().unwrap();
    let server = dir.path().join("server");
    std::fs::create_dir_all(server.join("octo")).unwrap();
    std::os::unix::fs::symlink(gate.bare.path(), server.join("octo/fleet.git")).unwrap();
    let manifest = dir.path().join("night.yml");
    std::fs::write(
        &manifest,
        "version: 1\nentries:\n  - id: load\n    repositories: [octo/fleet, octo/other]\n    instruction: \"x\"\n    scope: []\n",
    )
    .unwrap();
    let outputs = dir.path().join("outputs");
    std::fs::write(&outputs, "").unwrap();
    let url = gate.sim.url();
    let plan = move |token: Option<&str>| {
        let cli = Cli::new()
            .args(["plan", "--review-load", "--api-url", &url])
            .arg(&manifest)
            .clean_env()
            .env("GITHUB_OUTPUT", &outputs)
            .env("GITHUB_SERVER_URL", format!("file://{}", server.display()));
        match token {
            Some(t) => cli.env("INPUT_TOKEN", t),
            None => cli,
        }
        .run()
    };
    let out = tokio::task::spawn_blocking(move || (plan(Some("ghp_x")), plan(None)))
        .await
        .unwrap();
    let (with, without) = out;
    let stderr = with.stderr();
    assert_eq!(with.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "octo/fleet: 2 open pull requests from agent-gate's tasks; oldest #1 (opened "
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("octo/other: not counted (cannot read its task index"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(dir.path().join("outputs")).unwrap();
    // `name<<delimiter`, the value, the delimiter.
    let mut lines = written.lines();
    let line = lines
        .by_ref()
        .find(|l| l.starts_with("review-load<<"))
        .and_then(|_| lines.next())
        .unwrap_or_else(|| panic!("no review-load output in {written}"));
    let loads: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(loads[0]["repository"], "octo/fleet");
    assert_eq!(loads[0]["open"], 2);
    assert_eq!(loads[0]["oldest"][1]["number"], 3);
    let stderr = without.stderr();
    assert_eq!(without.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--review-load reads GitHub: give a token"),
        "{stderr}"
    );
}
