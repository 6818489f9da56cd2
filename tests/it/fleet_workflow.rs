//! The nightly-migration example workflow, run as written: its YAML is read, `plan` runs as
//! its step says, the matrix it outputs is expanded the way Actions expands
//! `fromJSON(needs.plan.outputs.matrix)`, and every matrix job runs its steps — checkout of
//! the job's repository, the Action with exactly the inputs the example passes (and
//! `action.yml`'s defaults for the rest, as `INPUT_*`), the audit upload — against
//! `agent-gate sim --serve`, one git repository per target repository. Then the report job
//! downloads the artifacts and runs `report` as its step says. Any expression, action or
//! input this small runner does not know fails the test, so the example cannot drift from
//! the code (a renamed matrix key, a dropped input, a wrong artifact layout).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::support::{Cli, git_in as git};

const BIN: &str = env!("CARGO_BIN_EXE_agent-gate");
const WORKFLOW_REPOSITORY: &str = "octo-org/fleet-ops";

/// The night's batch: the same entry on two repositories whose own policies differ, and an
/// entry that names its own policy file, base branch and priority.
const MANIFEST: &str = r#"version: 1
tasks-per-minute: 60
defaults:
  timeout: 10m
  priority: low
entries:
  - id: nightly-sim
    repositories: [octo-org/payments, octo-org/ledger]
    instruction: Add the simulator's file.
    scope: []
  - id: docs-sweep
    repositories: [octo-org/docs]
    instruction: Add the simulator's file to the docs.
    scope: ["agent-gate-sim.txt"]
    policy: .github/gate-docs.yml
    base-ref: release
    priority: high
"#;

const OPEN_POLICY: &str = "version: 1\nagent:\n  timeout: 5m\n  max-concurrent-tasks: 2\n  max-open-pull-requests: 5\n  poll: { initial: 1s, max: 1s }\nscope:\n  allow: [\"**\"]\nchecks:\n  - name: readme\n    run: test -f README.md\n";
/// The ledger allows only `src/**`: the simulator's agent writes at the root.
const LEDGER_POLICY: &str = "version: 1\nagent:\n  timeout: 5m\n  max-concurrent-tasks: 2\n  poll: { initial: 1s, max: 1s }\nscope:\n  allow: [\"src/**\"]\n";

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A bare repository with these files on `main` (and a `release` branch when asked).
fn bare_repo(root: &Path, name: &str, files: &[(&str, &str)], release: bool) -> PathBuf {
    let seed = root.join(format!("seed-{}", name.replace('/', "-")));
    git(root, &["init", "-q", "-b", "main", seed.to_str().unwrap()]);
    for (path, content) in files {
        let p = seed.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    let id = ["-c", "user.name=t", "-c", "user.email=t@e"];
    git(&seed, &[&id[..], &["add", "-A"]].concat());
    git(&seed, &[&id[..], &["commit", "-qm", "seed"]].concat());
    if release {
        git(&seed, &["branch", "release"]);
    }
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
    bare
}

/// What `${{ }}` can read: `matrix.*`, `secrets.*`, `steps.*`, `needs.*`, `runner.temp`,
/// `strategy.job-index` — only what was put in.
#[derive(Clone, Default)]
struct Contexts(BTreeMap<String, String>);

impl Contexts {
    fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    fn get(&self, expr: &str) -> &str {
        let expr = expr.trim();
        self.0.get(expr).map_or_else(
            || panic!("the example reads `${{{{ {expr} }}}}`, which is not set here"),
            String::as_str,
        )
    }

    /// Replace every `${{ … }}` of `text` (a string value of the workflow).
    fn interpolate(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find("}}")
                .unwrap_or_else(|| panic!("unclosed expression in {text:?}"))
                + start;
            out.push_str(self.get(&rest[start + 3..end]));
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// An `if:` — terms joined with `&&`: `!cancelled()`, `X == 'lit'`, `X != 'lit'`.
    fn condition(&self, text: &str) -> bool {
        let text = text.trim();
        let inner = text
            .strip_prefix("${{")
            .and_then(|t| t.strip_suffix("}}"))
            .unwrap_or(text);
        inner.split("&&").all(|term| {
            let term = term.trim();
            if term == "!cancelled()" {
                return true;
            }
            let (lhs, rhs, equal) = if let Some((l, r)) = term.split_once("!=") {
                (l, r, false)
            } else if let Some((l, r)) = term.split_once("==") {
                (l, r, true)
            } else {
                panic!("the example's condition `{term}` is not one this runner knows")
            };
            let literal = rhs
                .trim()
                .strip_prefix('\'')
                .and_then(|r| r.strip_suffix('\''))
                .unwrap_or_else(|| panic!("not a string literal: {rhs}"));
            (self.get(lhs) == literal) == equal
        })
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => panic!("not a scalar: {other}"),
    }
}

/// `name=value` and `name<<DELIM` heredocs of a file command.
fn read_outputs(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            out.insert(name.to_string(), value.to_string());
        }
    }
    out
}

