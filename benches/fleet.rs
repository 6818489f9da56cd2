//! A simulated night (issue 21): a batch manifest planned with `manifest::plan` and every
//! job run through `flow::run` against the in-process simulator, which serves each
//! repository from its own bare repository and enforces GitHub's content-creation limits on
//! every write of a user (task creations, commit statuses, comments): 80 a minute and 500
//! an hour, compressed 30× like the rest of the night (80 in any 2 s, 500 in any 2 min),
//! answered with a secondary-rate-limit 403. Every job uses the same token, as a fleet
//! does; a job is a task of a runtime with enough threads that no job waits for another's
//! git (on GitHub each job has its own runner).
//!
//! Data sets, side by side:
//! - one repository × 30 and × 100 tasks, `max-concurrent-tasks: 3`, 10 jobs at a time
//!   (the matrix's `max-parallel`);
//! - 50 and 200 repositories × 1 task, 20 jobs at a time;
//! - paced with `write-pace: 1/34ms, 480/120s` (the recommended `1/s, 480/h`, compressed
//!   30×) on one ledger (a shared bare repository standing for the workflow's), and the 200
//!   repositories also without a pace.
//!
//! Per data set: API requests and writes per task (a write: POST, PATCH, PUT or DELETE, not
//! a GraphQL query), reads of a task by a run that did not start it, secondary-limit
//! answers, runs that did not pass, and the batch's wall time against the ideal: the
//! longer of `ceil(N / slots) × T` (T the simulated task's duration: the agent runs 2 s
//! queued + 5 s working at time scale 2, so T = 3.5 s, or 14 s in three sets; slots the cap, 3, or the jobs at a
//! time, 20) and the floor the limits put under the night's writes (for N writes and a
//! limit of M in W: `floor((N - 1) / M) × W`). Polls are real time (`agent.poll` 1 s), so
//! detection costs up to a second a wave: with real tasks of 10–30 minutes that second is
//! noise; here it is a third of a task.
//!
//! Run: `cargo bench --bench fleet`. `BENCH_QUICK=1` runs the small sets only,
//! `BENCH_ONLY=<text>` the sets whose name contains it.

mod common;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_gate::adapters::github::{ApiUrl, install_crypto_provider};
use agent_gate::adapters::shutdown::Shutdown;
use agent_gate::core::manifest::{Manifest, plan};
use agent_gate::core::report::Verdict;
use agent_gate::flow::{RunOptions, run};
use agent_gate::sim::{self, CreationLimit, Scenario, SimConfig};

/// The simulator's time scale of most sets: tasks of 3.5 s.
const SCALE: f64 = 2.0;
/// GitHub's content-creation limits of one user, compressed 30×: 80 a minute, 500 an hour.
const LIMITS: [(u32, Duration); 2] = [(80, Duration::from_secs(2)), (500, Duration::from_mins(2))];
/// The recommended `write-pace: 1/s, 480/h`, compressed the same.
const PACE: &str = "1/34ms, 480/120s";
const POLICY: &str = "version: 1\nagent:\n  timeout: 30m\n  max-concurrent-tasks: 3\n  poll: { initial: 1s, max: 1s }\nscope:\n  allow: [\"**\"]\n";

struct Set {
    name: String,
    repositories: usize,
    tasks_each: usize,
    parallel: usize,
    paced: bool,
    /// The simulator's time scale: the task takes 7 s / scale.
    scale: f64,
}

/// A content-creating request (a GraphQL query is a read sent as a POST).
fn is_write(r: &sim::LoggedRequest) -> bool {
    r.method != "GET" && r.path != "/graphql"
}

struct Figures {
    tasks: usize,
    wall_s: f64,
    ideal_s: f64,
    requests: f64,
    writes: f64,
    task_gets: usize,
    secondary: usize,
    not_passed: usize,
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "b")
        .env("GIT_AUTHOR_EMAIL", "b@e")
        .env("GIT_COMMITTER_NAME", "b")
        .env("GIT_COMMITTER_EMAIL", "b@e")
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

