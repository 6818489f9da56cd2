//! Daily budgets (`agent_gate::flow::budget`): counting agent-gate's sessions of today against the
//! in-process simulator (marker, archived tasks, follow-up sessions, the day boundary through
//! an injected `now`), the pure counting on constructed tasks (sessions created yesterday),
//! the limit arithmetic, and the refusal messages (snapshots).

use std::time::Duration;

use agent_gate::adapters::github::types::{Session, Task, TaskState, Usage};
use agent_gate::adapters::github::{ApiError, Client, create_task_request};
use agent_gate::core::prompt::marker;
use agent_gate::flow::budget::{
    BudgetError, BudgetLimits, BudgetStatus, DayCount, Exceeded, check_budget, count_today,
    evaluate, utc_midnight,
};
use jiff::{SignedDuration, Timestamp};

use crate::support::{Gate, World};

const TOKEN: &str = "ghp_budgettesttoken";

/// A [`World`] whose simulator plays `yaml` (its default scenario without one), at ×1000.
struct Fixture {
    world: World,
}

async fn start(yaml: Option<&str>) -> Fixture {
    let gate = Gate::new().repository("octo-org/payments").token(TOKEN);
    let gate = match yaml {
        Some(y) => gate.scenario_yaml(y),
        None => gate,
    };
    Fixture {
        world: gate.start().await,
    }
}

impl Fixture {
    fn client_with(&self, token: &str) -> Client {
        self.world.client_with(token)
    }

    fn client(&self) -> Client {
        self.world.client()
    }

    /// Start a task with `prompt` and wait until it has finished.
    async fn task(&self, prompt: &str) -> Task {
        let client = self.client();
        let t = client
            .create_task(&create_task_request(prompt, None))
            .await
            .unwrap();
        self.wait(&t.id).await
    }

