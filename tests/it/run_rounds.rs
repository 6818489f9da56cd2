//! `agent-gate run` with repair rounds, daily budgets and admission, end to end against the
//! in-process simulator (scaled time): a repair round that fixes the change passes with both
//! rounds in the report and the findings in the follow-up's prompt (simulator request log);
//! a protected path is never sent back; exhausted rounds keep the last verdict after N+1
//! sessions; a run over a daily budget is refused before anything is created; a run over
//! `max-concurrent-tasks` waits until a slot frees (or its deadline: "never admitted"), and a
//! re-run attaching to its own task never waits.

use std::time::Duration;

use agent_gate::adapters::actions::Masker;
use agent_gate::adapters::audit::{AuditEvent, AuditLog, AuditStream, RoundEvent, TriggerEvent};
use agent_gate::adapters::github::create_task_request;
use agent_gate::adapters::github::types::{Task, Usage};
use agent_gate::adapters::shutdown::Shutdown;
use agent_gate::core::prompt::marker;
use agent_gate::core::report::{Report, Verdict};
use agent_gate::flow::{RunOptions, WAITING_STATE, run};
use agent_gate::sim::{FileOp, FinalState, Scenario, TaskScript};

use crate::support::{Cli, Gate, SHELL_LIB as LIB, Shared, World};

const REPOSITORY: &str = "octo/demo";
const TOKEN: &str = "ghp_rounds_user_token";

const SUB: &str = "sub() { echo $(($1 - $2)); }\n";

