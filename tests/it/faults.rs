//! The fault-injection matrix (issue 7, DESIGN §5): `agent-gate run`, through the library,
//! against the in-process simulator under hundreds of seeded, randomized fault schedules —
//! 500/502/503 on any endpoint the flow uses (before and after the server acted), 429 and
//! secondary-limit 403 with `Retry-After`, an exhausted primary limit with its reset,
//! dropped connections before and after the server acted, answers slower than the client's
//! timeout, truncated, malformed and empty bodies, unknown working states,
//! `waiting_for_user`, and tasks that never end. For every schedule it asserts:
//!
//! - no panic (each run is a spawned task; a panic is a failed schedule);
//! - at most one task per idempotency key (the simulator's tasks);
//! - no request arrived before an announced `Retry-After` or rate-limit reset (the
//!   simulator's request log: arrival times against answer times and headers);
//! - the verdict is one the schedule allows, computed from what the agent did and which
//!   faults cannot be cured by retries — never `passed` on an unrecovered error;
//! - the report serializes to JSON that parses back with the same verdict and exit code;
//! - the workspace is left as it was (no private refs, clean status).
//!
//! Schedules are generated from a seed (`BASE_SEED + i`); a failing schedule prints its seed.
//! Replay one with `AGENT_GATE_FAULT_SEED=<seed> cargo test --test it faults::`; run more
//! with `AGENT_GATE_FAULT_SCHEDULES=<n>`; `AGENT_GATE_FAULT_JOBS=<n>` sets how many run at
//! once (default 10; they mostly wait on timers); `AGENT_GATE_FAULT_VERBOSE=1` prints every
//! schedule's requests and progress.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use agent_gate::adapters::shutdown::Shutdown;
use agent_gate::core::report::Verdict;
use agent_gate::flow::{RunOptions, run};
use agent_gate::sim::{
    BodyFault, Endpoint, Fault, FaultAction, FileOp, FinalState, LoggedRequest, PullArtifact,
    RateLimit, Scenario, TaskScript, When,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::support::{Cli, CliOutput, Gate, TestRepo, World, git_in as git};

/// Schedule `i` uses the seed `BASE_SEED + i`.
const BASE_SEED: u64 = 0x00A6_E700;
/// Schedules run by default (the issue asks for at least 200).
const SCHEDULES: u64 = 200;
const REPOSITORY: &str = "octo/demo";
const TOKEN: &str = "ghp_fault_matrix_user";
/// The client's request timeout the runs get (`RunOptions::request_timeout`; 30 s by
/// default); a "slow" fault answers later.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(4);
/// Clock slack between the simulator's wall stamps and the client's monotonic waits.
const SLACK_MS: i64 = 15;

/// What the simulated agent does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// `completed` with an in-scope change.
    InScope,
    /// `completed` with a change outside `allow`.
    OutOfScope,
    /// `completed` with no change at all.
    NoChange,
    Failed,
    AgentTimedOut,
    Cancelled,
    /// `idle` (policy default: accept and gate the branch) with an in-scope change.
    Idle,
    /// `waiting_for_user`, policy `on-waiting-for-user: fail`.
    WaitingFail,
    /// `waiting_for_user`, policy `on-waiting-for-user: wait`: waits to the deadline.
    WaitingWait,
    /// Stays working forever.
    Never,
}

impl Outcome {
    const WEIGHTED: [(Outcome, u32); 10] = [
        (Outcome::InScope, 30),
        (Outcome::OutOfScope, 12),
        (Outcome::NoChange, 5),
        (Outcome::Failed, 6),
        (Outcome::AgentTimedOut, 4),
        (Outcome::Cancelled, 4),
        (Outcome::Idle, 8),
        (Outcome::WaitingFail, 6),
        (Outcome::WaitingWait, 5),
        (Outcome::Never, 6),
    ];

    fn final_state(self) -> FinalState {
        match self {
            Outcome::InScope | Outcome::OutOfScope | Outcome::NoChange => FinalState::Completed,
            Outcome::Failed => FinalState::Failed,
            Outcome::AgentTimedOut => FinalState::TimedOut,
            Outcome::Cancelled => FinalState::Cancelled,
            Outcome::Idle => FinalState::Idle,
            Outcome::WaitingFail | Outcome::WaitingWait => FinalState::WaitingForUser,
            Outcome::Never => FinalState::Never,
        }
    }

