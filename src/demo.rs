//! `agent-gate demo`: the whole gate, offline. It builds a temporary world — a bare
//! repository playing GitHub's copy of a tiny shell project with a real test suite, a
//! workspace clone holding its policy, and the in-process simulator running scripted
//! agents at a high time scale — then runs [`crate::flow::run`] once per scenario and
//! prints each report and a summary table. The project, policy and scripted agents are
//! embedded from `examples/demo/`. This module owns that world and its output; the gate
//! itself is the same code `agent-gate run` uses.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::adapters::github::ApiUrl;
use crate::adapters::shutdown::Shutdown;
use crate::core::report::{Report, Verdict};
use crate::core::secret::Token;
use crate::core::slug::RepoSlug;
use crate::flow::RunOptions;
use crate::sim::{self, Scenario, ScenarioError, SimConfig, SimError, SimHandle};

/// The simulated agents run this many times faster than real time.
const TIME_SCALE: f64 = 60.0;
const REPOSITORY: &str = "demo-org/calc";
/// Any token but an installation token (`ghs_…`) is a user to the simulator.
const TOKEN: &str = "ghp_agent_gate_demo";
const POLICY_PATH: &str = ".github/agent-gate.yml";

const POLICY: &str = include_str!("../examples/demo/policy.yml");
const SCENARIO: &str = include_str!("../examples/demo/scenario.yml");
/// The demo project: path in the repository, content.
const PROJECT: [(&str, &str); 4] = [
    (
        "README.md",
        include_str!("../examples/demo/project/README.md"),
    ),
    (
        "src/calc.sh",
        include_str!("../examples/demo/project/src/calc.sh"),
    ),
    (
        "tests/run.sh",
        include_str!("../examples/demo/project/tests/run.sh"),
    ),
    (
        ".github/workflows/ci.yml",
        include_str!("../examples/demo/project/ci.yml"),
    ),
];

/// One run of the gate the demo makes.
#[derive(Debug, Clone)]
struct Case {
    title: String,
    /// Holds the `match` text of the scripted agent that answers it.
    instruction: String,
    /// `None` for a user's scenario: its verdict is the demo's result.
    expect: Option<Verdict>,
}

/// The built-in scenarios, answered by the agents of `examples/demo/scenario.yml`.
fn builtin_cases() -> Vec<Case> {
    [
        (
            "in-scope change",
            "Add subtraction to src/calc.sh, with tests",
            Verdict::Passed,
        ),
        (
            "protected file edited",
            "Make CI faster",
            Verdict::ScopeViolation,
        ),
        (
            "tests broken",
            "Speed up multiplication in src/calc.sh",
            Verdict::ChecksFailed,
        ),
    ]
    .into_iter()
    .map(|(title, instruction, expect)| Case {
        title: title.to_string(),
        instruction: instruction.to_string(),
        expect: Some(expect),
    })
    .collect()
}