/// The policy of these tests; `{agent}` is replaced by extra `agent:` keys. Checks run on a
/// scope violation too, so a repair prompt can carry both kinds of findings.
fn policy(agent: &str) -> String {
    format!(
        "\
version: 1
repositories: [octo/demo]
agent:
  timeout: 5m
  poll: {{ initial: 1s, max: 1s }}
{agent}scope:
  allow: [\"src/**\", \"tests/**\"]
  deny: [\"**/*.pem\"]
checks-on-violation: run
checks:
  - name: unit tests
    run: sh tests/run.sh
    timeout: 1m
"
    )
}

/// A workspace clone of a bare repository the simulator serves, with a small project, a test
/// suite and the policy committed on `main`.
async fn gate(policy: &str, tasks: Vec<TaskScript>, default_task: Option<TaskScript>) -> World {
    Gate::new()
        .shell_project()
        .policy(policy)
        .scenario(Scenario {
            tasks,
            default_task: default_task.unwrap_or_default(),
            ..Scenario::default()
        })
        .repository(REPOSITORY)
        .token(TOKEN)
        .start()
        .await
}

/// A scripted agent session for prompts containing `matches`.
fn agent(matches: &str, files: Vec<FileOp>, credits: f64) -> TaskScript {
    TaskScript {
        matches: Some(matches.to_string()),
        files: Some(files),
        usage: Some(Usage {
            kind: "ai_credits".to_string(),
            amount: credits * 1e9,
        }),
        ..TaskScript::default()
    }
}

fn write(path: &str, content: &str) -> FileOp {
    FileOp::Write {
        path: path.to_string(),
        content: content.as_bytes().to_vec(),
    }
}

fn delete(path: &str) -> FileOp {
    FileOp::Delete {
        path: path.to_string(),
    }
}

impl World {
    /// Bodies of the create requests, in order.
    fn create_bodies(&self) -> Vec<String> {
        self.sim
            .request_log()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/tasks"))
            .map(|r| r.body)
            .collect()
    }

    /// A task agent-gate started earlier with `key` (the marker as `build_prompt` writes it).
    async fn gate_task(&self, text: &str, key: &str) -> Task {
        let prompt = format!(
            "{text}\n\n---\nThis task runs under agent-gate.\n{}\n",
            marker(key)
        );
        self.client()
            .create_task(&create_task_request(prompt, Some("main".to_string())))
            .await
            .expect("create")
    }

    /// Wait until the simulator's task `id` is in a final state.
    async fn settle(&self, id: &str) {
        for _ in 0..500 {
            let done = self
                .sim
                .tasks()
                .iter()
                .any(|t| t.id == id && t.state.is_final());
            if done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task {id} never finished");
    }
}

fn assert_verdict(report: &Report, verdict: Verdict, code: u8) {
    assert_eq!(report.verdict, verdict, "report:\n{}", report.to_json());
    assert_eq!(report.exit_code, code);
}

fn credits(report: &Report) -> f64 {
    report.task.as_ref().expect("task").ai_credits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_round_that_fixes_the_change_passes_with_both_rounds_reported() {
    let g = gate(
        &policy("  repair-rounds: 1\n"),
        vec![
            // The repair prompt quotes the instruction: its entry comes first.
            agent(
                "Repair round 1",
                vec![write("src/lib.sh", LIB), delete("src/key.pem")],
                0.5,
            ),
            agent(
                "Add subtraction",
                vec![
                    write("src/sub.sh", SUB),
                    write("src/lib.sh", "add() { echo $(($1 - $2)); }\n"),
                    write("src/key.pem", "-----BEGIN KEY-----\n"),
                ],
                1.5,
            ),
        ],
        None,
    )
    .await;
    let audit_dir = tempfile::tempdir().expect("temp dir");
    let audit_path = audit_dir.path().join("audit.jsonl");
    let audit = AuditStream::new(
        AuditLog::open(&audit_path, Masker::new()).expect("audit file"),
        TriggerEvent::default(),
    );
    let opts = RunOptions {
        audit: audit.clone(),
        ..g.opts("Add subtraction to the library")
    };
    let (report, progress) = g.run(opts).await;
    audit.finish(&report).expect("audit written");
    assert_verdict(&report, Verdict::Passed, 0);
    let files: Vec<&str> = report.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(files, ["src/sub.sh"]);

    // The audit record has one `round` event per round, between the checks and the verdict.
    let text = std::fs::read_to_string(&audit_path).expect("audit file");
    let events: Vec<AuditEvent> = agent_gate::adapters::audit::parse(&text)
        .into_iter()
        .map(|(n, line)| line.unwrap_or_else(|e| panic!("line {n}: {e}")).event)
        .collect();
    let rounds: Vec<&RoundEvent> = events
        .iter()
        .filter_map(|e| match e {
            AuditEvent::Round(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(rounds.len(), 2, "{text}");
    assert_eq!(
        (rounds[0].round, rounds[0].verdict.as_str()),
        (0, "scope-violation")
    );
    assert_eq!(rounds[0].checks_failed, ["unit tests"]);
    assert_eq!((rounds[1].round, rounds[1].verdict.as_str()), (1, "passed"));
    assert_eq!(rounds[0].task_id, rounds[1].task_id);
    let names: Vec<&str> = events.iter().map(AuditEvent::name).collect();
    assert_eq!(names.first(), Some(&"trigger"));
    assert_eq!(names.last(), Some(&"verdict"));
    assert_eq!(names[names.len() - 3..names.len() - 1], ["round", "round"]);

    // Two rounds: the first failed on both counts, the repair passed.
    assert_eq!(report.rounds.len(), 2, "{}", report.to_json());
    let text = report.render_text();
    assert!(text.contains("rounds (2):"), "{text}");
    assert!(text.contains("round 1: passed"), "{text}");
    let summary = agent_gate::core::summary::render(
        &report,
        &agent_gate::core::summary::SummaryContext::default(),
    );
    assert!(summary.contains("### Repair rounds"), "{summary}");
    let (first, repair) = (&report.rounds[0], &report.rounds[1]);
    assert_eq!((first.round, repair.round), (0, 1));
    assert_eq!(first.verdict, Verdict::ScopeViolation);
    assert_eq!(first.checks_failed, ["unit tests"]);
    assert!(first.files.contains(&"src/key.pem".to_string()));
    assert_eq!(repair.verdict, Verdict::Passed);
    assert_eq!(repair.key, format!("{}-r1", first.key));
    assert_eq!(
        first.task_id, repair.task_id,
        "a follow-up continues the task"
    );
    assert_ne!(first.head_sha, repair.head_sha);
    assert_ne!(first.prompt_sha256, repair.prompt_sha256);
    assert!(
        (first.ai_credits - 1.5).abs() < 1e-9,
        "{}",
        first.ai_credits
    );
    assert!(
        (repair.ai_credits - 0.5).abs() < 1e-9,
        "{}",
        repair.ai_credits
    );
    assert!(
        (credits(&report) - 2.0).abs() < 1e-9,
        "{}",
        credits(&report)
    );

    // The follow-up: the agent's branch, the failing test's output, the rule that denied.
    assert_eq!(g.creates(), 2);
    let bodies = g.create_bodies();
    let follow_up: serde_json::Value = serde_json::from_str(&bodies[1]).expect("json body");
    let branch = report
        .task
        .as_ref()
        .and_then(|t| t.branch.clone())
        .expect("branch");
    assert_eq!(follow_up["head_ref"], branch.as_str());
    assert_eq!(follow_up["base_ref"], "main");
    let prompt = follow_up["prompt"].as_str().expect("prompt");
    assert!(prompt.starts_with("Repair round 1 of 1."), "{prompt}");
    assert!(prompt.contains("FAIL: add 2 3 gave -1"), "{prompt}");
    assert!(prompt.contains("`unit tests`"), "{prompt}");
    assert!(
        prompt.contains("src/key.pem: denied by \"**/*.pem\" (line 9)"),
        "{prompt}"
    );
    assert!(prompt.contains(&marker(&repair.key)), "{prompt}");
    assert!(
        prompt.contains("> Add subtraction to the library"),
        "{prompt}"
    );

    // The timeline spans both rounds; progress names the repair round.
    let states: Vec<&str> = report
        .task
        .as_ref()
        .expect("task")
        .timeline
        .iter()
        .map(|e| e.state.as_str())
        .collect();
    assert_eq!(
        states.iter().filter(|s| **s == "completed").count(),
        2,
        "{states:?}"
    );
    assert!(progress.contains("repair round 1 of 1"), "{progress}");
    assert!(
        progress.contains("repair round 1: task completed"),
        "{progress}"
    );
    assert_eq!(g.work.git(["for-each-ref", "refs/agent-gate"]), "");

    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
    assert_eq!(json["rounds"].as_array().map(Vec::len), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_path_is_never_sent_back_for_repair() {
    let g = gate(
        &policy("  repair-rounds: 2\n"),
        vec![
            agent("Repair round", vec![write("src/lib.sh", LIB)], 1.0),
            agent(
                "Speed up CI",
                vec![
                    write("src/lib.sh", "add() { echo 0; }\n"),
                    write(".github/workflows/ci.yml", "on: push\njobs: {}\n"),
                ],
                1.0,
            ),
        ],
        None,
    )
    .await;
    let (report, progress) = g.run(g.opts("Speed up CI")).await;
    assert_verdict(&report, Verdict::ScopeViolation, 11);
    assert_eq!(g.creates(), 1, "no follow-up was sent");
    assert_eq!(report.rounds.len(), 1);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("protected path") && n.contains("not sent back")),
        "{:?}",
        report.notes
    );
    assert!(!progress.contains("repair round"), "{progress}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_repair_rounds_keep_the_last_verdict_after_n_plus_one_sessions() {
    let broken = |n: u32| write("src/lib.sh", &format!("add() {{ echo {n}; }}\n"));
    let g = gate(
        // The policy allows none; the input asks for two.
        &policy(""),
        vec![
            agent("Repair round 1", vec![broken(1)], 1.0),
            agent("Repair round 2", vec![broken(2)], 1.0),
            agent("Fix the adder", vec![broken(0)], 1.0),
        ],
        None,
    )
    .await;
    let mut opts = g.opts("Fix the adder");
    opts.repair_rounds = Some(2);
    let (report, _) = g.run(opts).await;
    assert_verdict(&report, Verdict::ChecksFailed, 10);
    assert_eq!(g.creates(), 3, "the first task and two repair rounds");
    let rounds: Vec<(u32, Verdict)> = report.rounds.iter().map(|r| (r.round, r.verdict)).collect();
    assert_eq!(
        rounds,
        [
            (0, Verdict::ChecksFailed),
            (1, Verdict::ChecksFailed),
            (2, Verdict::ChecksFailed)
        ]
    );
    assert!(
        report.checks[0].output_tail.contains("gave 2"),
        "the last round's checks"
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("repair rounds exhausted (2 of 2)")),
        "{:?}",
        report.notes
    );
    let bodies = g.create_bodies();
    assert!(bodies[2].contains("Repair round 2 of 2."), "{}", bodies[2]);
    assert!(bodies[2].contains("FAIL: add 2 3 gave 1"), "{}", bodies[2]);
    assert!(
        (credits(&report) - 3.0).abs() < 1e-9,
        "{}",
        credits(&report)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_the_daily_task_budget_is_refused_and_creates_nothing() {
    let g = gate(&policy("  max-tasks-per-day: 1\n"), Vec::new(), None).await;
    let earlier = g.gate_task("Earlier work", "earlier-key").await;
    g.settle(&earlier.id).await;
    let before = g.creates();
    let (report, progress) = g.run(g.opts("Add subtraction")).await;
    assert_verdict(&report, Verdict::OverBudget, 14);
    assert_eq!(g.creates(), before, "nothing was created");
    let message = report.errors.join("\n");
    assert!(
        message.contains("already started 1 agent task")
            && message.contains("agent.max-tasks-per-day is 1")
            && message.contains("Nothing was started"),
        "{message}"
    );
    let budget = report.budget.as_ref().expect("the figures");
    assert_eq!(budget.tasks_today, 1);
    assert!(budget.would_exceed.is_some());
    assert!(
        progress.contains("verdict over-budget (exit 14)"),
        "{progress}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
    assert_eq!(json["budget"]["tasks_today"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_the_daily_credit_budget_is_refused_and_creates_nothing() {
    let g = gate(
        &policy("  max-ai-credits-per-day: 2\n"),
        vec![agent("Earlier work", vec![write("src/a.sh", "a\n")], 2.5)],
        None,
    )
    .await;
    let earlier = g.gate_task("Earlier work", "earlier-key").await;
    g.settle(&earlier.id).await;
    let before = g.creates();
    let (report, _) = g.run(g.opts("Add subtraction")).await;
    assert_verdict(&report, Verdict::OverBudget, 14);
    assert_eq!(g.creates(), before);
    let message = report.errors.join("\n");
    assert!(
        message.contains("used 2.5 AI credits") && message.contains("max-ai-credits-per-day: 2"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_within_budget_is_started_and_repair_rounds_count_against_it() {
    // Two sessions a day: the first task fits, its repair round would be the third session.
    let g = gate(
        &policy("  max-tasks-per-day: 2\n  repair-rounds: 3\n"),
        vec![
            agent(
                "Repair round",
                vec![write("src/lib.sh", "add() { echo 9; }\n")],
                1.0,
            ),
            agent(
                "Fix the adder",
                vec![write("src/lib.sh", "add() { echo 0; }\n")],
                1.0,
            ),
        ],
        None,
    )
    .await;
    let earlier = g.gate_task("Earlier work", "earlier-key").await;
    g.settle(&earlier.id).await;
    let before = g.creates();
    let (report, progress) = g.run(g.opts("Fix the adder")).await;
    assert_verdict(&report, Verdict::ChecksFailed, 10);
    assert_eq!(g.creates(), before + 1, "the repair round was refused");
    assert!(progress.contains("within budget"), "{progress}");
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("no repair round 1") && n.contains("over budget")),
        "{:?}",
        report.notes
    );
    assert_eq!(report.rounds.len(), 1);
}

/// A scenario with a task that never finishes (`Blocker`) and one that completes with an
/// in-scope change that passes.
fn admission_scripts() -> Vec<TaskScript> {
    vec![
        TaskScript {
            matches: Some("Blocker".to_string()),
            final_state: FinalState::Never,
            ..TaskScript::default()
        },
        agent("Add subtraction", vec![write("src/sub.sh", SUB)], 1.0),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_waits_for_capacity_and_starts_when_a_slot_frees() {
    let g = gate(
        &policy("  max-concurrent-tasks: 1\n"),
        admission_scripts(),
        None,
    )
    .await;
    let blocker = g.gate_task("Blocker", "other-run").await;
    let mut progress = Shared::default();
    let watch = progress.clone();
    let opts = g.opts("Add subtraction");
    let (report, freed) = tokio::join!(run(opts, Shutdown::never(), &mut progress), async {
        for _ in 0..3000 {
            if watch.text().contains("waiting for capacity") {
                assert_eq!(g.creates(), 1, "nothing is created while waiting");
                return g.sim.cancel_task(&blocker.id);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    });
    let progress = progress.text();
    assert!(freed, "the run never reported waiting:\n{progress}");
    assert_verdict(&report, Verdict::Passed, 0);
    assert_eq!(g.creates(), 2);
    assert!(
        progress.contains("waiting for capacity: 1 agent-gate tasks running"),
        "{progress}"
    );
    assert!(progress.contains("admitted after waiting"), "{progress}");
    let task = report.task.as_ref().expect("task");
    assert_eq!(task.timeline[0].state, WAITING_STATE);
    // Then the task's own states (how much of its 2 ms of `queued` a poll sees depends on the
    // machine's load), ending completed.
    assert!(
        matches!(task.timeline[1].state.as_str(), "queued" | "in_progress"),
        "{:?}",
        task.timeline
    );
    assert_eq!(
        task.timeline.last().map(|t| t.state.as_str()),
        Some("completed")
    );
    let admission = report.admission.as_ref().expect("admission record");
    assert!(admission.admitted);
    assert_eq!((admission.limit, admission.running), (1, 1));
    assert!(admission.waited_s > 0.0);
    // Admitted under the lock on the workspace's remote, holding a lease until it ended.
    let lock = admission.lock.as_deref().unwrap_or_default();
    assert!(
        lock.starts_with("held refs/agent-gate/admission/leases/"),
        "{lock}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_never_admitted_before_its_deadline_is_timed_out_and_creates_nothing() {
    let g = gate(
        &policy("  max-concurrent-tasks: 1\n"),
        admission_scripts(),
        None,
    )
    .await;
    let _blocker = g.gate_task("Blocker", "other-run").await;
    let mut opts = g.opts("Add subtraction");
    opts.timeout = Some(Duration::from_secs(3));
    let (report, progress) = g.run(opts).await;
    assert_verdict(&report, Verdict::TimedOut, 13);
    assert_eq!(g.creates(), 1, "only the blocker was ever created");
    assert!(
        report.notes.iter().any(|n| n.contains("never admitted")),
        "{:?}",
        report.notes
    );
    assert!(progress.contains("waiting for capacity"), "{progress}");
    let task = report.task.as_ref().expect("task");
    assert_eq!(task.state, WAITING_STATE);
    assert_eq!(task.timeline[0].state, WAITING_STATE);
    let record = report.admission.as_ref().expect("record");
    assert!(!record.admitted);
    assert_eq!(record.lock, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_attaching_to_its_own_task_never_waits_for_capacity() {
    let g = gate(
        &policy("  max-concurrent-tasks: 1\n  max-tasks-per-day: 1\n"),
        admission_scripts(),
        None,
    )
    .await;
    let _blocker = g.gate_task("Blocker", "other-run").await;
    // This run's task, started by an earlier attempt with the same key.
    let own = g.gate_task("Add subtraction", "nightly-1").await;
    let mut opts = g.opts("Add subtraction");
    opts.task_key = Some("nightly-1".to_string());
    opts.timeout = Some(Duration::from_mins(1));
    let (report, progress) = g.run(opts).await;
    // Neither the slot the blocker holds nor the spent budget stops the re-run.
    assert_verdict(&report, Verdict::Passed, 0);
    let task = report.task.as_ref().expect("task");
    assert!(task.attached);
    assert_eq!(task.id, own.id);
    assert_eq!(g.creates(), 2, "the re-run created nothing");
    assert!(!progress.contains("waiting"), "{progress}");
    assert!(report.admission.is_none() && report.budget.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_attaches_to_the_repair_round_in_flight() {
    let g = gate(
        &policy("  repair-rounds: 2\n"),
        vec![
            agent("Repair round 1", vec![write("src/sub.sh", SUB)], 0.5),
            agent(
                "Add subtraction",
                vec![write("src/sub.sh", "sub() { :; }\n")],
                1.0,
            ),
        ],
        None,
    )
    .await;
    // An earlier attempt started the task and its first repair round, then died.
    let first = g.gate_task("Add subtraction", "nightly-2").await;
    g.settle(&first.id).await;
    let branch = g.sim.tasks()[0]
        .sessions
        .as_ref()
        .and_then(|s| s[0].head_ref.clone())
        .expect("branch");
    let follow_up = agent_gate::flow::repair::follow_up_request(
        format!(
            "Repair round 1 of 2. Fix it.\n\n---\n{}\n",
            marker("nightly-2-r1")
        ),
        &branch,
        "main",
    );
    g.client().create_task(&follow_up).await.expect("follow-up");
    let mut opts = g.opts("Add subtraction");
    opts.task_key = Some("nightly-2".to_string());
    let (report, progress) = g.run(opts).await;
    assert_verdict(&report, Verdict::Passed, 0);
    assert_eq!(g.creates(), 2, "the re-run sent nothing");
    assert!(progress.contains("in repair round 1"), "{progress}");
    assert_eq!(report.rounds.len(), 1);
    assert_eq!(report.rounds[0].round, 1);
    assert_eq!(report.rounds[0].key, "nightly-2-r1");
    assert!((report.rounds[0].ai_credits - 0.5).abs() < 1e-9);
}

#[tokio::test]
async fn a_repair_rounds_input_that_is_not_a_number_is_a_config_error() {
    let out = Cli::new()
        .args(["run", "--repository", REPOSITORY, "--instruction", "x"])
        .args(["--repair-rounds", "two"])
        .run_async()
        .await;
    assert_eq!(out.code(), Some(2));
    let stderr = out.stderr();
    assert!(stderr.contains("repair-rounds `two`"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_round_waits_for_a_slot_taken_while_the_first_round_was_gated() {
    let g = gate(
        &policy("  max-concurrent-tasks: 1\n  repair-rounds: 1\n"),
        vec![
            TaskScript {
                matches: Some("Blocker".to_string()),
                final_state: FinalState::Never,
                ..TaskScript::default()
            },
            agent("Repair round 1", vec![write("src/lib.sh", LIB)], 0.5),
            agent(
                "Add subtraction",
                vec![
                    write("src/sub.sh", SUB),
                    write("src/lib.sh", "add() { echo $(($1 - $2)); }\n"),
                ],
                1.0,
            ),
        ],
        None,
    )
    .await;
    let mut progress = Shared::default();
    let watch = progress.clone();
    let opts = g.opts("Add subtraction to the library");
    let (report, freed) = tokio::join!(run(opts, Shutdown::never(), &mut progress), async {
        // Once the first round's task is done (the run notices on its next poll, up to a
        // second later), somebody else's task takes the only slot.
        for _ in 0..3000 {
            if g.sim.tasks().iter().any(|t| t.state.is_final()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let blocker = g.gate_task("Blocker", "other-run").await;
        for _ in 0..3000 {
            if watch
                .text()
                .contains("repair round 1: waiting for capacity")
            {
                assert_eq!(g.creates(), 2, "no follow-up while waiting");
                return g.sim.cancel_task(&blocker.id);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    });
    let progress = progress.text();
    assert!(freed, "the repair round never waited:\n{progress}");
    assert_verdict(&report, Verdict::Passed, 0);
    assert_eq!(report.rounds.len(), 2, "{}", report.to_json());
    assert_eq!(g.creates(), 3, "first task, blocker, follow-up");
    assert!(
        progress.contains("repair round 1: waiting for capacity: 1 agent-gate tasks running"),
        "{progress}"
    );
    assert!(
        progress.contains("repair round 1: admitted after waiting"),
        "{progress}"
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("repair round 1 waited")),
        "{:?}",
        report.notes
    );
    assert_eq!(g.sim.peak_running("octo", "demo"), 1, "never two at once");
}