    fn files(self) -> Vec<FileOp> {
        let write = |path: &str, content: &str| FileOp::Write {
            path: path.to_string(),
            content: content.as_bytes().to_vec(),
        };
        match self {
            Outcome::NoChange => Vec::new(),
            Outcome::OutOfScope => vec![
                write("src/feature.rs", "pub fn two() -> u32 { 2 }\n"),
                write("docs/notes.md", "the agent wandered off\n"),
            ],
            _ => vec![
                write("src/feature.rs", "pub fn two() -> u32 { 2 }\n"),
                write("tests/feature.rs", "#[test]\nfn two() {}\n"),
            ],
        }
    }

    /// The verdict when every fault is cured.
    fn expected(self) -> Verdict {
        match self {
            Outcome::InScope | Outcome::Idle => Verdict::Passed,
            Outcome::OutOfScope => Verdict::ScopeViolation,
            Outcome::NoChange
            | Outcome::Failed
            | Outcome::AgentTimedOut
            | Outcome::Cancelled
            | Outcome::WaitingFail => Verdict::AgentFailed,
            Outcome::WaitingWait | Outcome::Never => Verdict::TimedOut,
        }
    }

    /// The run ends at the gate's deadline.
    fn deadline_bound(self) -> bool {
        matches!(self, Outcome::WaitingWait | Outcome::Never)
    }
}

/// One randomized schedule.
#[derive(Debug, Clone)]
struct Schedule {
    seed: u64,
    outcome: Outcome,
    /// The agent works in a state this version does not know (`thinking`) long enough
    /// for the gate to see it.
    unknown_state: bool,
    pull_artifact: PullArtifact,
    faults: Vec<Fault>,
    rate_limit: Option<RateLimit>,
    deadline: Duration,
}

fn pick<T: Copy>(rng: &mut StdRng, weighted: &[(T, u32)]) -> T {
    let total: u32 = weighted.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for (v, w) in weighted {
        if x < *w {
            return *v;
        }
        x -= w;
    }
    weighted[weighted.len() - 1].0
}

fn when(rng: &mut StdRng, p_after: f64) -> When {
    if rng.random_bool(p_after) {
        When::After
    } else {
        When::Before
    }
}