    async fn wait(&self, id: &str) -> Task {
        let client = self.client();
        for _ in 0..500 {
            let t = client.get_task(id).await.unwrap();
            if t.state.is_final() {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task {id} did not finish");
    }

    /// A time on the same UTC day as every session the simulator holds (its latest).
    fn now(&self) -> Timestamp {
        self.world
            .sim
            .tasks()
            .iter()
            .flat_map(|t| t.sessions.clone().unwrap_or_default())
            .map(|s| s.created_at.parse::<Timestamp>().unwrap())
            .max()
            .unwrap()
    }
}

fn gate_prompt(instruction: &str, key: &str) -> String {
    format!(
        "{instruction}\n\n---\nThis task runs under agent-gate.\n{}\n",
        marker(key)
    )
}

fn limits(tasks: Option<u32>, credits: Option<f64>) -> BudgetLimits {
    BudgetLimits {
        max_tasks_per_day: tasks,
        max_ai_credits_per_day: credits,
    }
}

const CREDITS_1_5: &str =
    "default: {queued: 1ms, work: 1ms, usage: {type: ai_credits, amount: 1500000000}}\n";

#[tokio::test]
async fn under_the_limit_is_within_budget() {
    let f = start(Some(CREDITS_1_5)).await;
    f.task(&gate_prompt("Add a health check", "k1")).await;
    f.task(&gate_prompt("Fix the login button", "k2")).await;
    let status = check_budget(&f.client(), limits(Some(5), Some(10.0)), f.now(), 1)
        .await
        .unwrap();
    assert_eq!(status.tasks_today, 2);
    assert_eq!(status.credits_today_nano, 3_000_000_000);
    assert!((status.credits_today - 3.0).abs() < 1e-9);
    assert_eq!(status.requested, 1);
    assert_eq!(status.repository, "octo-org/payments");
    assert_eq!(status.would_exceed, None);
    assert!(status.message().starts_with("within budget:"));
}

#[tokio::test]
async fn tasks_limit_reached_is_exceeded_and_exactly_at_the_limit_is_allowed() {
    let f = start(None).await;
    f.task(&gate_prompt("one", "k1")).await;
    f.task(&gate_prompt("two", "k2")).await;
    let client = f.client();
    let now = f.now();
    // 2 used + 1 requested = 3: exactly at a limit of 3 is allowed.
    let at = check_budget(&client, limits(Some(3), None), now, 1)
        .await
        .unwrap();
    assert_eq!(at.would_exceed, None);
    let over = check_budget(&client, limits(Some(2), None), now, 1)
        .await
        .unwrap();
    assert_eq!(
        over.would_exceed,
        Some(Exceeded::TasksPerDay {
            used: 2,
            limit: 2,
            requested: 1
        })
    );
    let msg = over.message();
    assert!(
        msg.contains(
            "already started 2 agent tasks (repair rounds included) in octo-org/payments today"
        ),
        "{msg}"
    );
    assert!(msg.contains("agent.max-tasks-per-day is 2"), "{msg}");
    // A run that needs two (first task + one repair round) does not fit under 3 either.
    let two = check_budget(&client, limits(Some(3), None), now, 2)
        .await
        .unwrap();
    assert!(matches!(
        two.would_exceed,
        Some(Exceeded::TasksPerDay { requested: 2, .. })
    ));
}

#[tokio::test]
async fn credits_limit_reached_is_exceeded() {
    let f = start(Some(CREDITS_1_5)).await;
    f.task(&gate_prompt("one", "k1")).await;
    f.task(&gate_prompt("two", "k2")).await;
    let client = f.client();
    let now = f.now();
    let below = check_budget(&client, limits(None, Some(3.5)), now, 1)
        .await
        .unwrap();
    assert_eq!(below.would_exceed, None);
    // 3.0 used reaches a limit of 3: the budget is spent.
    let reached = check_budget(&client, limits(Some(100), Some(3.0)), now, 1)
        .await
        .unwrap();
    assert_eq!(
        reached.would_exceed,
        Some(Exceeded::AiCreditsPerDay {
            used: 3.0,
            limit: 3.0
        })
    );
    assert!(
        reached.message().contains("used 3 AI credits today"),
        "{}",
        reached.message()
    );
}

#[tokio::test]
async fn tasks_without_the_marker_are_not_counted() {
    let f = start(None).await;
    f.task(&gate_prompt("ours", "k1")).await;
    f.task("Somebody's own task from the web UI, no marker")
        .await;
    f.task("Mentions agent-gate but carries no marker").await;
    let status = check_budget(&f.client(), limits(Some(10), Some(100.0)), f.now(), 1)
        .await
        .unwrap();
    assert_eq!(status.tasks_read, 3, "every task updated today was read");
    assert_eq!(status.tasks_today, 1);
    assert_eq!(status.credits_today_nano, 1_000_000_000);
}

#[tokio::test]
async fn archived_tasks_and_repair_sessions_count() {
    let f = start(None).await;
    let first = f.task(&gate_prompt("archived later", "k1")).await;
    let second = f.task(&gate_prompt("repaired", "k2")).await;
    assert!(f.world.sim.archive_task(&first.id));
    // A repair round: a follow-up session on the second task's branch.
    let branch = second
        .sessions
        .as_ref()
        .and_then(|s| s.last())
        .and_then(|s| s.head_ref.clone())
        .expect("the simulated agent records its branch");
    let mut req = create_task_request(gate_prompt("fix it", "k2-r1"), Some("main".into()));
    req.head_ref = Some(branch);
    let followed = f.client().create_task(&req).await.unwrap();
    assert_eq!(
        followed.id, second.id,
        "the follow-up is a session of the same task"
    );
    f.wait(&second.id).await;

    let status = check_budget(&f.client(), limits(Some(10), None), f.now(), 1)
        .await
        .unwrap();
    assert_eq!(
        status.tasks_today, 3,
        "archived task + task + repair session"
    );
    assert_eq!(status.credits_today_nano, 3_000_000_000);
    let archived_lists = f
        .world
        .sim
        .request_log()
        .iter()
        .filter(|r| r.method == "GET" && r.query.contains("is_archived=true"))
        .count();
    assert_eq!(archived_lists, 1);
}

#[tokio::test]
async fn the_count_restarts_at_midnight_utc() {
    let f = start(None).await;
    f.task(&gate_prompt("one", "k1")).await;
    f.task(&gate_prompt("two", "k2")).await;
    let client = f.client();
    let today = f.now();
    let limit = limits(Some(2), None);
    let refused = check_budget(&client, limit, today, 1).await.unwrap();
    assert!(refused.would_exceed.is_some());

    // The same tasks seen from tomorrow: yesterday's tasks do not count.
    let tomorrow = today.checked_add(SignedDuration::from_hours(24)).unwrap();
    let status = check_budget(&client, limit, tomorrow, 1).await.unwrap();
    assert_eq!(status.tasks_today, 0);
    assert_eq!(status.would_exceed, None);
    let midnight = utc_midnight(tomorrow).unwrap();
    assert_eq!(status.since, midnight.to_string());
    let since_sent = f
        .world
        .sim
        .request_log()
        .iter()
        .rev()
        .find(|r| r.method == "GET" && r.query.contains("since="))
        .map(|r| r.query.clone())
        .unwrap();
    assert!(
        since_sent.contains(&midnight.to_string().replace(':', "%3A")),
        "{since_sent}"
    );
}

#[tokio::test]
async fn api_errors_are_budget_errors() {
    let f = start(Some("api: {revoked-tokens: [ghp_revoked]}\n")).await;
    let err = check_budget(
        &f.client_with("ghp_revoked"),
        limits(Some(1), None),
        Timestamp::now(),
        1,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, BudgetError::Api(ApiError::Unauthorized { .. })),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("cannot count today's agent tasks for the daily budget")
    );
}

// ---- the pure counting -------------------------------------------------------------------

fn session(id: &str, created_at: &str, prompt: Option<&str>, nano: Option<f64>) -> Session {
    Session {
        id: id.into(),
        state: TaskState::Completed,
        created_at: created_at.into(),
        name: None,
        task_id: None,
        updated_at: None,
        completed_at: None,
        prompt: prompt.map(str::to_string),
        head_ref: None,
        base_ref: None,
        model: None,
        usage: nano.map(|amount| Usage {
            kind: "ai_credits".into(),
            amount,
        }),
        error: None,
    }
}

fn task(id: &str, created_at: &str, sessions: Vec<Session>) -> Task {
    crate::support::completed_task(id, created_at, sessions)
}

#[test]
fn count_today_counts_only_marked_sessions_created_since_midnight() {
    let midnight: Timestamp = "2026-05-02T00:00:00Z".parse().unwrap();
    let ours = gate_prompt("x", "k");
    let repair = gate_prompt("fix", "k-r1");
    let tasks = vec![
        // Created yesterday: not counted.
        task(
            "yesterday",
            "2026-05-01T23:59:59Z",
            vec![session(
                "s1",
                "2026-05-01T23:59:59Z",
                Some(&ours),
                Some(2e9),
            )],
        ),
        // Created today, exactly at midnight: counted.
        task(
            "today",
            "2026-05-02T00:00:00Z",
            vec![session(
                "s2",
                "2026-05-02T00:00:00Z",
                Some(&ours),
                Some(1.5e9),
            )],
        ),
        // Started yesterday, repaired today: only the repair session counts.
        task(
            "repaired",
            "2026-05-01T22:00:00Z",
            vec![
                session("s3", "2026-05-01T22:00:00Z", Some(&ours), Some(4e9)),
                session("s4", "2026-05-02T08:00:00Z", Some(&repair), Some(0.25e9)),
            ],
        ),
        // No marker: not ours.
        task(
            "theirs",
            "2026-05-02T09:00:00Z",
            vec![session(
                "s5",
                "2026-05-02T09:00:00Z",
                Some("plain prompt"),
                Some(9e9),
            )],
        ),
        // No prompt at all: not ours.
        task(
            "no-prompt",
            "2026-05-02T09:00:00Z",
            vec![session("s6", "2026-05-02T09:00:00Z", None, Some(9e9))],
        ),
        // An unreadable time counts (a budget errs towards spending less).
        task(
            "odd-time",
            "yesterday-ish",
            vec![session("s7", "yesterday-ish", Some(&ours), None)],
        ),
        // The same task twice (listed as archived and not): counted once.
        task(
            "today",
            "2026-05-02T00:00:00Z",
            vec![session(
                "s2",
                "2026-05-02T00:00:00Z",
                Some(&ours),
                Some(1.5e9),
            )],
        ),
    ];
    let count = count_today(&tasks, midnight);
    assert_eq!(
        count,
        DayCount {
            tasks: 3,
            ai_credits_nano: 1_750_000_000
        }
    );
    assert!((count.ai_credits() - 1.75).abs() < 1e-12);
}

#[test]
fn midnight_is_the_start_of_the_utc_day() {
    let t: Timestamp = "2026-05-02T23:59:59.9Z".parse().unwrap();
    assert_eq!(utc_midnight(t).unwrap().to_string(), "2026-05-02T00:00:00Z");
    let t: Timestamp = "2026-05-03T00:00:00Z".parse().unwrap();
    assert_eq!(utc_midnight(t).unwrap().to_string(), "2026-05-03T00:00:00Z");
    let t: Timestamp = "1969-12-31T12:00:00Z".parse().unwrap();
    assert_eq!(utc_midnight(t).unwrap().to_string(), "1969-12-31T00:00:00Z");
}

#[test]
fn limits_arithmetic() {
    let c = |tasks, nano| DayCount {
        tasks,
        ai_credits_nano: nano,
    };
    // No limits: never exceeded.
    assert_eq!(
        evaluate(c(1000, u64::MAX), BudgetLimits::default(), 5),
        None
    );
    assert!(BudgetLimits::default().is_unlimited());
    // A limit of 0 tasks refuses every run.
    assert_eq!(
        evaluate(c(0, 0), limits(Some(0), None), 1),
        Some(Exceeded::TasksPerDay {
            used: 0,
            limit: 0,
            requested: 1
        })
    );
    // Tasks are decided before credits.
    assert!(matches!(
        evaluate(c(5, 10_000_000_000), limits(Some(5), Some(1.0)), 1),
        Some(Exceeded::TasksPerDay { .. })
    ));
    // Credits: just below the limit runs, at the limit does not.
    assert_eq!(
        evaluate(c(0, 499_999_999_999), limits(None, Some(500.0)), 1),
        None
    );
    assert!(evaluate(c(0, 500_000_000_000), limits(None, Some(500.0)), 1).is_some());
    // Overflowing sums do not wrap.
    assert!(evaluate(c(u32::MAX, 0), limits(Some(u32::MAX), None), u32::MAX).is_some());
}

fn status(tasks: u32, credits_nano: u64, limits: BudgetLimits, requested: u32) -> BudgetStatus {
    let count = DayCount {
        tasks,
        ai_credits_nano: credits_nano,
    };
    BudgetStatus {
        repository: "octo-org/payments".into(),
        since: "2026-05-02T00:00:00Z".into(),
        resets_at: "2026-05-03T00:00:00Z".into(),
        tasks_today: tasks,
        credits_today: count.ai_credits(),
        credits_today_nano: credits_nano,
        tasks_read: tasks,
        requested,
        limits,
        would_exceed: evaluate(count, limits, requested),
    }
}

#[test]
fn over_budget_tasks_message() {
    let s = status(20, 12_500_000_000, limits(Some(20), Some(500.0)), 1);
    insta::assert_snapshot!(s.message());
}

#[test]
fn over_budget_credits_message() {
    let s = status(7, 500_123_456_789, limits(Some(20), Some(500.0)), 1);
    insta::assert_snapshot!(s.message());
}

#[test]
fn within_budget_message() {
    let s = status(3, 4_500_000_000, limits(Some(20), Some(500.0)), 1);
    insta::assert_snapshot!(s.message());
    let s = status(1, 0, limits(None, Some(2.5)), 2);
    insta::assert_snapshot!("within_budget_message_credits_only", s.message());
}

#[test]
fn status_serializes_with_the_figures() {
    let s = status(20, 0, limits(Some(20), None), 1);
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(
        v["would_exceed"],
        serde_json::json!({"which": "tasks-per-day", "used": 20, "limit": 20, "requested": 1})
    );
    assert_eq!(v["limits"]["max_tasks_per_day"], 20);
}