/// The world a job runs in.
struct Runner {
    root: PathBuf,
    sim_url: String,
    /// `owner/repo` → the bare repository that plays it.
    remotes: BTreeMap<String, PathBuf>,
    action: Value,
    attempt: u32,
}

#[derive(Default)]
struct JobResult {
    success: bool,
    /// Exit code of each step that ran, by its id (or `uses`).
    exits: Vec<(String, i32)>,
    outputs: BTreeMap<String, String>,
    summary: String,
    stdout: String,
}

impl Runner {
    fn base_env(&self, job: &str, step: &str, temp: &Path, ws: &Path) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for (k, v) in [
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("GITHUB_ACTIONS", "true".into()),
            ("CI", "true".into()),
            ("GITHUB_REPOSITORY", WORKFLOW_REPOSITORY.into()),
            ("GITHUB_RUN_ID", "777".into()),
            ("GITHUB_RUN_ATTEMPT", self.attempt.to_string()),
            ("GITHUB_JOB", job.into()),
            ("GITHUB_ACTION", step.into()),
            // GitHub's git server is a directory of the bare repositories (`server/OWNER/
            // REPO.git`), so what the gate derives from it (the write-pace ledger on the
            // workflow's repository) is reached as on GitHub.
            (
                "GITHUB_SERVER_URL",
                format!("file://{}", self.root.join("server").display()),
            ),
            ("GITHUB_EVENT_NAME", "schedule".into()),
            ("GITHUB_WORKSPACE", ws.display().to_string()),
            ("RUNNER_TEMP", temp.display().to_string()),
            ("HOME", temp.join("_home").display().to_string()),
        ] {
            env.insert(k.to_string(), v);
        }
        std::fs::create_dir_all(temp.join("_home")).unwrap();
        env
    }

    /// Run one job (one matrix combination) in its own workspace and temp directory.
    fn run_job(&self, name: &str, job: &Value, ctx: &Contexts, tag: &str) -> JobResult {
        let dir = self.root.join(format!("job-{name}-{tag}-{}", self.attempt));
        let (ws, temp) = (dir.join("workspace"), dir.join("temp"));
        std::fs::create_dir_all(&temp).unwrap();
        let mut ctx = ctx.clone();
        ctx.set("runner.temp", temp.display().to_string());
        let mut result = JobResult {
            success: true,
            ..JobResult::default()
        };
        let steps = job["steps"].as_array().expect("steps");
        for (i, step) in steps.iter().enumerate() {
            let id = step["id"]
                .as_str()
                .map_or(format!("__step{i}"), str::to_string);
            let wanted = match step.get("if") {
                Some(cond) => ctx.condition(&text_of(cond)),
                None => result.success,
            };
            if !wanted {
                continue;
            }
            let with: BTreeMap<String, String> = step
                .get("with")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), ctx.interpolate(&text_of(v))))
                        .collect()
                })
                .unwrap_or_default();
            let uses = step["uses"]
                .as_str()
                .expect("every step of the example `uses:`");
            let output_file = temp.join(format!("output-{id}"));
            let summary_file = temp.join(format!("summary-{id}"));
            std::fs::write(&output_file, "").unwrap();
            std::fs::write(&summary_file, "").unwrap();
            let mut env = self.base_env(name, &id, &temp, &ws);
            env.insert("GITHUB_OUTPUT".into(), output_file.display().to_string());
            env.insert(
                "GITHUB_STEP_SUMMARY".into(),
                summary_file.display().to_string(),
            );
            let code = if uses.starts_with("actions/checkout@") {
                self.checkout(&with, &ws)
            } else if uses.starts_with("actions/upload-artifact@") {
                self.upload(&with)
            } else if uses.starts_with("actions/download-artifact@") {
                self.download(&with, &ws)
            } else if uses.starts_with("docker://") {
                let args = with.get("args").expect("a docker:// step passes `args`");
                assert!(
                    with.keys().all(|k| k == "args"),
                    "docker:// step inputs: {with:?}"
                );
                let args: Vec<&str> = args.split_whitespace().collect();
                Self::exec(&args, env, &ws, &mut result)
            } else if uses.starts_with("octo-org/agent-gate@") {
                // The runner gives a container action every input of its action.yml, as
                // `INPUT_<NAME>` (upper-cased, dashes kept), the default when `with:` has none.
                let inputs = self.action["inputs"].as_object().unwrap();
                for key in with.keys() {
                    assert!(
                        inputs.contains_key(key),
                        "the example passes `{key}`, which action.yml does not declare"
                    );
                }
                for (input, spec) in inputs {
                    let value = with
                        .get(input)
                        .cloned()
                        .unwrap_or_else(|| spec.get("default").map(text_of).unwrap_or_default());
                    env.insert(format!("INPUT_{}", input.to_uppercase()), value);
                }
                // The one difference from GitHub: the API is the simulator.
                env.insert("INPUT_API-URL".into(), self.sim_url.clone());
                let args: Vec<String> = self.action["runs"]["args"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(text_of)
                    .collect();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                Self::exec(&args, env, &ws, &mut result)
            } else {
                panic!("the example uses `{uses}`, which this runner does not know")
            };
            result.exits.push((id.clone(), code));
            for (k, v) in read_outputs(&output_file) {
                ctx.set(format!("steps.{id}.outputs.{k}"), v);
            }
            result
                .summary
                .push_str(&std::fs::read_to_string(&summary_file).unwrap_or_default());
            if code != 0 {
                result.success = false;
            }
        }
        if let Some(outputs) = job.get("outputs").and_then(Value::as_object) {
            for (k, v) in outputs {
                result
                    .outputs
                    .insert(k.clone(), ctx.interpolate(&text_of(v)));
            }
        }
        result
    }

    fn exec(
        args: &[&str],
        env: BTreeMap<String, String>,
        ws: &Path,
        result: &mut JobResult,
    ) -> i32 {
        let out = Cli::new()
            .args(args)
            .env_clear()
            .envs(env)
            .current_dir(ws)
            .run();
        let stdout = String::from_utf8_lossy(&out.stdout);
        result.stdout.push_str(&stdout);
        eprintln!(
            "agent-gate {args:?} in {}: {:?}\n{stdout}{}",
            ws.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.status.code().unwrap_or(-1)
    }

    fn checkout(&self, with: &BTreeMap<String, String>, ws: &Path) -> i32 {
        for key in with.keys() {
            assert!(
                ["repository", "token", "fetch-depth", "persist-credentials"]
                    .contains(&key.as_str()),
                "checkout input {key}"
            );
        }
        let repository = with
            .get("repository")
            .map_or(WORKFLOW_REPOSITORY, String::as_str);
        if let Some(token) = with.get("token") {
            assert!(!token.is_empty(), "checkout's token is set from a secret");
        }
        let remote = &self.remotes[repository];
        git(
            &self.root,
            &[
                "clone",
                "-q",
                remote.to_str().unwrap(),
                ws.to_str().unwrap(),
            ],
        );
        0
    }

    fn artifacts(&self) -> PathBuf {
        self.root.join(format!("artifacts-{}", self.attempt))
    }

    /// `path: DIR/*.jsonl`: the matched files at the artifact's root.
    fn upload(&self, with: &BTreeMap<String, String>) -> i32 {
        let (dir, pattern) = with["path"].rsplit_once('/').unwrap();
        let suffix = pattern.strip_prefix('*').expect("a `*.ext` pattern");
        let target = self.artifacts().join(&with["name"]);
        std::fs::create_dir_all(&target).unwrap();
        let mut found = 0;
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.ends_with(suffix) {
                std::fs::copy(entry.path(), target.join(&name)).unwrap();
                found += 1;
            }
        }
        assert!(found > 0, "upload of {}: no files", with["path"]);
        0
    }

    /// `pattern: PREFIX*` into `path/<artifact name>/` (several artifacts, not merged).
    fn download(&self, with: &BTreeMap<String, String>, ws: &Path) -> i32 {
        let prefix = with["pattern"]
            .strip_suffix('*')
            .expect("a `prefix*` pattern");
        let target = ws.join(&with["path"]);
        for entry in std::fs::read_dir(self.artifacts()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with(prefix) {
                let to = target.join(&name);
                std::fs::create_dir_all(&to).unwrap();
                for file in std::fs::read_dir(entry.path()).unwrap().flatten() {
                    std::fs::copy(file.path(), to.join(file.file_name())).unwrap();
                }
            }
        }
        0
    }
}