impl Schedule {
    fn generate(seed: u64) -> Schedule {
        let mut rng = StdRng::seed_from_u64(seed);
        let outcome = pick(&mut rng, &Outcome::WEIGHTED);
        let unknown_state = rng.random_bool(0.2);
        let pull_artifact = pick(
            &mut rng,
            &[
                (PullArtifact::Pull, 3),
                (PullArtifact::GithubResource, 1),
                (PullArtifact::None, 1),
            ],
        );
        let endpoints = [
            (Endpoint::CreateTask, 25),
            (Endpoint::GetRepoTask, 30),
            (Endpoint::ListRepoTasks, 20),
            (Endpoint::ListPulls, 10),
            (Endpoint::CreateStatus, 5),
            (Endpoint::AddLabels, 5),
            (Endpoint::CreateComment, 5),
        ];
        let n = pick(&mut rng, &[(0u32, 1), (1, 3), (2, 3), (3, 2), (4, 1)]);
        let mut faults = Vec::new();
        for _ in 0..n {
            let endpoint = pick(&mut rng, &endpoints);
            let nth = rng.random_range(
                1..=if endpoint == Endpoint::GetRepoTask {
                    6
                } else {
                    3
                },
            );
            let count = pick(&mut rng, &[(1u32, 6), (2, 3), (3, 1)]);
            let kind = rng.random_range(0..100u32);
            let (when, delay, action) = match kind {
                0..30 => (
                    when(&mut rng, 0.3),
                    None,
                    FaultAction::Status {
                        status: pick(&mut rng, &[(500, 1), (502, 1), (503, 1)]),
                        message: None,
                    },
                ),
                30..45 => (
                    When::Before,
                    None,
                    FaultAction::SecondaryRateLimit {
                        status: pick(&mut rng, &[(429, 1), (403, 1)]),
                        retry_after: Some(Duration::from_secs(rng.random_range(1..=2))),
                    },
                ),
                45..65 => (when(&mut rng, 0.5), None, FaultAction::Drop),
                65..85 => (
                    When::After,
                    None,
                    FaultAction::Body(pick(
                        &mut rng,
                        &[
                            (BodyFault::Truncated, 1),
                            (BodyFault::Malformed, 1),
                            (BodyFault::Empty, 1),
                        ],
                    )),
                ),
                _ => (
                    when(&mut rng, 0.5),
                    Some(Duration::from_millis(rng.random_range(50..=300))),
                    FaultAction::DelayOnly,
                ),
            };
            faults.push(Fault {
                endpoint,
                nth,
                count,
                when,
                delay,
                action,
                line: 0,
            });
        }
        // An answer slower than the client's timeout costs that timeout in real time: rare, and
        // only where the run is not bounded by its deadline anyway.
        let slow = !outcome.deadline_bound() && rng.random_bool(0.05);
        if slow {
            faults.push(Fault {
                endpoint: pick(
                    &mut rng,
                    &[
                        (Endpoint::CreateTask, 2),
                        (Endpoint::GetRepoTask, 2),
                        (Endpoint::ListRepoTasks, 1),
                        (Endpoint::ListPulls, 1),
                    ],
                ),
                nth: rng.random_range(1..=2),
                count: 1,
                when: when(&mut rng, 0.5),
                delay: Some(CLIENT_TIMEOUT + Duration::from_secs(1)),
                action: FaultAction::DelayOnly,
                line: 0,
            });
        }
        let rate_limit = rng.random_bool(0.2).then(|| RateLimit {
            limit: rng.random_range(3..=8),
            window: Duration::from_secs(rng.random_range(1..=2)),
            status: pick(&mut rng, &[(403, 1), (429, 1)]),
        });
        let deadline = if outcome.deadline_bound() {
            Duration::from_secs(6)
        } else if slow {
            Duration::from_mins(2)
        } else {
            Duration::from_mins(1)
        };
        Schedule {
            seed,
            outcome,
            unknown_state,
            pull_artifact,
            faults,
            rate_limit,
            deadline,
        }
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "seed {} — agent {:?}{}, pull artifact {:?}, deadline {}s",
            self.seed,
            self.outcome,
            if self.unknown_state {
                " (works as `thinking`)"
            } else {
                ""
            },
            self.pull_artifact,
            self.deadline.as_secs()
        );
        if let Some(r) = &self.rate_limit {
            let _ = write!(
                s,
                ", primary limit {}/{}s ({})",
                r.limit,
                r.window.as_secs(),
                r.status
            );
        }
        for f in &self.faults {
            let _ = write!(
                s,
                "\n    {} #{}{} {:?}{} {:?}",
                f.endpoint.name(),
                f.nth,
                if f.count > 1 {
                    format!("..{}", f.nth + f.count - 1)
                } else {
                    String::new()
                },
                f.when,
                f.delay
                    .map(|d| format!(" +{}ms", d.as_millis()))
                    .unwrap_or_default(),
                f.action
            );
        }
        s
    }

    /// Faulted request numbers of an endpoint.
    fn faulted(&self, endpoint: Endpoint, which: impl Fn(&Fault) -> bool) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .faults
            .iter()
            .filter(|f| f.endpoint == endpoint && which(f))
            .flat_map(|f| f.nth..f.nth + f.count)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Whether a fault can defeat the client's cures and end the run with `api-error`.
    fn may_end_in_api_error(&self) -> bool {
        // A 200 whose body is broken is not retried: the GET fails with a decode error.
        let broken_get = self.faults.iter().any(|f| {
            matches!(f.action, FaultAction::Body(_))
                && matches!(f.endpoint, Endpoint::ListRepoTasks | Endpoint::GetRepoTask)
        });
        // A GET gives up after 8 attempts.
        let long_run = [Endpoint::ListRepoTasks, Endpoint::GetRepoTask]
            .into_iter()
            .any(|e| {
                let v = self.faulted(e, |f| {
                    !matches!(f.action, FaultAction::DelayOnly) || f.delay > Some(CLIENT_TIMEOUT)
                });
                v.windows(8).any(|w| w[7] - w[0] == 7)
            });
        // The create POSTs at most 3 times; a POST the server never acted on is re-sent.
        let refused = self
            .faulted(Endpoint::CreateTask, |f| {
                f.when == When::Before
                    && match f.action {
                        FaultAction::DelayOnly => f.delay > Some(CLIENT_TIMEOUT),
                        FaultAction::Body(_) => false,
                        _ => true,
                    }
            })
            .into_iter()
            .filter(|n| *n <= 3)
            .count()
            + usize::from(self.rate_limit.is_some());
        broken_get || long_run || refused >= 3
    }

    fn allowed(&self) -> Vec<Verdict> {
        let mut v = vec![self.outcome.expected()];
        if self.may_end_in_api_error() {
            v.push(Verdict::ApiError);
        }
        v
    }

    fn policy(&self) -> String {
        format!(
            "version: 1\nrepositories: [{REPOSITORY}]\nagent:\n  timeout: 5m\n  poll: {{ initial: 1s, max: 1s }}\n  on-waiting-for-user: {}\nscope:\n  allow: [\"src/**\", \"tests/**\"]\n",
            if self.outcome == Outcome::WaitingWait {
                "wait"
            } else {
                "fail"
            }
        )
    }

    fn scenario(&self) -> Scenario {
        let script = TaskScript {
            // The simulator runs 1000× faster: a 1500 s working phase is 1.5 s.
            work: if self.unknown_state {
                Duration::from_mins(25)
            } else {
                Duration::from_secs(5)
            },
            working_state: if self.unknown_state {
                "thinking".to_string()
            } else {
                "in_progress".to_string()
            },
            files: Some(self.outcome.files()),
            final_state: self.outcome.final_state(),
            pull_artifact: self.pull_artifact,
            ..TaskScript::default()
        };
        Scenario {
            default_task: script,
            faults: self.faults.clone(),
            rate_limit: self.rate_limit.unwrap_or_default(),
            ..Scenario::default()
        }
    }
}

