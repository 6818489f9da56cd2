//! A simulated night (issue 21): a batch manifest planned with `manifest::plan` and every
//! job run through `flow::run` against the in-process simulator, which serves each
//! repository from its own bare repository and enforces GitHub's content-creation limit on
//! task creation (80 a minute per user, answered with a secondary-rate-limit 403). Every
//! job uses the same token, as a fleet does.
//!
//! Data sets, side by side:
//! - one repository × 30 and × 100 tasks, `max-concurrent-tasks: 3`, 10 jobs at a time
//!   (the matrix's `max-parallel`);
//! - 50 and 200 repositories × 1 task, 20 jobs at a time, with and without the manifest's
//!   `tasks-per-minute: 60`.
//!
//! Per data set: API requests and writes (non-GET) per task, reads of a task by a run that
//! did not start it, secondary-limit answers, runs that did not pass, and the batch's wall
//! time against the ideal: `ceil(N / slots) × T` with T the simulated task's duration (the
//! agent runs 2 s queued + 5 s working at time scale 2, so T = 3.5 s) and slots the cap (3)
//! or the jobs at a time (20), and never below the creation limit's own floor (80 tasks a
//! minute: a whole minute for each 80 after the first), nor, when paced at 60 a minute,
//! below one second a task. Polls are real time (`agent.poll` 1 s), so detection costs up to a second a wave:
//! with real tasks of 10–30 minutes that second is noise; here it is a third of a task.
//!
//! Run: `cargo bench --bench fleet`. `BENCH_QUICK=1` runs the small sets only.

mod common;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_gate::flow::{RunOptions, run};
use agent_gate::github::install_crypto_provider;
use agent_gate::manifest::{Manifest, plan};
use agent_gate::report::Verdict;
use agent_gate::shutdown::Shutdown;
use agent_gate::sim::{self, CreationLimit, Scenario, SimConfig};

const SCALE: f64 = 2.0;
const TASK_S: f64 = 7.0 / SCALE;
const POLICY: &str = "version: 1\nagent:\n  timeout: 30m\n  max-concurrent-tasks: 3\n  poll: { initial: 1s, max: 1s }\nscope:\n  allow: [\"**\"]\n";

struct Set {
    name: String,
    repositories: usize,
    tasks_each: usize,
    parallel: usize,
    paced: bool,
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
        creation_limit: Some(CreationLimit {
            max: 80,
            window: Duration::from_mins(1),
            status: 403,
            retry_after: None,
        }),
        ..Scenario::default()
    };
    let sim = sim::start(
        SimConfig {
            repositories: repositories.clone(),
            repo: root.join("unnamed.git"),
            scenario: Some(scenario),
            time_scale: SCALE,
        },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .expect("simulator");

    // The manifest: one entry per repository with its tasks (ids keep the keys apart).
    let mut manifest = String::from("version: 1\n");
    if set.paced {
        manifest.push_str("tasks-per-minute: 60\n");
    }
    manifest.push_str("entries:\n");
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
        agent_gate::manifest::today_utc(),
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
        let url = sim.url();
        let permits = permits.clone();
        runs.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.expect("permit");
            git(
                ws.parent().unwrap(),
                &["clone", "-q", bare.to_str().unwrap(), ws.to_str().unwrap()],
            );
            let opts = RunOptions {
                instruction: job.instruction.clone(),
                task_key: Some(job.task_key.clone()),
                not_before: job.not_before.parse().ok(),
                priority: job.priority,
                jobs: Some(1),
                gate_env: vec![("PATH".into(), std::env::var_os("PATH").unwrap_or_default())],
                ..RunOptions::new(ws, job.repository.clone(), url, "ghp_fleet".to_string())
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
    // Task creations the server accepted: the most in any 60 s, and the first refusal.
    let creates: Vec<jiff::Timestamp> = log
        .iter()
        .filter(|r| r.method == "POST" && r.status == Some(201) && r.path.ends_with("/tasks"))
        .map(|r| r.at)
        .collect();
    let most = creates
        .iter()
        .map(|t0| {
            creates
                .iter()
                .filter(|t| {
                    **t >= *t0 && t.duration_since(*t0) < jiff::SignedDuration::from_mins(1)
                })
                .count()
        })
        .max()
        .unwrap_or(0);
    let first_refusal = log
        .iter()
        .find(|r| r.method == "POST" && matches!(r.status, Some(403 | 429)))
        .map(|r| r.at.to_string());
    eprintln!(
        "{}: {} creations accepted, at most {most} in 60 s; first refusal {first_refusal:?}; first creation {:?}",
        set.name,
        creates.len(),
        creates.first().map(ToString::to_string)
    );
    let slots = if set.tasks_each > 1 { 3 } else { set.parallel };
    let waves = tasks.div_ceil(slots);
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let ideal_s = (waves as f64 * TASK_S)
        .max(((tasks - 1) / 80) as f64 * 60.0)
        .max(if set.paced { (tasks - 1) as f64 } else { 0.0 });
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
        writes: per(log.iter().filter(|r| r.method != "GET").count()),
        task_gets,
        secondary: log
            .iter()
            .filter(|r| matches!(r.status, Some(403 | 429)) && r.method == "POST")
            .count(),
        not_passed,
    }
}

fn main() {
    install_crypto_provider();
    let quick = common::quick();
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let mut sets = vec![
        Set {
            name: "1 repository × 30 tasks".into(),
            repositories: 1,
            tasks_each: 30,
            parallel: 10,
            paced: false,
        },
        Set {
            name: "50 repositories × 1 task".into(),
            repositories: 50,
            tasks_each: 1,
            parallel: 20,
            paced: false,
        },
    ];
    if !quick {
        sets.extend([
            Set {
                name: "1 repository × 100 tasks".into(),
                repositories: 1,
                tasks_each: 100,
                parallel: 10,
                paced: false,
            },
            Set {
                name: "200 repositories × 1 task".into(),
                repositories: 200,
                tasks_each: 1,
                parallel: 20,
                paced: false,
            },
            Set {
                name: "200 repositories × 1 task, tasks-per-minute: 60".into(),
                repositories: 200,
                tasks_each: 1,
                parallel: 20,
                paced: true,
            },
        ]);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "| data set | tasks | requests / task | writes / task | task GETs / task | secondary-limit answers | not passed | batch | ideal | ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for set in sets
        .iter()
        .filter(|s| only.is_empty() || s.name.contains(&only))
    {
        let f = rt.block_on(night(set));
        #[allow(clippy::cast_precision_loss, reason = "small counts")]
        let gets = f.task_gets as f64 / f.tasks as f64;
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {} | {} | {:.0} s | {:.0} s | {:.2}× |",
            set.name,
            f.tasks,
            f.requests,
            f.writes,
            gets,
            f.secondary,
            f.not_passed,
            f.wall_s,
            f.ideal_s,
            f.wall_s / f.ideal_s
        );
    }
}