async fn night(set: &Set) -> Figures {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let seed = root.join("seed");
    git(root, &["init", "-q", "-b", "main", seed.to_str().unwrap()]);
    std::fs::create_dir_all(seed.join(".github")).unwrap();
    std::fs::write(seed.join(".github/agent-gate.yml"), POLICY).unwrap();
    std::fs::write(seed.join("README.md"), "fleet\n").unwrap();
    git(&seed, &["add", "-A"]);
    git(&seed, &["commit", "-qm", "seed"]);
    let names: Vec<String> = (0..set.repositories)
        .map(|i| format!("octo/svc-{i:03}"))
        .collect();
    let mut repositories = Vec::new();
    for name in &names {
        let bare = root.join(format!("{}.git", name.replace('/', "-")));
        git(
            root,
            &[
                "clone",
                "-q",
                "--bare",
                seed.to_str().unwrap(),
                bare.to_str().unwrap(),
            ],
        );
        repositories.push((name.clone(), bare));
    }
    let scenario = Scenario {
        creation_limits: LIMITS
            .iter()
            .map(|&(max, window)| CreationLimit {
                max,
                window,
                status: 403,
                retry_after: None,
            })
            .collect(),
        ..Scenario::default()
    };
    // The ledger every job shares (the workflow's repository in a real night).
    let ledger = root.join("workflow.git");
    git(root, &["init", "-q", "--bare", ledger.to_str().unwrap()]);
    let pace = set.paced.then(|| {
        agent_gate::flow::pace::WritePace::parse(PACE)
            .expect("pace")
            .expect("a pace")
    });
    let sim = sim::start(
        SimConfig {
            repositories: repositories.clone(),
            repo: root.join("unnamed.git"),
            scenario: Some(scenario),
            time_scale: set.scale,
        },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .expect("simulator");

    // The manifest: one entry per repository with its tasks (ids keep the keys apart).
    let mut manifest = String::from("version: 1\nentries:\n");
    for t in 0..set.tasks_each {
        let repos: Vec<&str> = names.iter().map(String::as_str).collect();
        let _ = write!(
            manifest,
            "  - id: night-{t}\n    repositories: [{}]\n    instruction: \"migration step {t}\"\n    scope: []\n",
            repos.join(", ")
        );
    }
    let manifest = Manifest::from_yaml(&manifest, "night.yml").expect("manifest");
    let jobs = plan(
        &manifest,
        agent_gate::core::manifest::today_utc(),
        jiff::Timestamp::now(),
    )
    .expect("plan")
    .jobs;
    let tasks = jobs.len();

    let permits = Arc::new(tokio::sync::Semaphore::new(set.parallel));
    let started = Instant::now();
    let mut runs = Vec::new();
    for (i, job) in jobs.into_iter().enumerate() {
        let bare = repositories
            .iter()
            .find(|(n, _)| *n == job.repository)
            .map(|(_, b)| b.clone())
            .expect("repository");
        let ws = root.join(format!("ws-{i:04}"));
        let url = ApiUrl::parse(&sim.url()).expect("the simulator's URL");
        let permits = permits.clone();
        let pace = pace.clone();
        let ledger = ledger.display().to_string();
        runs.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.expect("permit");
            let clone_to = ws.clone();
            tokio::task::spawn_blocking(move || {
                git(
                    clone_to.parent().unwrap(),
                    &[
                        "clone",
                        "-q",
                        bare.to_str().unwrap(),
                        clone_to.to_str().unwrap(),
                    ],
                );
            })
            .await
            .expect("clone");
            let opts = RunOptions {
                write_pace: pace,
                pace_ledger: Some(ledger),
                instruction: job.instruction.clone(),
                task_key: Some(job.task_key.clone()),
                not_before: job.not_before.parse().ok(),
                priority: job.priority,
                jobs: Some(1),
                gate_env: vec![("PATH".into(), std::env::var_os("PATH").unwrap_or_default())],
                ..RunOptions::new(
                    ws,
                    job.repository
                        .parse()
                        .expect("a planned job's repository is `owner/repo`"),
                    url,
                    Some("ghp_fleet".into()),
                )
            };
            let mut progress = Vec::new();
            run(opts, Shutdown::never(), &mut progress).await.verdict
        }));
    }
    let mut not_passed = 0;
    for r in runs {
        let verdict = r.await.expect("run");
        if verdict != Verdict::Passed {
            not_passed += 1;
            eprintln!("{}: a run ended {verdict}", set.name);
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    let log = sim.request_log();
    // The refusals, by endpoint and status (on stderr: what the table's columns sum up).
    let mut refused: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for r in log.iter().filter(|r| r.status.is_some_and(|s| s >= 400)) {
        let endpoint = r
            .endpoint
            .map_or_else(|| r.path.clone(), |e| format!("{e:?}"));
        *refused
            .entry(format!("{} {endpoint} {}", r.method, r.status.unwrap_or(0)))
            .or_default() += 1;
    }
    for (what, n) in &refused {
        eprintln!("{}: {n} × {what}", set.name);
    }
    // Writes the server accepted: the most in any window of each limit, and the first
    // refusal.
    let accepted: Vec<jiff::Timestamp> = log
        .iter()
        .filter(|r| is_write(r) && r.status.is_some_and(|s| s < 300))
        .map(|r| r.at)
        .collect();
    for (max, window) in LIMITS {
        let w = jiff::SignedDuration::try_from(window).expect("window");
        let most = accepted
            .iter()
            .map(|t0| {
                accepted
                    .iter()
                    .filter(|t| **t >= *t0 && t.duration_since(*t0) < w)
                    .count()
            })
            .max()
            .unwrap_or(0);
        eprintln!(
            "{}: at most {most} accepted writes in any {window:?} (limit {max})",
            set.name
        );
    }
    let first_refusal = log
        .iter()
        .find(|r| is_write(r) && matches!(r.status, Some(403 | 429)))
        .map(|r| r.at.to_string());
    eprintln!(
        "{}: {} writes accepted; first refusal {first_refusal:?}",
        set.name,
        accepted.len()
    );
    let slots = if set.tasks_each > 1 { 3 } else { set.parallel };
    let waves = tasks.div_ceil(slots);
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let floor_s = LIMITS
        .iter()
        .map(|&(max, window)| {
            (accepted.len().saturating_sub(1) / max as usize) as f64 * window.as_secs_f64()
        })
        .fold(0.0, f64::max);
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let ideal_s = (waves as f64 * 7.0 / set.scale).max(floor_s);
    // Every GET of a single task: each run's polls of its own task, plus any read of
    // another run's task (with one token the two cannot be told apart; the tests in
    // tests/it/fleet.rs do that with a token per run).
    let task_gets = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/tasks/"))
        .count();
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let per = |n: usize| n as f64 / tasks as f64;
    Figures {
        tasks,
        wall_s,
        ideal_s,
        requests: per(log.len()),
        writes: per(log.iter().filter(|r| is_write(r)).count()),
        task_gets,
        secondary: log
            .iter()
            .filter(|r| is_write(r) && matches!(r.status, Some(403 | 429)))
            .count(),
        not_passed,
    }
}

fn main() {
    install_crypto_provider();
    let quick = common::quick();
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let set = |name: &str, repositories, tasks_each, parallel, paced| Set {
        name: if paced {
            format!("{name}, paced")
        } else {
            format!("{name}, unpaced")
        },
        repositories,
        tasks_each,
        parallel,
        paced,
        scale: SCALE,
    };
    let mut sets = vec![
        set("1 repository × 30 tasks", 1, 30, 10, true),
        Set {
            name: "1 repository × 30 tasks, paced, tasks of 14 s".into(),
            scale: SCALE / 4.0,
            ..set("", 1, 30, 10, true)
        },
        set("50 repositories × 1 task", 50, 1, 20, true),
        // The same night with tasks four times longer: what the fixed cost of a run
        // (start, admission, a poll's second, the review) weighs as tasks grow.
        Set {
            name: "50 repositories × 1 task, paced, tasks of 14 s".into(),
            scale: SCALE / 4.0,
            ..set("", 50, 1, 20, true)
        },
    ];
    if !quick {
        sets.extend([
            set("1 repository × 100 tasks", 1, 100, 10, true),
            Set {
                name: "1 repository × 100 tasks, paced, tasks of 14 s".into(),
                scale: SCALE / 4.0,
                ..set("", 1, 100, 10, true)
            },
            set("200 repositories × 1 task", 200, 1, 20, false),
            set("200 repositories × 1 task", 200, 1, 20, true),
        ]);
    }
    // Enough threads that a job's blocking git never holds up another job (each job of a
    // real night has its own runner).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(24)
        .enable_all()
        .build()
        .expect("runtime");
    let mut section = common::Section::new(
        "fleet",
        "A simulated night: one token, many jobs (`benches/fleet.rs`)",
        "Every job of a planned batch run through `flow::run` on the simulator, one shared token; the simulator refuses more than 80 writes of the user in any 2 s or 500 in any 2 min (GitHub's 80 a minute and 500 an hour, compressed 30× like the night). Paced: `write-pace: 1/34ms, 480/120s` on one ledger. Tasks of 3.5 s unless said; cap 3 with 10 jobs at a time on one repository, 20 jobs at a time across repositories.",
        &[
            "data set",
            "tasks",
            "requests / task",
            "writes / task",
            "task GETs / task",
            "secondary-limit answers",
            "runs not passed",
            "batch",
            "ideal",
            "ratio",
        ],
    );
    for set in sets
        .iter()
        .filter(|s| only.is_empty() || s.name.contains(&only))
    {
        let f = rt.block_on(night(set));
        #[allow(clippy::cast_precision_loss, reason = "small counts")]
        let gets = f.task_gets as f64 / f.tasks as f64;
        section.row(&[
            set.name.clone(),
            f.tasks.to_string(),
            format!("{:.1}", f.requests),
            format!("{:.1}", f.writes),
            format!("{gets:.1}"),
            f.secondary.to_string(),
            f.not_passed.to_string(),
            format!("{:.0} s", f.wall_s),
            format!("{:.0} s", f.ideal_s),
            format!("{:.2}×", f.wall_s / f.ideal_s),
        ]);
    }
    section.note("Ideal: the longer of `ceil(N / slots) × T` and the floor the limits put under the night's writes (`floor((writes − 1) / M) × W` for M writes in W). Polls are real seconds, so a run's fixed cost (start, admission, a poll's second, the review) weighs far more against these tasks than against real ones of 10–30 minutes.");
    section.finish();
}
