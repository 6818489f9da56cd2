//! API cost of waiting (issues 10 and 20): a 30-minute agent task followed by agent-gate's
//! poller (`github::poll_task`, the policy defaults: 5 s growing ×1.5 to 60 s while answers
//! cost, every 5 s while they are 304s, jitter, conditional GETs with `ETag`), by the same
//! poller as it was before `poll.watch` (a 304 grew the interval too), and by the naive loop
//! a workflow script would write (a GET every 10 s, no `ETag`), against the in-process
//! simulator.
//!
//! Time is scaled: the simulator runs the task `SCALE` times faster, and both pollers' own
//! intervals are divided by the same factor, so each sees the same number of polls as in
//! real time; latencies are multiplied back to real seconds. Request round trips (well
//! under a millisecond here) are not scaled, so they weigh `SCALE` times more than they
//! would: the latencies below are slight over-estimates for both pollers alike.
//!
//! Several trials run side by side, each a pair of tasks with the same duration (30 min
//! plus a seeded offset of 0–60 s, so the naive loop's phase against the finish varies):
//! one followed by each poller. Counted from the simulator's request log, per task:
//! requests, rate-limit units (a 304 costs nothing on GitHub), and the detection latency,
//! from the moment the simulator's task turns `completed` (watched in-process, not over
//! HTTP) to the moment the poller has the `completed` answer in hand.
//!
//! Run: `cargo bench --bench api_cost`, or `bench/run.sh`.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use agent_gate::adapters::github::types::TaskState;
use agent_gate::adapters::github::{
    Client, ClientConfig, PollOptions, PollOutcome, create_task_request, install_crypto_provider,
    poll_task,
};
use agent_gate::sim::{self, Scenario, SimConfig, TaskScript};
use common::{Rng, Section};
use tokio::time::Instant;

/// Simulated seconds per real second.
const SCALE: f64 = 60.0;
const TASK: Duration = Duration::from_mins(30);
const QUEUED: Duration = Duration::from_mins(1);
const NAIVE_INTERVAL: Duration = Duration::from_secs(10);
/// The third poller: agent-gate's before `poll.watch` (an unchanged 304 grew the interval
/// like a paid poll): `watch` as long as `max`.
const NO_WATCH: Duration = Duration::from_mins(1);

fn scaled(d: Duration) -> Duration {
    d.div_f64(SCALE)
}

/// Real elapsed time → simulated seconds.
fn unscaled_secs(d: Duration) -> f64 {
    d.as_secs_f64() * SCALE
}

/// What one poller saw of one task.
struct Trial {
    task_id: String,
    noticed: Instant,
}

async fn create(url: &str, token: &str, prompt: &str) -> (Client, String) {
    let client = Client::new(ClientConfig::new(token, "octo-org", "payments").with_api_url(url))
        .expect("client");
    let task = client
        .create_task(&create_task_request(prompt, Some("main".into())))
        .await
        .expect("create task");
    (client, task.id)
}

/// agent-gate's poller with the policy defaults (or another `watch`), every interval divided
/// by `SCALE`.
async fn gate_poller(url: String, token: String, prompt: String, watch: Option<Duration>) -> Trial {
    let (client, id) = create(&url, &token, &prompt).await;
    let mut opts = PollOptions::new(Instant::now() + scaled(Duration::from_mins(45)));
    opts.initial = scaled(opts.initial);
    opts.max = scaled(opts.max);
    opts.watch = scaled(watch.unwrap_or(opts.watch));
    let outcome = poll_task(&client, &id, &opts, std::future::pending(), |_| {}).await;
    let noticed = Instant::now();
    match outcome {
        PollOutcome::Finished { task } if task.state == TaskState::Completed => {}
        other => panic!("agent-gate poller: unexpected outcome {other:?}"),
    }
    Trial {
        task_id: id,
        noticed,
    }
}

/// The naive loop: GET, look at the state, sleep 10 s (scaled), again; no `ETag`.
async fn naive_poller(url: String, token: String, prompt: String) -> Trial {
    let (_, id) = create(&url, &token, &prompt).await;
    let http = reqwest::Client::new();
    let task_url = format!("{url}/agents/repos/octo-org/payments/tasks/{id}");
    loop {
        let body: serde_json::Value = http
            .get(&task_url)
            .bearer_auth(&token)
            .header("accept", "application/vnd.github+json")
            .header("user-agent", "naive-loop")
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON");
        if body["state"] == "completed" {
            return Trial {
                task_id: id,
                noticed: Instant::now(),
            };
        }
        tokio::time::sleep(scaled(NAIVE_INTERVAL)).await;
    }
}