/// The matrix jobs of `strategy.matrix: ${{ fromJSON(X) }}`.
fn expand_matrix(strategy: &Value, ctx: &Contexts) -> Vec<BTreeMap<String, String>> {
    let expr = text_of(&strategy["matrix"]);
    let inner = expr
        .trim()
        .strip_prefix("${{")
        .and_then(|e| e.strip_suffix("}}"))
        .map(str::trim)
        .and_then(|e| e.strip_prefix("fromJSON("))
        .and_then(|e| e.strip_suffix(')'))
        .unwrap_or_else(|| panic!("strategy.matrix is `{expr}`, not fromJSON(…)"));
    let matrix: Value = serde_json::from_str(ctx.get(inner)).expect("the matrix output is JSON");
    let object = matrix
        .as_object()
        .expect("fromJSON gives the matrix object");
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        ["include"],
        "plan's matrix has only `include`"
    );
    object["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            entry
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), text_of(v)))
                .collect()
        })
        .collect()
}

fn read_audit(dir: &Path) -> Vec<Value> {
    let mut events = Vec::new();
    for file in std::fs::read_dir(dir).unwrap().flatten() {
        let text = std::fs::read_to_string(file.path()).unwrap();
        events.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
    }
    events
}

fn event<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == kind)
        .unwrap_or_else(|| panic!("no `{kind}` event in {events:?}"))
}