/// What one schedule produced, for the summary.
struct Ran {
    /// A verdict outside the allowed set that a known, reported bug explains.
    known_bug: Option<&'static str>,
    verdict: Verdict,
    requests: usize,
    failed_requests: usize,
}

/// The world of a schedule: a workspace with a Rust file and `policy` on `main`, its bare
/// origin served by the simulator playing `scenario`.
async fn world(policy: &str, scenario: Scenario) -> World {
    Gate::new()
        .file("src/lib.rs", "pub fn one() -> u32 { 1 }\n")
        .policy(policy)
        .scenario(scenario)
        .repository(REPOSITORY)
        .token(TOKEN)
        .start()
        .await
}

fn header<'a>(r: &'a LoggedRequest, name: &str) -> Option<&'a str> {
    r.response_headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// No request arrived before a wait announced by an earlier answer (`Retry-After`, or
/// `x-ratelimit-reset` with `x-ratelimit-remaining: 0`). Requests that arrived before that
/// answer was sent were already in flight and are not bound by it.
fn check_waits(log: &[LoggedRequest]) -> Result<(), String> {
    let slack = jiff::SignedDuration::from_millis(SLACK_MS);
    for (i, r) in log.iter().enumerate() {
        let Some(answered) = r.answered_at else {
            continue;
        };
        let mut until: Option<(jiff::Timestamp, String)> = None;
        if let Some(secs) = header(r, "retry-after").and_then(|v| v.parse::<i64>().ok()) {
            let t = answered
                .checked_add(jiff::SignedDuration::from_secs(secs))
                .expect("time in range");
            until = Some((t, format!("Retry-After: {secs}")));
        }
        if header(r, "x-ratelimit-remaining") == Some("0")
            && let Some(reset) = header(r, "x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok())
            && let Ok(t) = jiff::Timestamp::from_second(reset)
            && until.as_ref().is_none_or(|(u, _)| t > *u)
        {
            until = Some((t, format!("x-ratelimit-remaining: 0, reset {reset}")));
        }
        let Some((until, why)) = until else { continue };
        for later in &log[i + 1..] {
            if later.at > answered && later.at + slack < until {
                return Err(format!(
                    "{} {} arrived at {} although the answer to {} {} (status {:?}, sent {answered}) said {why}: not before {until}",
                    later.method, later.path, later.at, r.method, r.path, r.status
                ));
            }
        }
    }
    Ok(())
}

fn run_options(world: &World, instruction: &str, deadline: Duration) -> RunOptions {
    RunOptions {
        timeout: Some(deadline),
        jobs: Some(1),
        heartbeat: Duration::from_mins(1),
        request_timeout: CLIENT_TIMEOUT,
        ..world.opts(instruction)
    }
}

async fn run_schedule(s: Schedule) -> Result<Ran, String> {
    let world = world(&s.policy(), s.scenario()).await;
    let opts = run_options(
        &world,
        &format!("Add a second function (fault schedule {})", s.seed),
        s.deadline,
    );
    let joined = tokio::spawn(async move {
        let mut progress = Vec::new();
        let report = run(opts, Shutdown::never(), &mut progress).await;
        (report, String::from_utf8_lossy(&progress).into_owned())
    })
    .await;
    let (report, progress) = match joined {
        Ok(r) => r,
        Err(e) if e.is_panic() => return Err(format!("run panicked: {e}")),
        Err(e) => return Err(format!("run did not finish: {e}")),
    };
    let log = world.sim.request_log();
    let tasks = world.sim.tasks();
    let context = || {
        let mut c = format!(
            "verdict {} — errors {:?} — notes {:?}\n  progress:\n{progress}  requests:",
            report.verdict, report.errors, report.notes
        );
        for r in &log {
            let _ = write!(
                c,
                "\n    {} {} {}{} -> {:?}",
                r.at.strftime("%H:%M:%S%.3f"),
                r.method,
                r.path,
                if r.query.is_empty() {
                    String::new()
                } else {
                    format!("?{}", r.query)
                },
                r.status
            );
        }
        c
    };
    let fail = |what: String| Err(format!("{what}\n  {}", context()));
    if std::env::var_os("AGENT_GATE_FAULT_VERBOSE").is_some() {
        eprintln!("{}\n  {}", s.describe(), context());
    }

    // At most one task per idempotency key.
    let key = report
        .task
        .as_ref()
        .map(|t| t.key.clone())
        .unwrap_or_default();
    let with_key = tasks
        .iter()
        .filter(|t| {
            t.sessions.iter().flatten().any(|s| {
                s.prompt
                    .as_deref()
                    .is_some_and(|p| key.is_empty() || p.contains(&key))
            })
        })
        .count();
    if with_key > 1 || tasks.len() > 1 {
        return fail(format!(
            "{} tasks were created for one idempotency key ({key})",
            tasks.len()
        ));
    }
    // The task the report names is the one that exists.
    if let Some(t) = report.task.as_ref().filter(|t| !t.id.is_empty())
        && !tasks.iter().any(|x| x.id == t.id)
    {
        return fail(format!(
            "the report names task {} which does not exist",
            t.id
        ));
    }
    // Announced waits were honoured.
    if let Err(e) = check_waits(&log) {
        return fail(e);
    }
    // The verdict is one the schedule allows.
    let allowed = s.allowed();
    let known = known_bug(&s, &report);
    if !allowed.contains(&report.verdict) && known.is_none() {
        return fail(format!(
            "verdict {} is not one of {:?}",
            report.verdict,
            allowed.iter().map(|v| v.as_str()).collect::<Vec<_>>()
        ));
    }
    if report.verdict == Verdict::Passed {
        if !report.errors.is_empty() {
            return fail("passed with errors".to_string());
        }
        let done = tasks.first().map(|t| t.state.as_str().to_string());
        if !matches!(done.as_deref(), Some("completed" | "idle")) {
            return fail(format!("passed while the task is {done:?}"));
        }
    }
    // The report round-trips through JSON.
    let json = report.to_json();
    let parsed: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| format!("report JSON does not parse: {e}"))?;
    if parsed["verdict"] != report.verdict.as_str() || parsed["exit_code"] != report.exit_code {
        return fail(format!("the JSON report disagrees: {json}"));
    }
    // The workspace is left as it was.
    let refs = world.work.git(["for-each-ref", "refs/agent-gate"]);
    let status = world.work.git(["status", "--porcelain"]);
    if !refs.is_empty() || !status.is_empty() {
        return fail(format!(
            "the workspace was changed: refs {refs:?}, status {status:?}"
        ));
    }
    let failed_requests = log
        .iter()
        .filter(|r| r.status.is_none_or(|c| c >= 400))
        .count();
    let requests = log.len();
    world.sim.shutdown().await;
    drop(world.bare);
    Ok(Ran {
        known_bug: known,
        verdict: report.verdict,
        requests,
        failed_requests,
    })
}