/// The demo could not build its world.
#[derive(Debug, thiserror::Error)]
enum DemoError {
    #[error("cannot create the demo's temporary directory: {0}")]
    TempDir(std::io::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run git (is it installed and on PATH?): {0}")]
    GitSpawn(std::io::Error),
    #[error("`git {args}` failed in {dir}: {stderr}")]
    Git {
        args: String,
        dir: PathBuf,
        stderr: String,
    },
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    #[error("the simulator did not start: {0}")]
    Sim(#[from] SimError),
}

/// The temporary world: removed (after the simulator stops) when dropped.
struct World {
    dir: tempfile::TempDir,
    workspace: PathBuf,
    sim: SimHandle,
}

impl World {
    async fn build(scenario: Scenario) -> Result<World, DemoError> {
        let dir = tempfile::Builder::new()
            .prefix("agent-gate-demo-")
            .tempdir()
            .map_err(DemoError::TempDir)?;
        let bare = dir.path().join("github.git");
        let workspace = dir.path().join("workspace");
        git(
            dir.path(),
            &["init", "-q", "--bare", "-b", "main", "github.git"],
        )
        .await?;
        git(dir.path(), &["init", "-q", "-b", "main", "workspace"]).await?;
        let files = PROJECT.iter().copied().chain([(POLICY_PATH, POLICY)]);
        for (path, content) in files {
            let full = workspace.join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).map_err(|source| DemoError::Write {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            std::fs::write(&full, content).map_err(|source| DemoError::Write {
                path: full.clone(),
                source,
            })?;
        }
        git(&workspace, &["add", "-A"]).await?;
        git(
            &workspace,
            &[
                "commit",
                "-q",
                "-m",
                "calc: a tiny shell library, its tests and its agent-gate policy",
            ],
        )
        .await?;
        let bare_str = bare.to_string_lossy().into_owned();
        git(&workspace, &["remote", "add", "origin", &bare_str]).await?;
        git(&workspace, &["push", "-q", "-u", "origin", "main"]).await?;
        git(&workspace, &["remote", "set-head", "origin", "main"]).await?;
        let sim = sim::start(
            SimConfig {
                scenario: Some(scenario),
                time_scale: TIME_SCALE,
                ..SimConfig::new(bare)
            },
            ([127, 0, 0, 1], 0).into(),
        )
        .await?;
        Ok(World {
            dir,
            workspace,
            sim,
        })
    }

    fn options(&self, instruction: &str) -> RunOptions {
        let mut gate_env = vec![("HOME".into(), self.dir.path().as_os_str().to_owned())];
        if let Some(path) = std::env::var_os("PATH") {
            gate_env.push(("PATH".into(), path));
        }
        RunOptions {
            instruction: instruction.to_string(),
            policy_path: POLICY_PATH.to_string(),
            gate_env,
            ..RunOptions::new(
                self.workspace.clone(),
                RepoSlug::parse(REPOSITORY).expect("the demo's repository is `owner/repo`"),
                ApiUrl::parse(&self.sim.url()).expect("the simulator's URL is http on 127.0.0.1"),
                Some(Token::new(TOKEN)),
            )
        }
    }

    /// Stop the simulator, then remove the directory.
    async fn close(self) {
        let World { dir, sim, .. } = self;
        sim.shutdown().await;
        drop(dir);
    }
}

/// Run git for the demo's own setup, with no system or global configuration (a user's
/// `commit.gpgsign` or hooks must not break the demo).
async fn git(dir: &Path, args: &[&str]) -> Result<(), DemoError> {
    let out = tokio::process::Command::new("git")
        .args([
            "-c",
            "user.name=agent-gate demo",
            "-c",
            "user.email=demo@agent-gate.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(DemoError::GitSpawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(DemoError::Git {
            args: args.join(" "),
            dir: dir.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Run the demo, stopped by SIGINT/SIGTERM. With no scenario: the three built-in agents,
/// exit 0 when each reached its expected verdict, else 1. With a scenario file: one task
/// answered by it, exit with its verdict's code.
pub async fn run(scenario: Option<&Path>, out: &mut (dyn Write + Send)) -> u8 {
    let shutdown = Shutdown::from_os_signals().unwrap_or_else(|_| Shutdown::never());
    run_with(scenario, shutdown, out).await
}

/// [`run`] with an injected shutdown signal.
pub async fn run_with(
    scenario: Option<&Path>,
    shutdown: Shutdown,
    out: &mut (dyn Write + Send),
) -> u8 {
    let loaded = match scenario {
        None => Scenario::from_yaml(
            SCENARIO,
            Path::new("examples/demo/scenario.yml"),
            Path::new("."),
        )
        .map(|s| (s, builtin_cases())),
        Some(path) => Scenario::load(path).map(|s| {
            let case = user_case(&s, path);
            (s, vec![case])
        }),
    };
    let (scenario_compiled, cases) = match loaded {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(out, "demo: error: {e}");
            return Verdict::ConfigError.exit_code();
        }
    };
    let _ = writeln!(
        out,
        "agent-gate demo: the whole gate, offline, against a simulated Copilot agent\n\ndemo: building a temporary repository, its workspace and the simulator…"
    );
    let world = match World::build(scenario_compiled).await {
        Ok(w) => w,
        Err(e) => {
            let _ = writeln!(out, "demo: error: {e}");
            return Verdict::ConfigError.exit_code();
        }
    };
    intro(out, &world, scenario);

    let mut results: Vec<(Case, Report, Duration)> = Vec::new();
    let total = cases.len();
    for (i, case) in cases.into_iter().enumerate() {
        if shutdown.fired().is_some() {
            break;
        }
        let expect = case
            .expect
            .map(|v| format!(" — expected verdict: {v}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "\n━━ [{}/{total}] {}{expect}\n   instruction: \"{}\"\n",
            i + 1,
            case.title,
            case.instruction
        );
        let started = Instant::now();
        let report = crate::flow::run(
            world.options(&case.instruction),
            shutdown.clone(),
            &mut *out,
        )
        .await;
        let took = started.elapsed();
        let _ = writeln!(out);
        for line in report.render_text().lines() {
            if line.is_empty() {
                let _ = writeln!(out);
            } else {
                let _ = writeln!(out, "   {line}");
            }
        }
        let _ = out.flush();
        results.push((case, report, took));
    }
    world.close().await;
    let code = summary(out, &results, scenario.is_some(), shutdown.fired());
    let _ = out.flush();
    code
}

/// The case for a user's scenario file: the first scripted `match` makes the instruction.
fn user_case(s: &Scenario, path: &Path) -> Case {
    let instruction = s
        .tasks
        .iter()
        .find_map(|t| t.matches.clone())
        .unwrap_or_else(|| "Make a small improvement to src/calc.sh".to_string());
    Case {
        title: path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        instruction,
        expect: None,
    }
}

fn intro(out: &mut (dyn Write + Send), world: &World, scenario: Option<&Path>) {
    let dir = world.dir.path().display();
    let agents = scenario.map_or_else(
        || "three scripted agents (examples/demo/scenario.yml)".to_string(),
        |p| format!("the agent scripted in {}", p.display()),
    );
    let _ = writeln!(
        out,
        "\n  repository  {REPOSITORY}: a tiny shell library (src/calc.sh) with a test suite (sh tests/run.sh)\n  GitHub      a simulator at {} ({TIME_SCALE}x real time) serving {dir}/github.git\n  agent       {agents}\n  workspace   {dir}/workspace (a clone: the gate fetches the agent's branch into it)\n  policy      {POLICY_PATH}, read at the base `main`: the agent may change src/**, tests/** and *.md;\n              workflows, CODEOWNERS and the policy are protected; check \"unit tests\" must pass",
        world.sim.url()
    );
}

/// Print the summary table; the demo's exit code.
fn summary(
    out: &mut (dyn Write + Send),
    results: &[(Case, Report, Duration)],
    user_scenario: bool,
    interrupted: Option<&str>,
) -> u8 {
    let _ = writeln!(
        out,
        "\n━━ summary\n\n  {:<24} {:<16} {:<16} {:<10} {:>8}",
        "SCENARIO", "EXPECTED", "ACTUAL", "TASK", "TIME"
    );
    let mut matched = 0;
    for (case, report, took) in results {
        let task: String = report
            .task
            .as_ref()
            .map(|t| t.id.chars().take(8).collect())
            .filter(|id: &String| !id.is_empty())
            .unwrap_or_else(|| "-".to_string());
        let expected = case.expect.map_or("-", Verdict::as_str);
        let ok = case.expect.is_none_or(|v| v == report.verdict);
        matched += usize::from(ok);
        let _ = writeln!(
            out,
            "  {:<24} {:<16} {:<16} {:<10} {:>7.1}s  {}",
            case.title.chars().take(24).collect::<String>(),
            expected,
            report.verdict.as_str(),
            task,
            took.as_secs_f64(),
            if ok { "ok" } else { "MISMATCH" }
        );
    }
    if let Some(signal) = interrupted {
        let _ = writeln!(out, "\ndemo: interrupted by {signal}");
        return Verdict::Cancelled.exit_code();
    }
    if user_scenario {
        return results
            .first()
            .map_or(Verdict::ConfigError.exit_code(), |(_, r, _)| {
                let _ = writeln!(out, "\ndemo: verdict {} (exit {})", r.verdict, r.exit_code);
                r.exit_code
            });
    }
    let _ = writeln!(
        out,
        "\n{matched} of {} scenarios reached their expected verdict.",
        results.len()
    );
    if matched == results.len() {
        let _ = writeln!(
            out,
            "Next: commit a policy to your repository (`agent-gate validate` checks it), then\n`agent-gate run --instruction \"…\"` with a user token, or `agent-gate sim` to try a pipeline offline."
        );
        0
    } else {
        1
    }
}