/// The tasks GitHub (the simulator) has on one repository, read with `agent-gate status`.
fn tasks_on(sim_url: &str, repository: &str) -> Vec<Value> {
    let out = Cli::new()
        .args(["status", "--format", "json", "--repository", repository])
        .args(["--api-url", sim_url])
        .env_clear()
        .env("INPUT_TOKEN", "ghp_fleet_agent")
        .run();
    assert!(
        out.status.success(),
        "status {repository}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .or_else(|| v["tasks"].as_array())
        .unwrap_or_else(|| panic!("status JSON: {v}"))
        .clone()
}

#[test]
fn the_nightly_example_runs_as_written() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let workflow: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/workflows/nightly-migration.yml"
        ))
        .unwrap(),
    )
    .unwrap();
    let action: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/action.yml")).unwrap(),
    )
    .unwrap();

    // GitHub: the workflow's repository (with the manifest) and three targets, each with
    // its own policy; the simulator serves each from its own bare repository.
    let mut remotes = BTreeMap::new();
    remotes.insert(
        WORKFLOW_REPOSITORY.to_string(),
        bare_repo(
            root,
            WORKFLOW_REPOSITORY,
            &[(".github/agent-gate-nightly.yml", MANIFEST)],
            false,
        ),
    );
    remotes.insert(
        "octo-org/payments".into(),
        bare_repo(
            root,
            "octo-org/payments",
            &[
                ("README.md", "payments\n"),
                (".github/agent-gate.yml", OPEN_POLICY),
            ],
            false,
        ),
    );
    remotes.insert(
        "octo-org/ledger".into(),
        bare_repo(
            root,
            "octo-org/ledger",
            &[
                ("README.md", "ledger\n"),
                (".github/agent-gate.yml", LEDGER_POLICY),
            ],
            false,
        ),
    );
    // No .github/agent-gate.yml here: only the entry's `policy:` makes the run work.
    remotes.insert(
        "octo-org/docs".into(),
        bare_repo(
            root,
            "octo-org/docs",
            &[
                ("README.md", "docs\n"),
                (".github/gate-docs.yml", OPEN_POLICY),
            ],
            true,
        ),
    );
    let mut sim = Command::new(BIN);
    sim.args(["sim", "--port", "0", "--time-scale", "600", "--repo"])
        .arg(root.join("unnamed.git"));
    for (slug, dir) in &remotes {
        sim.arg("--serve").arg(format!("{slug}={}", dir.display()));
    }
    let mut sim = Killed(
        sim.env_clear()
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    BufReader::new(sim.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let sim_url = first
        .trim()
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("sim's first line: {first:?}"))
        .to_string();

    for (slug, dir) in &remotes {
        let at = root.join("server").join(format!("{slug}.git"));
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(dir, at).unwrap();
    }
    let mut runner = Runner {
        root: root.to_path_buf(),
        sim_url: sim_url.clone(),
        remotes,
        action,
        attempt: 1,
    };
    let mut ctx = Contexts::default();
    ctx.set("secrets.AGENT_TASKS_TOKEN", "ghp_fleet_agent");
    ctx.set("secrets.FLEET_REPO_TOKEN", "ghs_fleet_repo");
    let jobs = workflow["jobs"].as_object().unwrap();
    assert_eq!(
        jobs.keys().collect::<Vec<_>>(),
        ["migrate", "plan", "report"],
        "the example's jobs"
    );

    // plan
    let plan = runner.run_job("plan", &jobs["plan"], &ctx, "0");
    assert!(plan.success, "plan: {:?}", plan.exits);
    for (k, v) in &plan.outputs {
        ctx.set(format!("needs.plan.outputs.{k}"), v.clone());
    }
    ctx.set("needs.plan.result", "success");
    let migrate = &jobs["migrate"];
    assert!(ctx.condition(&text_of(&migrate["if"])));
    let matrix = expand_matrix(&migrate["strategy"], &ctx);
    assert_eq!(matrix.len(), 3, "{matrix:?}");

    // migrate: every matrix job, `max-parallel` at a time.
    let max_parallel =
        usize::try_from(migrate["strategy"]["max-parallel"].as_u64().unwrap()).unwrap();
    let run_matrix = |runner: &Runner| -> Vec<JobResult> {
        let mut results = Vec::new();
        for (chunk_no, chunk) in matrix.chunks(max_parallel).enumerate() {
            std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, entry)| {
                        let index = chunk_no * max_parallel + i;
                        let mut job_ctx = ctx.clone();
                        for (k, v) in entry {
                            job_ctx.set(format!("matrix.{k}"), v.clone());
                        }
                        job_ctx.set("strategy.job-index", index.to_string());
                        // The job's name is evaluated, so its expressions must exist.
                        let title = job_ctx.interpolate(&text_of(&migrate["name"]));
                        assert!(title.contains(&entry["task-key"]), "job name {title}");
                        s.spawn(move || {
                            runner.run_job("migrate", migrate, &job_ctx, &index.to_string())
                        })
                    })
                    .collect();
                results.extend(handles.into_iter().map(|h| h.join().unwrap()));
            });
        }
        results
    };
    let results = run_matrix(&runner);

    // Each job gated its own repository, under its own policy.
    let expect = [
        ("octo-org/payments", 0, "passed", "low", "main"),
        ("octo-org/ledger", 11, "scope-violation", "low", "main"),
        ("octo-org/docs", 0, "passed", "high", "release"),
    ];
    for (index, entry) in matrix.iter().enumerate() {
        let repository = &entry["repository"];
        let (_, code, verdict, priority, base) = *expect
            .iter()
            .find(|e| e.0 == repository)
            .unwrap_or_else(|| panic!("unexpected repository {repository}"));
        let gate = results[index]
            .exits
            .iter()
            .find(|(id, _)| id == "gate")
            .unwrap_or_else(|| panic!("{repository}: the gate step did not run"));
        assert_eq!(gate.1, code, "{repository}: exit of the gate step");
        // The upload ran after a failed gate too (`if: !cancelled()`).
        let audit = runner.artifacts().join(format!("agent-gate-audit-{index}"));
        let events = read_audit(&audit);
        let trigger = event(&events, "trigger");
        assert_eq!(trigger["repository"], repository.as_str());
        assert_eq!(trigger["workflow_repository"], WORKFLOW_REPOSITORY);
        assert_eq!(event(&events, "admission")["priority"], priority);
        assert_eq!(event(&events, "change")["repository"], repository.as_str());
        assert_eq!(event(&events, "change")["base"], base);
        assert_eq!(event(&events, "verdict")["verdict"], verdict);
        let task = event(&events, "task");
        assert_eq!(task["key"], entry["task-key"].as_str());
        let on_github = tasks_on(&sim_url, repository);
        assert_eq!(on_github.len(), 1, "{repository}: {on_github:?}");
        assert_eq!(on_github[0]["id"], task["id"]);
    }
    assert!(
        tasks_on(&sim_url, WORKFLOW_REPOSITORY).is_empty(),
        "no task lands on the workflow's own repository"
    );

    // The batch was paced (tasks-per-minute: 60): one task a second, in plan order.
    let mut created: Vec<jiff::Timestamp> = (0..matrix.len())
        .map(|index| {
            let events = read_audit(&runner.artifacts().join(format!("agent-gate-audit-{index}")));
            let planned: jiff::Timestamp = matrix[index]["not-before"].parse().unwrap();
            let at: jiff::Timestamp = event(&events, "task")["time"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                at >= planned,
                "job {index}: task at {at}, its turn at {planned}"
            );
            at
        })
        .collect();
    created.sort();
    assert!(
        created[2].duration_since(created[0]) >= jiff::SignedDuration::from_millis(1500),
        "{created:?}"
    );

    // Every job's writes were paced on one ledger, in the workflow's repository (the
    // example's `write-pace`), and each run says so.
    let claims = |dir: &Path| {
        let out = std::process::Command::new("git")
            .args([
                "for-each-ref",
                "--format=%(refname)",
                "refs/agent-gate/pace/writes/",
            ])
            .current_dir(dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    // Each job writes at least its task, a commit status and a comment.
    assert!(
        claims(&runner.remotes[WORKFLOW_REPOSITORY]) >= 3 * matrix.len(),
        "too few claims in the workflow's repository"
    );
    for target in ["octo-org/payments", "octo-org/ledger", "octo-org/docs"] {
        assert_eq!(claims(&runner.remotes[target]), 0, "{target}");
    }
    for (index, result) in results.iter().enumerate() {
        let note = result
            .summary
            .lines()
            .find(|l| l.starts_with("- write pace 1/s, 480/h"))
            .unwrap_or_else(|| panic!("job {index}: no pace note in {}", result.summary));
        assert!(
            note.contains(&format!("/server/{WORKFLOW_REPOSITORY}.git"))
                && note.contains("write&#40;s&#41; timed"),
            "job {index}: {note}"
        );
    }

    // report
    let report = &jobs["report"];
    assert!(ctx.condition(&text_of(&report["if"])));
    let done = runner.run_job("report", report, &ctx, "0");
    // The report summarises; the failed migrate job already failed the workflow.
    assert_eq!(done.exits.last().unwrap().1, 0, "{:?}", done.exits);
    for (repository, _, verdict, _, _) in expect {
        let row = done
            .summary
            .lines()
            .find(|l| l.starts_with(&format!("| {repository} |")))
            .unwrap_or_else(|| panic!("no row for {repository} in\n{}", done.summary));
        assert!(row.contains(verdict), "{row}");
        assert!(done.stdout.contains(repository), "{}", done.stdout);
    }
    assert!(!done.summary.contains(".jsonl |"), "{}", done.summary);
    // The review load of the repositories whose policy caps it, as their runs counted it.
    for repository in ["octo-org/payments", "octo-org/docs"] {
        assert!(
            done.summary.contains(&format!("| {repository} | 0 | 5 |")),
            "{}",
            done.summary
        );
    }
    assert!(!done.summary.contains("| octo-org/ledger | 0 |"));

    // Re-running the night's matrix jobs (attempt 2) attaches to the same tasks.
    runner.attempt = 2;
    let again = run_matrix(&runner);
    for (index, entry) in matrix.iter().enumerate() {
        let repository = &entry["repository"];
        assert_eq!(tasks_on(&sim_url, repository).len(), 1, "{repository}");
        let events = read_audit(&runner.artifacts().join(format!("agent-gate-audit-{index}")));
        assert_eq!(event(&events, "task")["action"], "attached", "{repository}");
        assert!(!again[index].exits.is_empty());
    }

    // Both nights' artifacts in one report: a re-run that attached is the same task.
    let both = root.join("both");
    for attempt in [1, 2] {
        let from = root.join(format!("artifacts-{attempt}"));
        for artifact in std::fs::read_dir(&from).unwrap().flatten() {
            let to = both.join(format!(
                "{attempt}-{}",
                artifact.file_name().to_string_lossy()
            ));
            std::fs::create_dir_all(&to).unwrap();
            for f in std::fs::read_dir(artifact.path()).unwrap().flatten() {
                std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
            }
        }
    }
    let summary = root.join("both-summary.md");
    std::fs::write(&summary, "").unwrap();
    let out = Cli::new()
        .args(["report", "--format", "json"])
        .arg(&both)
        .env_clear()
        .env("GITHUB_STEP_SUMMARY", &summary)
        .run();
    assert!(out.status.success());
    let fleet: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(fleet["runs_read"], 6, "{fleet}");
    let rows = fleet["runs"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{fleet}");
    assert_eq!(fleet["totals"]["passed"], 2);
    assert_eq!(fleet["totals"]["scope-violation"], 1);
    let markdown = std::fs::read_to_string(&summary).unwrap();
    assert!(
        markdown.contains("3 tasks (6 runs, re-runs included): 2 passed, 1 scope-violation"),
        "{markdown}"
    );
    for row in rows {
        assert_eq!(row["attempts"], 2, "{row}");
        assert_eq!(
            row["run_url"],
            format!(
                "file://{}/server/octo-org/fleet-ops/actions/runs/777/attempts/2",
                root.display()
            ),
            "{row}"
        );
        // The task id is written as it is (no `&#50;` for a leading digit).
        let id8: String = row["task_id"].as_str().unwrap().chars().take(8).collect();
        assert!(
            markdown.contains(&format!("| [{id8}](")),
            "{id8}: {markdown}"
        );
    }
    drop(sim);
}

/// `sim --serve` takes `OWNER/REPO=DIR`, and refuses anything else before serving.
#[test]
fn sim_serve_refuses_what_is_not_owner_repo_equals_dir() {
    let dir = tempfile::tempdir().unwrap();
    for (arg, says) in [
        ("octo-org/ledger", "expected OWNER/REPO=DIR"),
        ("octo-org/ledger=", "expected OWNER/REPO=DIR"),
        (
            "octo--org/ledger=/tmp/x.git",
            "--serve octo--org/ledger=/tmp/x.git: ",
        ),
        ("ledger=/tmp/x.git", "--serve ledger=/tmp/x.git: "),
    ] {
        let out = Cli::new()
            .args(["sim", "--port", "0", "--serve", arg, "--repo"])
            .arg(dir.path().join("default.git"))
            .env_clear()
            .run();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{arg}: {stderr}");
        assert!(stderr.contains(says), "{arg}: {stderr}");
        assert!(out.stdout.is_empty(), "{arg}: nothing served");
        assert!(
            !dir.path().join("default.git").exists(),
            "{arg}: nothing created"
        );
    }
}

/// A `not-before` that is not a time is a configuration error, before anything starts.
#[test]
fn a_not_before_that_is_not_a_time_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = Cli::new()
        .arg("run")
        .current_dir(dir.path())
        .env_clear()
        .env("INPUT_NOT-BEFORE", "after lunch")
        .env("INPUT_INSTRUCTION", "x")
        .run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not-before `after lunch` is not a time like 2026-03-10T02:17:40Z"),
        "{stderr}"
    );
}