/// Bugs the matrix found are fixed, not tolerated: nothing is excused any more (kept as
/// the one place to name one while a fix is in flight).
fn known_bug(_s: &Schedule, _report: &agent_gate::core::report::Report) -> Option<&'static str> {
    None
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn fault_matrix() {
    let seeds: Vec<u64> = if let Some(seed) = env_u64("AGENT_GATE_FAULT_SEED") {
        vec![seed]
    } else {
        let n = env_u64("AGENT_GATE_FAULT_SCHEDULES").unwrap_or(SCHEDULES);
        (0..n).map(|i| BASE_SEED + i).collect()
    };
    let jobs = env_u64("AGENT_GATE_FAULT_JOBS").unwrap_or(10).max(1);
    let limit = Arc::new(tokio::sync::Semaphore::new(
        usize::try_from(jobs).unwrap_or(1),
    ));
    let started = std::time::Instant::now();
    let mut handles = Vec::new();
    for seed in seeds {
        let limit = Arc::clone(&limit);
        let schedule = Schedule::generate(seed);
        handles.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore open");
            let description = schedule.describe();
            let faults = schedule.faults.len() + usize::from(schedule.rate_limit.is_some());
            (description, faults, seed, run_schedule(schedule).await)
        }));
    }
    let mut failures = Vec::new();
    let mut verdicts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let (mut schedules, mut faults, mut requests, mut failed) = (0, 0, 0, 0);
    let mut known: BTreeMap<&'static str, usize> = BTreeMap::new();
    for h in handles {
        let (description, n_faults, seed, result) = match h.await {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("a schedule task died: {e}"));
                continue;
            }
        };
        schedules += 1;
        faults += n_faults;
        match result {
            Ok(ran) => {
                *verdicts.entry(ran.verdict.as_str()).or_default() += 1;
                requests += ran.requests;
                if let Some(k) = ran.known_bug {
                    *known.entry(k).or_default() += 1;
                }
                failed += ran.failed_requests;
            }
            Err(e) => failures.push(format!(
                "FAILED {description}\n  {e}\n  replay: AGENT_GATE_FAULT_SEED={seed} cargo test --test it faults::fault_matrix -- --nocapture"
            )),
        }
    }
    eprintln!(
        "fault matrix: {schedules} schedules, {faults} faults injected, {requests} requests ({failed} answered with an error or not at all), verdicts {verdicts:?}, known bugs tolerated {known:?}, {} failed, {:.1}s",
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The generator is deterministic: the same seed gives the same schedule, so a printed
/// seed replays the failure.
#[test]
fn schedules_are_deterministic_and_cover_every_fault_kind() {
    let a: Vec<String> = (0..SCHEDULES)
        .map(|i| Schedule::generate(BASE_SEED + i).describe())
        .collect();
    let b: Vec<String> = (0..SCHEDULES)
        .map(|i| Schedule::generate(BASE_SEED + i).describe())
        .collect();
    assert_eq!(a, b);
    let all: Vec<Schedule> = (0..SCHEDULES)
        .map(|i| Schedule::generate(BASE_SEED + i))
        .collect();
    let has = |p: &dyn Fn(&Fault) -> bool| all.iter().any(|s| s.faults.iter().any(p));
    for status in [500, 502, 503] {
        assert!(has(
            &|f| matches!(f.action, FaultAction::Status { status: s, .. } if s == status)
        ));
    }
    for status in [429, 403] {
        assert!(has(
            &|f| matches!(f.action, FaultAction::SecondaryRateLimit { status: s, .. } if s == status)
        ));
    }
    for w in [When::Before, When::After] {
        assert!(has(&|f| f.action == FaultAction::Drop && f.when == w));
        assert!(has(&|f| f.endpoint == Endpoint::CreateTask
            && f.action == FaultAction::Drop
            && f.when == w));
    }
    for b in [BodyFault::Truncated, BodyFault::Malformed, BodyFault::Empty] {
        assert!(has(&|f| f.action == FaultAction::Body(b)));
    }
    assert!(has(
        &|f| f.delay > Some(CLIENT_TIMEOUT) && f.endpoint == Endpoint::CreateTask
    ));
    assert!(has(
        &|f| f.delay > Some(CLIENT_TIMEOUT) && f.endpoint == Endpoint::GetRepoTask
    ));
    for e in [
        Endpoint::CreateTask,
        Endpoint::GetRepoTask,
        Endpoint::ListRepoTasks,
        Endpoint::ListPulls,
        Endpoint::CreateStatus,
        Endpoint::AddLabels,
        Endpoint::CreateComment,
    ] {
        assert!(has(&|f| f.endpoint == e), "no fault on {}", e.name());
    }
    assert!(
        all.iter()
            .any(|s| s.rate_limit.is_some_and(|r| r.status == 403))
    );
    assert!(
        all.iter()
            .any(|s| s.rate_limit.is_some_and(|r| r.status == 429))
    );
    for (o, _) in Outcome::WEIGHTED {
        assert!(all.iter().any(|s| s.outcome == o), "no schedule with {o:?}");
    }
    assert!(all.iter().any(|s| s.unknown_state));
    assert!(
        all.iter()
            .any(|s| s.faults.is_empty() && s.rate_limit.is_none())
    );
}

fn logged(at_ms: i64, answered_ms: Option<i64>, headers: &[(&str, &str)]) -> LoggedRequest {
    let t0 = jiff::Timestamp::from_second(1_800_000_000).expect("valid time");
    let at = |ms: i64| {
        t0.checked_add(jiff::SignedDuration::from_millis(ms))
            .expect("valid time")
    };
    LoggedRequest {
        method: "GET".to_string(),
        path: "/agents/repos/octo/demo/tasks/1".to_string(),
        query: String::new(),
        status: Some(200),
        at: at(at_ms),
        endpoint: Some(Endpoint::GetRepoTask),
        request_id: "1".to_string(),
        body: String::new(),
        answered_at: answered_ms.map(at),
        response_headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
        user: None,
    }
}

/// The wait checker itself can fail: a request inside a `Retry-After` window or before an
/// announced reset is caught; one in flight when the answer was sent is not blamed.
#[test]
fn the_wait_checker_catches_early_requests() {
    let retry = [("retry-after", "2")];
    let honoured = [logged(0, Some(5), &retry), logged(2010, Some(2015), &[])];
    assert!(check_waits(&honoured).is_ok());
    let early = [logged(0, Some(5), &retry), logged(1500, Some(1505), &[])];
    let e = check_waits(&early).expect_err("a request 1.5 s into a 2 s Retry-After");
    assert!(e.contains("Retry-After: 2"), "{e}");
    let in_flight = [logged(0, Some(50), &retry), logged(10, Some(60), &[])];
    assert!(check_waits(&in_flight).is_ok());
    // 1_800_000_003 is 3 s after t0.
    let reset = [
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "1800000003"),
    ];
    let before_reset = [logged(0, Some(5), &reset), logged(2900, None, &[])];
    assert!(check_waits(&before_reset).is_err());
    let after_reset = [logged(0, Some(5), &reset), logged(3001, None, &[])];
    assert!(check_waits(&after_reset).is_ok());
    let not_exhausted = [
        logged(0, Some(5), &[("x-ratelimit-remaining", "1"), reset[1]]),
        logged(10, None, &[]),
    ];
    assert!(check_waits(&not_exhausted).is_ok());
    // A dropped answer announced nothing.
    let dropped = [logged(0, None, &retry), logged(10, None, &[])];
    assert!(check_waits(&dropped).is_ok());
}

