//! The run's task lifecycle against a scripted GitHub (`flow::TaskApi`, through
//! `flow::run_with_tasks`): which tasks the agent-tasks API lists, finds, creates and
//! reads, and what each poll ends with, written as values — for the decisions that read
//! more clearly that way than as HTTP exchanges: attach rather than create, a task named by
//! id, a spent budget, each ending of a poll. The workspace, its origin, git and the checks
//! are real (a [`Gate`] world); only the task lifecycle's calls are scripted, and every call
//! the gate makes is recorded.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use agent_gate::adapters::github::types::{CreateTaskRequest, Task, TaskList};
use agent_gate::adapters::github::{
    ApiError, CreatedTask, ErrorInfo, ListQuery, MarkerHints, PollEvent, PollOptions, PollOutcome,
};
use agent_gate::adapters::shutdown::Shutdown;
use agent_gate::core::prompt::marker;
use agent_gate::core::report::{CheckStatus, Report, Verdict};
use agent_gate::flow::admission::{Admission, AdmissionLimits, Priority, admit};
use agent_gate::flow::{RunOptions, TaskApi, run_with_tasks};
use serde_json::json;
use tokio::time::Instant;

use crate::support::{Gate, SHELL_POLICY as POLICY, Shared, World};

/// What the scripted API answers.
#[derive(Default)]
struct Answers {
    /// `list_tasks`, whatever the query.
    listed: Vec<Task>,
    /// `find_task_by_marker`.
    found: Option<Task>,
    /// `get_task`, by id (a missing id is a 404).
    by_id: HashMap<String, Task>,
    /// `create_task_idempotent`.
    created: Option<Task>,
    /// Each `poll_task`, in turn.
    polls: VecDeque<PollOutcome>,
}

/// GitHub's agent-tasks API as a script; records each call (`list`, `find <marker>`,
/// `get <id>`, `create`, `poll <id>`) and the prompt of a create.
#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<Answers>>,
    calls: Arc<Mutex<Vec<String>>>,
    prompts: Arc<Mutex<Vec<String>>>,
}

impl Script {
    fn new(answers: Answers) -> Script {
        Script {
            answers: Arc::new(Mutex::new(answers)),
            ..Script::default()
        }
    }