/// Watch the simulator's own state (no HTTP): when did each task turn `completed`?
async fn watch_completions(
    sim: &sim::SimHandle,
    expected: usize,
    deadline: Instant,
) -> HashMap<String, Instant> {
    let mut done = HashMap::new();
    while done.len() < expected && Instant::now() < deadline {
        let now = Instant::now();
        for t in sim.tasks() {
            if t.state == TaskState::Completed {
                done.entry(t.id).or_insert(now);
            }
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    done
}

struct Tally {
    requests: Vec<f64>,
    units: Vec<f64>,
    latency: Vec<f64>,
}

#[allow(clippy::cast_precision_loss)] // request counts are small
fn tally(sim: &sim::SimHandle, trials: &[Trial], finished: &HashMap<String, Instant>) -> Tally {
    let log = sim.request_log();
    let mut t = Tally {
        requests: Vec::new(),
        units: Vec::new(),
        latency: Vec::new(),
    };
    for trial in trials {
        let path = format!("/agents/repos/octo-org/payments/tasks/{}", trial.task_id);
        let gets: Vec<_> = log
            .iter()
            .filter(|r| r.method == "GET" && r.path == path)
            .collect();
        t.requests.push(gets.len() as f64);
        t.units
            .push(gets.iter().filter(|r| r.status != Some(304)).count() as f64);
        let done = finished
            .get(&trial.task_id)
            .expect("the simulator saw the task complete");
        t.latency.push(unscaled_secs(
            trial.noticed.saturating_duration_since(*done),
        ));
    }
    t
}

fn med(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get((v.len().max(1) - 1) / 2).copied().unwrap_or(0.0)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

fn main() {
    install_crypto_provider();
    let trials = if common::quick() { 2 } else { 8 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut rng = Rng(0xa91_2026);
        let mut scenario = Scenario::default();
        for i in 0..trials {
            let extra = Duration::from_millis(u64::try_from(rng.below(60_000)).unwrap_or(0));
            for who in ["gate", "fast", "naive"] {
                scenario.tasks.push(TaskScript {
                    matches: Some(format!("[trial {i} {who}]")),
                    queued: QUEUED,
                    work: TASK.saturating_sub(QUEUED) + extra,
                    files: Some(vec![]),
                    ..TaskScript::default()
                });
            }
        }
        let cfg = SimConfig {
            repositories: Vec::new(),
            repo: dir.path().join("sim.git"),
            scenario: Some(scenario),
            time_scale: SCALE,
        };
        let sim = sim::start(cfg, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("simulator");
        let url = sim.url();
        println!(
            "api cost: {trials} trials × 3 pollers, a {}-minute task at time scale {SCALE} ({} s real)…",
            TASK.as_secs() / 60,
            (TASK.as_secs_f64() + 60.0) / SCALE
        );
        let mut gate = Vec::new();
        let mut fast = Vec::new();
        let mut naive = Vec::new();
        for i in 0..trials {
            gate.push(tokio::spawn(gate_poller(
                url.clone(),
                format!("ghu_bench_gate_{i}"),
                format!("benchmark task [trial {i} gate]"),
                None,
            )));
            fast.push(tokio::spawn(gate_poller(
                url.clone(),
                format!("ghu_bench_fast_{i}"),
                format!("benchmark task [trial {i} fast]"),
                Some(NO_WATCH),
            )));
            naive.push(tokio::spawn(naive_poller(
                url.clone(),
                format!("ghu_bench_naive_{i}"),
                format!("benchmark task [trial {i} naive]"),
            )));
        }
        let deadline = Instant::now() + scaled(TASK + Duration::from_mins(5));
        let finished = watch_completions(&sim, trials * 3, deadline).await;
        let mut gate_trials = Vec::new();
        for h in gate {
            gate_trials.push(h.await.expect("gate poller"));
        }
        let mut fast_trials = Vec::new();
        for h in fast {
            fast_trials.push(h.await.expect("gate poller, fast"));
        }
        let mut naive_trials = Vec::new();
        for h in naive {
            naive_trials.push(h.await.expect("naive poller"));
        }
        let g = tally(&sim, &gate_trials, &finished);
        let f = tally(&sim, &fast_trials, &finished);
        let n = tally(&sim, &naive_trials, &finished);
        for (name, t) in [("gate", &g), ("gate no watch", &f), ("naive", &n)] {
            println!(
                "{name:>13}: requests {:?} units {:?} latency (s) {:.1?}",
                t.requests, t.units, t.latency
            );
        }
        report(trials, &g, &f, &n);
        sim.shutdown().await;
    });
}

fn report(trials: usize, g: &Tally, f: &Tally, n: &Tally) {
    let mut s = Section::new(
        "api_cost",
        "API cost of waiting: one 30-minute agent task",
        &format!(
            "Against the simulator with time scaled ×{SCALE} (both pollers' intervals scaled alike; \
             latencies converted back to real seconds). Medians over {trials} tasks per poller, \
             each 30 min plus 0–60 s. A rate-limit unit is a request that is not a 304 (GitHub \
             does not count 304s against the limit)."
        ),
        &[
            "poller",
            "requests",
            "rate-limit units",
            "detection latency (median)",
            "detection latency (worst)",
        ],
    );
    let row = |name: &str, t: &Tally| {
        vec![
            name.to_string(),
            format!("{:.0}", med(&t.requests)),
            format!("{:.0}", med(&t.units)),
            format!("{:.1} s", med(&t.latency)),
            format!("{:.1} s", max(&t.latency)),
        ]
    };
    s.row(&row(
        "agent-gate `poll_task`, defaults (5 s → ×1.5 → 60 s while answers cost, 5 s while they are 304s; jitter, `ETag`)",
        g,
    ));
    s.row(&row(
        "agent-gate `poll_task` before `poll.watch` (`watch: 60s`: a 304 grows the interval too)",
        f,
    ));
    s.row(&row("naive loop (GET every 10 s, no `ETag`)", n));
    s.note(&format!(
        "With the defaults agent-gate spends {:.0} % of the naive loop's rate-limit units \
         ({:.0} % of its requests); its median detection latency is {:.1} s against the naive \
         loop's {:.1} s. Before `poll.watch` (a 304 grew the interval like a paid answer) it \
         spent {:.0} % of the units and noticed after {:.1} s: unchanged polls are 304s, which \
         cost no units, so watching closely is free.",
        100.0 * med(&g.units) / med(&n.units).max(1.0),
        100.0 * med(&g.requests) / med(&n.requests).max(1.0),
        med(&g.latency),
        med(&n.latency),
        100.0 * med(&f.units) / med(&n.units).max(1.0),
        med(&f.latency),
    ));
    s.finish();
}