/// A focused schedule: one outcome, the given faults, everything else quiet.
fn focused(seed: u64, outcome: Outcome, faults: Vec<Fault>, deadline: Duration) -> Schedule {
    Schedule {
        seed,
        outcome,
        unknown_state: false,
        pull_artifact: PullArtifact::Pull,
        faults,
        rate_limit: None,
        deadline,
    }
}

/// When the deadline passes while a poll is being retried (here: every poll after the
/// first answered 503), the gate timed out; the API did not fail it (`poll_task` used to
/// return the 503 as an `api-error`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_that_cuts_retries_short_is_timed_out() {
    let s = focused(
        1,
        Outcome::Never,
        vec![Fault {
            endpoint: Endpoint::GetRepoTask,
            nth: 2,
            count: 1000,
            when: When::Before,
            delay: None,
            action: FaultAction::Status {
                status: 503,
                message: None,
            },
            line: 0,
        }],
        Duration::from_secs(4),
    );
    let ran = run_schedule(s).await.expect("the invariants hold");
    assert_eq!(ran.verdict, Verdict::TimedOut);
}

/// A task that ended without pushing anything (no branch artifact, only the session's
/// announced `head_ref`) produced no change: `agent-failed`, not an `api-error` about a
/// missing remote ref.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_pushed_nothing_is_agent_failed() {
    let ran = run_schedule(focused(
        2,
        Outcome::NoChange,
        Vec::new(),
        Duration::from_secs(30),
    ))
    .await
    .expect("the invariants hold");
    assert_eq!(ran.verdict, Verdict::AgentFailed);
}