    fn called(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

fn not_found(path: &str) -> ApiError {
    ApiError::NotFound {
        info: Box::new(error_info("GET", path, 404)),
    }
}

fn error_info(method: &str, path: &str, status: u16) -> ErrorInfo {
    ErrorInfo {
        method: method.to_string(),
        path: path.to_string(),
        status,
        message: None,
        documentation_url: None,
        request_id: Some("0A1B:2C3D".to_string()),
        accepted_permissions: None,
    }
}

impl TaskApi for Script {
    fn repository(&self) -> String {
        "octo/demo".to_string()
    }

    fn with_deadline(&self, _deadline: Instant) -> Script {
        self.clone()
    }

    fn now(&self) -> jiff::Timestamp {
        now()
    }

    fn list_tasks(
        &self,
        _query: &ListQuery,
    ) -> impl Future<Output = Result<TaskList, ApiError>> + Send {
        self.called("list".to_string());
        let tasks = self.answers.lock().unwrap().listed.clone();
        async move {
            Ok(TaskList {
                tasks,
                total_active_count: None,
                total_archived_count: None,
            })
        }
    }

    fn get_task(&self, id: &str) -> impl Future<Output = Result<Task, ApiError>> + Send {
        self.called(format!("get {id}"));
        let task = self.answers.lock().unwrap().by_id.get(id).cloned();
        let path = format!("/agents/repos/octo/demo/tasks/{id}");
        async move { task.ok_or_else(|| not_found(&path)) }
    }

    fn create_task_idempotent(
        &self,
        req: &CreateTaskRequest,
        _marker: &str,
        _since: jiff::Timestamp,
    ) -> impl Future<Output = Result<CreatedTask, ApiError>> + Send {
        self.called("create".to_string());
        self.prompts.lock().unwrap().push(req.prompt.clone());
        let task = self.answers.lock().unwrap().created.clone();
        async move {
            Ok(CreatedTask {
                task: task.expect("the script creates no task"),
                reconciled: false,
                posts: 1,
            })
        }
    }

    fn find_task_by_marker(
        &self,
        marker: &str,
        _since: Option<jiff::Timestamp>,
        _hints: &MarkerHints,
    ) -> impl Future<Output = Result<Option<Task>, ApiError>> + Send {
        self.called(format!("find {marker}"));
        let found = self.answers.lock().unwrap().found.clone();
        async move { Ok(found) }
    }

    fn poll_task<S, E>(
        &self,
        id: &str,
        _opts: &PollOptions,
        _shutdown: S,
        _on_event: E,
    ) -> impl Future<Output = PollOutcome> + Send
    where
        S: Future<Output = ()> + Send,
        E: FnMut(PollEvent) + Send,
    {
        self.called(format!("poll {id}"));
        let outcome = self.answers.lock().unwrap().polls.pop_front();
        async move { outcome.expect("the script has no more polls") }
    }
}

/// The scripted API's clock: a fixed time (so a day's budget cannot roll over mid-test).
fn now() -> jiff::Timestamp {
    "2026-12-04T12:00:00Z".parse().expect("a time")
}

/// A task as GitHub's JSON gives it: `id`, `state`, created [`now`], plus `extra` fields.
fn task(id: &str, state: &str, extra: serde_json::Value) -> Task {
    let mut value = json!({
        "id": id,
        "state": state,
        "created_at": now().to_string(),
    });
    if let (Some(v), serde_json::Value::Object(more)) = (value.as_object_mut(), extra) {
        v.extend(more);
    }
    serde_json::from_value(value).expect("a task")
}

/// The world these tests run in: the shell project and [`POLICY`] (or `policy`) on `main`.
async fn world(policy: &str) -> World {
    Gate::new().shell_project().policy(policy).start().await
}

/// Run the gate with `script` for the task lifecycle; the report and the progress text.
async fn run_scripted(opts: RunOptions, script: &Script) -> (Report, String) {
    let mut progress = Shared::default();
    let tasks = script.clone();
    let report = run_with_tasks(opts, move |_| tasks, Shutdown::never(), &mut progress).await;
    (report, progress.text())
}

/// Push a branch `name` to the world's origin holding one more file under `src/`.
fn push_agent_branch(world: &World, name: &str, path: &str, content: &str) {
    let agent = world.clone_origin();
    agent.branch(name);
    agent.write(path, content);
    agent.commit("the agent's change");
    agent.git(["push", "-q", "origin", name]);
}

#[tokio::test]
async fn a_new_task_is_searched_for_then_created_once_polled_and_its_branch_gated() {
    let world = world(POLICY).await;
    push_agent_branch(
        &world,
        "copilot/sub",
        "src/sub.sh",
        "sub() { echo $(($1 - $2)); }\n",
    );
    let done = task(
        "t-1",
        "completed",
        json!({"artifacts": [{"provider": "github", "type": "branch",
                               "data": {"head_ref": "copilot/sub", "base_ref": "main"}}]}),
    );
    let script = Script::new(Answers {
        created: Some(task("t-1", "queued", json!({}))),
        polls: VecDeque::from([PollOutcome::Finished { task: done }]),
        ..Answers::default()
    });

    let (report, progress) = run_scripted(world.opts("Add subtraction"), &script).await;

    assert_eq!(report.verdict, Verdict::Passed, "{report:#?}\n{progress}");
    let key = &report.task.as_ref().expect("the task").key;
    assert_eq!(
        script.calls(),
        [
            format!("find {}", marker(key)),
            "create".into(),
            "poll t-1".into()
        ],
        "searched for by the run's marker, created once, polled"
    );
    let prompts = script.prompts.lock().unwrap().clone();
    assert!(prompts[0].contains(&marker(key)), "{}", prompts[0]);
    assert!(prompts[0].contains("Add subtraction"), "{}", prompts[0]);
    let task = report.task.as_ref().unwrap();
    assert_eq!((task.id.as_str(), task.attached), ("t-1", false));
    assert_eq!(report.head.as_deref(), Some("copilot/sub"));
    let changed: Vec<&str> = report.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(changed, ["src/sub.sh"]);
    assert_eq!(report.checks.len(), 1, "{:?}", report.checks);
    assert_eq!(
        report.checks[0].status,
        CheckStatus::Passed,
        "{:?}",
        report.checks
    );
}

#[tokio::test]
async fn a_task_found_by_the_runs_marker_is_attached_and_never_created_again() {
    let world = world(POLICY).await;
    let script = Script::new(Answers {
        found: Some(task("t-9", "in_progress", json!({}))),
        polls: VecDeque::from([PollOutcome::Finished {
            task: task("t-9", "failed", json!({})),
        }]),
        ..Answers::default()
    });

    let (report, progress) = run_scripted(world.opts("Add subtraction"), &script).await;

    assert_eq!(
        report.verdict,
        Verdict::AgentFailed,
        "{report:#?}\n{progress}"
    );
    assert_eq!(report.exit_code, 12);
    assert!(
        !script.calls().contains(&"create".to_string()),
        "{:?}",
        script.calls()
    );
    assert_eq!(script.calls().last().map(String::as_str), Some("poll t-9"));
    let task = report.task.as_ref().unwrap();
    assert_eq!((task.id.as_str(), task.attached), ("t-9", true));
    assert!(progress.contains("t-9"), "{progress}");
}

#[tokio::test]
async fn a_task_named_by_id_is_read_and_followed_without_a_search_or_a_create() {
    let world = world(POLICY).await;
    let script = Script::new(Answers {
        by_id: HashMap::from([("t-7".to_string(), task("t-7", "in_progress", json!({})))]),
        polls: VecDeque::from([PollOutcome::ApiError {
            error: ApiError::Server {
                info: Box::new(error_info("GET", "/agents/repos/octo/demo/tasks/t-7", 502)),
            },
            last: None,
        }]),
        ..Answers::default()
    });
    let opts = RunOptions {
        task_id: Some("t-7".to_string()),
        ..world.opts("")
    };

    let (report, progress) = run_scripted(opts, &script).await;

    assert_eq!(report.verdict, Verdict::ApiError, "{report:#?}\n{progress}");
    assert_eq!(script.calls(), ["get t-7", "poll t-7"]);
    let errors = report.errors.join("\n");
    assert!(
        errors.contains("502") && errors.contains("0A1B:2C3D"),
        "{errors}"
    );
}

#[tokio::test]
async fn a_spent_daily_budget_refuses_the_task_before_it_is_created() {
    let policy = POLICY.replace("  timeout: 5m\n", "  timeout: 5m\n  max-tasks-per-day: 1\n");
    let world = world(&policy).await;
    // Today's one task of another agent-gate run: its session carries a gate marker.
    let spent = task(
        "t-3",
        "completed",
        json!({"sessions": [{"id": "s-1", "state": "completed",
                             "created_at": now().to_string(),
                             "prompt": format!("Fix the docs. {}", marker("other-key"))}]}),
    );
    let script = Script::new(Answers {
        listed: vec![task("t-3", "completed", json!({}))],
        by_id: HashMap::from([("t-3".to_string(), spent)]),
        ..Answers::default()
    });

    let (report, progress) = run_scripted(world.opts("Add subtraction"), &script).await;

    assert_eq!(
        report.verdict,
        Verdict::OverBudget,
        "{report:#?}\n{progress}"
    );
    assert_eq!(report.exit_code, 14);
    let calls = script.calls();
    assert!(calls.contains(&"get t-3".to_string()), "{calls:?}");
    assert!(!calls.contains(&"create".to_string()), "{calls:?}");
    let budget = report.budget.as_ref().expect("the budget");
    assert_eq!(budget.tasks_today, 1);
}

#[tokio::test]
async fn a_poll_cut_by_the_deadline_is_timed_out() {
    let world = world(POLICY).await;
    let running = task("t-5", "in_progress", json!({}));
    let script = Script::new(Answers {
        created: Some(task("t-5", "queued", json!({}))),
        polls: VecDeque::from([PollOutcome::DeadlineReached {
            last: Some(running),
        }]),
        ..Answers::default()
    });

    let (report, progress) = run_scripted(world.opts("Add subtraction"), &script).await;

    assert_eq!(report.verdict, Verdict::TimedOut, "{report:#?}\n{progress}");
    assert_eq!(report.exit_code, 13);
    assert_eq!(script.calls().last().map(String::as_str), Some("poll t-5"));
    assert_eq!(report.task.as_ref().unwrap().state, "in_progress");
}

/// Admission (`flow::admission::admit`) counts the running tasks of other agent-gate runs —
/// by the marker in a task's name, else in its sessions' prompts — never the run's own
/// task nor a person's; a task gone since the list holds no slot.
#[tokio::test(start_paused = true)]
async fn admission_counts_other_runs_tasks_and_not_its_own_nor_a_persons() {
    let own = marker("mine");
    let session = |prompt: &str| {
        json!({"sessions": [{"id": "s", "state": "in_progress",
                             "created_at": now().to_string(),
                             "prompt": prompt}]})
    };
    let script = Script::new(Answers {
        listed: vec![
            task(
                "t-a",
                "in_progress",
                json!({"name": format!("Docs {}", marker("other"))}),
            ),
            task("t-b", "queued", json!({})),
            task(
                "t-own",
                "in_progress",
                json!({"name": format!("Mine {own}")}),
            ),
            task("t-p", "in_progress", json!({"name": "A person's task"})),
            task("t-gone", "in_progress", json!({})),
        ],
        by_id: HashMap::from([
            (
                "t-b".to_string(),
                task("t-b", "queued", session(&format!("x {}", marker("third")))),
            ),
            (
                "t-p".to_string(),
                task("t-p", "in_progress", session("Fix the flaky test")),
            ),
        ]),
        ..Answers::default()
    });
    let limits = |max| AdmissionLimits {
        max_concurrent: Some(max),
        reserved_for_high: 0,
    };
    let admit_under = |max: u32| {
        let script = script.clone();
        let own = own.clone();
        async move {
            let deadline = Instant::now() + std::time::Duration::from_secs(30);
            admit(
                &script,
                limits(max),
                Priority::Normal,
                own.as_str(),
                deadline,
                std::time::Duration::from_secs(5),
                None,
                std::future::pending::<()>(),
                |_| {},
            )
            .await
        }
    };

    // Two other runs' tasks (t-a by its name, t-b by its session) fill a cap of 2.
    match admit_under(2).await {
        Admission::NeverAdmitted { running, .. } => assert_eq!(running, 2),
        other => panic!("a cap of 2 is full: {other:?}"),
    }
    // A third slot is free.
    assert!(
        matches!(admit_under(3).await, Admission::Admitted { .. }),
        "a cap of 3 has a free slot"
    );
    // Names told t-a and t-own apart without a read; t-b, t-p and t-gone were read.
    let reads: Vec<String> = script
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("get "))
        .collect();
    assert!(
        reads.contains(&"get t-b".to_string()) && reads.contains(&"get t-gone".to_string()),
        "{reads:?}"
    );
    assert!(
        !reads.iter().any(|r| r == "get t-a" || r == "get t-own"),
        "{reads:?}"
    );
}