// ---------------------------------------------------------------------------------------
// Environment faults: what the runner's machine may do to the gate.

/// A repository with a policy on `main`, an `agent` branch with an in-scope change, and
/// `main` moved on after the branch point (so a depth-1 clone lacks the merge base).
fn diverged() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        ".github/agent-gate.yml",
        "version: 1\nscope:\n  allow: [\"src/**\"]\n",
    );
    repo.write("src/lib.rs", "pub fn one() -> u32 { 1 }\n");
    repo.commit("policy");
    repo.branch("agent");
    repo.write("src/two.rs", "pub fn two() -> u32 { 2 }\n");
    repo.commit("agent change");
    repo.checkout("main");
    repo.write("src/three.rs", "pub fn three() -> u32 { 3 }\n");
    repo.commit("main moves on");
    repo
}

fn agent_gate_cli(dir: &Path, args: &[&str], path_env: &std::ffi::OsStr) -> CliOutput {
    Cli::new()
        .current_dir(dir)
        .args(args)
        .env("PATH", path_env)
        .run()
}

#[test]
fn a_missing_git_is_a_clear_config_error() {
    let repo = diverged();
    let empty = tempfile::tempdir().expect("temp dir");
    let out = agent_gate_cli(
        repo.path(),
        &["check", "--base", "main", "--head", "agent"],
        empty.path().as_os_str(),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("is git installed and on PATH?"), "{text}");
}

#[test]
fn a_shallow_clone_without_the_merge_base_says_to_fetch_the_history() {
    let origin = diverged();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("file://{}", origin.path().display());
    git(
        dir.path(),
        &[
            "clone", "-q", "--depth", "1", "-b", "agent", &url, "shallow",
        ],
    );
    let shallow = dir.path().join("shallow");
    git(
        &shallow,
        &["fetch", "-q", "--depth", "1", "origin", "main:main"],
    );
    let out = agent_gate_cli(
        &shallow,
        &["check", "--base", "main", "--head", "agent"],
        &std::env::var_os("PATH").unwrap_or_default(),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("shallow"), "{text}");
    assert!(text.contains("fetch-depth: 0"), "{text}");
    // With the history, the same command gates the change.
    git(&shallow, &["fetch", "-q", "--unshallow", "origin"]);
    let out = agent_gate_cli(
        &shallow,
        &["check", "--base", "main", "--head", "agent"],
        &std::env::var_os("PATH").unwrap_or_default(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// actions/checkout's defaults: a depth-1 clone with a detached HEAD. `run` gates the
/// agent's branch there and leaves HEAD, the branches and the work tree as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_works_in_a_shallow_clone_with_a_detached_head() {
    let s = focused(3, Outcome::InScope, Vec::new(), Duration::from_mins(1));
    let origin = world(&s.policy(), s.scenario()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("file://{}", origin.bare.path().display());
    git(dir.path(), &["clone", "-q", "--depth", "1", &url, "work"]);
    let work = dir.path().join("work");
    git(&work, &["checkout", "-q", "--detach"]);
    let head = git(&work, &["rev-parse", "HEAD"]);
    let (report, _) = origin
        .run(RunOptions {
            repo: work.clone(),
            ..run_options(&origin, "Add a second function", Duration::from_mins(1))
        })
        .await;
    assert_eq!(report.verdict, Verdict::Passed, "{}", report.render_text());
    assert_eq!(report.files.len(), 2);
    assert_eq!(git(&work, &["rev-parse", "HEAD"]), head);
    assert_eq!(
        git(&work, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "HEAD",
        "still detached"
    );
    assert_eq!(git(&work, &["status", "--porcelain"]), "");
    assert_eq!(git(&work, &["for-each-ref", "refs/agent-gate"]), "");
    drop(origin);
}

/// The container case: the gate runs as root in a workspace the runner's user owns. The
/// change is gated, and ownership and content are left as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root (the container case); .ci/run runs it: cargo test --test it -- --ignored as_root"]
async fn as_root_check_works_in_a_workspace_owned_by_another_uid() {
    super::support::require_root();
    let repo = diverged();
    let owner = 12_345;
    let chown = Command::new("chown")
        .args(["-R", &format!("{owner}:{owner}")])
        .arg(repo.path())
        .status()
        .expect("chown");
    assert!(chown.success());
    let report = agent_gate::flow::check(
        agent_gate::flow::CheckOptions {
            repo: repo.path().to_path_buf(),
            base: "main".to_string(),
            head: "agent".to_string(),
            policy_path: ".github/agent-gate.yml".to_string(),
            scope: agent_gate::core::scope::ScopeInput::default(),
            jobs: Some(1),
        },
        Shutdown::never(),
    )
    .await;
    assert_eq!(report.verdict, Verdict::Passed, "{}", report.render_text());
    assert_eq!(report.files.len(), 1);
    for p in [".", ".git", ".git/index", "src/lib.rs"] {
        let m = std::fs::metadata(repo.path().join(p)).expect("exists");
        assert_eq!((m.uid(), m.gid()), (owner, owner), "{p}");
    }
}

/// `GITHUB_OUTPUT` that cannot be written (a missing directory, a directory): a clear error
/// naming the file, never a panic or a silent success.
#[test]
fn an_unwritable_github_output_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut shown = Vec::new();
    for path in [dir.path().join("missing/output"), dir.path().to_path_buf()] {
        let err = agent_gate::adapters::actions::set_output(&path, "verdict", "passed")
            .expect_err("cannot write there");
        shown.push(
            err.to_string()
                .replace(&dir.path().display().to_string(), "<dir>"),
        );
    }
    insta::assert_snapshot!("unwritable_github_output", shown.join("\n"));
}
