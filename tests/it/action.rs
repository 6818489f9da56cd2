//! The binary run exactly as the Actions runner starts the container: the environment the
//! runner builds (every input as `INPUT_*`, the `GITHUB_*` set, file-command files, a
//! workspace owned by another uid), against the in-process simulator. Asserts the outputs
//! (parsed back with the runner's rules), the step summary, the audit record, that the
//! workspace is left as it was, and that a canary token appears nowhere.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use agent_gate::adapters::actions::parse_file_command;
use agent_gate::sim::{SimConfig, start};

use crate::support::{Cli, git_in as git};

const CANARY: &str = "ghp_CANARY0123456789abcdefCANARY";
const CANARY2: &str = "ghs_CANARY2workflowtoken987654";

fn snapshot_workspace(ws: &Path) -> (String, String, String) {
    // No optional locks: reading must not rewrite the index as root.
    let safe = ["--no-optional-locks", "-c", "safe.directory=*"];
    let run = |args: &[&str]| {
        let mut all = safe.to_vec();
        all.extend_from_slice(args);
        git(ws, &all)
    };
    (
        run(&["rev-parse", "HEAD"]),
        run(&["status", "--porcelain", "--ignored"]),
        run(&["for-each-ref"]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root (the container case); .ci/run runs it: cargo test --test it -- --ignored as_root"]
async fn as_root_the_action_runs_like_the_runner_starts_it() {
    super::support::require_root();
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bare = root.path().join("github.git");
    let sim = start(
        SimConfig {
            time_scale: 50.0,
            ..SimConfig::new(&bare)
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();

    // The workspace, as actions/checkout leaves it: the token persisted in .git/config.
    let ws = root.path().join("workspace");
    let out = Command::new("git")
        .args(["clone", "-q"])
        .arg(&bare)
        .arg(&ws)
        .output()
        .unwrap();
    assert!(out.status.success());
    git(&ws, &["config", "user.email", "ci@example.com"]);
    git(&ws, &["config", "user.name", "CI"]);
    std::fs::create_dir_all(ws.join(".github")).unwrap();
    let policy = format!(
        "version: 1\nagent:\n  poll: {{ initial: 1s, max: 2s }}\nchecks:\n  - name: file exists\n    run: test -f agent-gate-sim.txt\n  - name: agent output\n    run: \"echo '::warning title=x::from the agent'\"\n  - name: canary hunt\n    run: \"! grep -rqs {CANARY} /proc/[0-9]*/environ {ws}/.git/config\"\n",
        ws = ws.display()
    );
    std::fs::write(ws.join(".github/agent-gate.yml"), policy).unwrap();
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-qm", "policy"]);
    git(&ws, &["push", "-q", "origin", "main"]);
    git(
        &ws,
        &[
            "config",
            "http.https://github.com/.extraheader",
            &format!("AUTHORIZATION: basic {CANARY}"),
        ],
    );
    // The workspace is a bind mount owned by the host runner user, not by the gate.
    let chown = Command::new("chown")
        .args(["-R", "1001:1001"])
        .arg(&ws)
        .status()
        .unwrap();
    assert!(chown.success());
    let before = snapshot_workspace(&ws);

    let temp = root.path().join("runner_temp");
    let files = temp.join("_runner_file_commands");
    std::fs::create_dir_all(&files).unwrap();
    let output_file = files.join("set_output_1");
    let summary_file = files.join("step_summary_1");
    std::fs::write(&output_file, "").unwrap();
    std::fs::write(&summary_file, "").unwrap();
    let event = temp.join("event.json");
    std::fs::write(&event, "{}").unwrap();
    let home = temp.join("_github_home");
    std::fs::create_dir_all(&home).unwrap();
    // RUNNER_TEMP is the runner's too.
    let chown = Command::new("chown")
        .args(["-R", "1001:1001"])
        .arg(&temp)
        .status()
        .unwrap();
    assert!(chown.success());

    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in [
        ("INPUT_INSTRUCTION", "add the sim file"),
        ("INPUT_SCOPE", ""),
        ("INPUT_POLICY", ".github/agent-gate.yml"),
        ("INPUT_TOKEN", CANARY),
        ("INPUT_GITHUB-TOKEN", CANARY2),
        ("INPUT_BASE-REF", ""),
        ("INPUT_TIMEOUT", "5m"),
        ("INPUT_TASK-ID", ""),
        ("INPUT_TASK-KEY", ""),
        ("INPUT_DRY-RUN", "false"),
        ("INPUT_MODEL", ""),
        ("INPUT_CUSTOM-AGENT", ""),
        ("INPUT_PRIORITY", "normal"),
        ("GITHUB_ACTIONS", "true"),
        ("CI", "true"),
        ("GITHUB_REPOSITORY", "octo/demo"),
        ("GITHUB_RUN_ID", "4242"),
        ("GITHUB_RUN_ATTEMPT", "1"),
        ("GITHUB_JOB", "gate"),
        ("GITHUB_ACTION", "__run"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_EVENT_NAME", "workflow_dispatch"),
        ("GITHUB_TOKEN", CANARY2),
    ] {
        env.insert(k.to_string(), v.to_string());
    }
    env.insert("INPUT_API-URL".into(), sim.url());
    env.insert("GITHUB_WORKSPACE".into(), ws.display().to_string());
    env.insert("GITHUB_OUTPUT".into(), output_file.display().to_string());
    env.insert(
        "GITHUB_STEP_SUMMARY".into(),
        summary_file.display().to_string(),
    );
    env.insert("GITHUB_EVENT_PATH".into(), event.display().to_string());
    env.insert("RUNNER_TEMP".into(), temp.display().to_string());
    env.insert("HOME".into(), home.display().to_string());
    env.insert("PATH".into(), std::env::var("PATH").unwrap());

    let ws2 = ws.clone();
    let out = Cli::new()
        .arg("run")
        .current_dir(&ws2)
        .clean_env()
        .envs(&env)
        .run_async()
        .await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );

    // Output of agent-written code is fenced by `::stop-commands::`, so a line it prints
    // that looks like a workflow command is not one.
    let lines: Vec<&str> = stdout.lines().collect();
    let fake = lines
        .iter()
        .position(|l| *l == "::warning title=x::from the agent")
        .expect("the check's output is in the log");
    let stop = lines[..fake]
        .iter()
        .rposition(|l| l.starts_with("::stop-commands::"))
        .expect("commands stopped before it");
    let token = lines[stop].trim_start_matches("::stop-commands::");
    assert!(token.len() >= 16, "a one-time token");
    assert!(
        lines[fake..].contains(&format!("::{token}::").as_str()),
        "commands resumed after it"
    );

    // Masks come first, before anything else is printed.
    assert!(stdout.starts_with("::add-mask::"), "{stdout}");

    let outputs: BTreeMap<String, String> =
        parse_file_command(&std::fs::read_to_string(&output_file).unwrap())
            .unwrap()
            .into_iter()
            .collect();
    for name in agent_gate::flow::publish::outputs::NAMES {
        assert!(
            outputs.contains_key(name),
            "output {name} missing: {outputs:?}"
        );
    }
    assert_eq!(outputs["verdict"], "passed");
    assert_eq!(outputs["task-state"], "completed");
    assert_eq!(outputs["pr-number"], "1");
    assert_eq!(outputs["changed-files"], "1");
    assert_eq!(sim.tasks().len(), 1);
    assert_eq!(outputs["task-id"], sim.tasks()[0].id);
    let checks: serde_json::Value = serde_json::from_str(&outputs["checks"]).unwrap();
    assert_eq!(checks.as_array().unwrap().len(), 3);
    assert!(
        checks
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "passed"),
        "{checks}"
    );

    // The review gate: a success status on the gated commit, with the workflow token, and
    // one summary comment on the pull request.
    let statuses = sim.statuses();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0].sha, outputs["head-sha"]);
    assert_eq!(statuses[0].status.state, "success");
    assert_eq!(statuses[0].status.context.as_deref(), Some("agent-gate"));
    assert_eq!(
        statuses[0].status.target_url.as_deref(),
        Some("https://github.com/octo/demo/actions/runs/4242")
    );
    let comments = sim.comments();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(comments[0].issue_number, 1);
    assert!(
        comments[0].body.contains("agent-gate:review"),
        "{}",
        comments[0].body
    );
    assert!(!comments[0].body.contains(CANARY) && !comments[0].body.contains(CANARY2));

    let summary = std::fs::read_to_string(&summary_file).unwrap();
    assert!(summary.contains("passed"), "{summary}");
    assert!(summary.contains("agent-gate-sim.txt"), "{summary}");

    let audit_path = Path::new(&outputs["audit-file"]);
    assert!(audit_path.starts_with(&temp), "{audit_path:?}");
    let audit = std::fs::read_to_string(audit_path).unwrap();
    let events: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.iter().all(|e| e["schema"] == 1));
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    for k in ["trigger", "task", "change", "check", "verdict"] {
        assert!(kinds.contains(&k), "audit event {k} missing: {kinds:?}");
    }

    // `::add-mask::` lines carry the secret to the runner, which hides it from then on.
    let stdout: String = stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n");
    for (what, text) in [
        ("stdout", &stdout),
        ("stderr", &stderr),
        ("outputs", &std::fs::read_to_string(&output_file).unwrap()),
        ("summary", &summary),
        ("audit", &audit),
    ] {
        assert!(!text.contains(CANARY), "the token leaked into {what}");
        assert!(
            !text.contains(CANARY2),
            "the workflow token leaked into {what}"
        );
    }

    assert_eq!(
        snapshot_workspace(&ws),
        before,
        "the workspace must be left as it was"
    );
    // Everything the gate (root) wrote under the runner's workspace is the runner's again: a
    // root-owned `.git/objects/xx/` would make the next step's `git commit` fail.
    let mut foreign = crate::support::owned_by_others(&ws, 1001);
    foreign.extend(crate::support::owned_by_others(&temp, 1001));
    assert!(
        foreign.is_empty(),
        "left owned by another uid than the workspace's: {foreign:?}"
    );
    sim.shutdown().await;
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionInput {
    description: String,
    #[serde(default)]
    required: bool,
    default: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionOutput {
    description: String,
}

#[derive(Debug, serde::Deserialize)]
struct ActionYml {
    name: String,
    description: String,
    inputs: BTreeMap<String, ActionInput>,
    outputs: BTreeMap<String, ActionOutput>,
    runs: BTreeMap<String, serde_json::Value>,
}

fn action_yml() -> ActionYml {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/action.yml")).unwrap();
    serde_saphyr::from_str(&text).expect("action.yml parses")
}

/// action.yml declares exactly the inputs the `run` command reads (DESIGN §4), with the
/// same defaults, and exactly the outputs the gate writes.
#[test]
fn action_yml_and_the_cli_agree() {
    use clap::CommandFactory;
    let action = action_yml();
    assert_eq!(action.name, "agent-gate");
    assert!(!action.description.is_empty());
    assert_eq!(action.runs["using"], "docker");
    assert_eq!(action.runs["image"], "Dockerfile");
    assert_eq!(action.runs["args"], serde_json::json!(["run"]));

    let cli = agent_gate::cli::Cli::command();
    let run = cli.find_subcommand("run").expect("run subcommand");
    let mut cli_inputs: BTreeMap<String, Option<String>> = BTreeMap::new();
    for arg in run.get_arguments() {
        let Some(env) = arg.get_env() else { continue };
        let env = env.to_string_lossy();
        if let Some(name) = env.strip_prefix("INPUT_") {
            let default = arg
                .get_default_values()
                .first()
                .map(|v| v.to_string_lossy().into_owned());
            cli_inputs.insert(name.to_ascii_lowercase(), default);
        }
    }
    let declared: Vec<&String> = action.inputs.keys().collect();
    let read: Vec<&String> = cli_inputs.keys().collect();
    assert_eq!(
        declared, read,
        "action.yml inputs vs INPUT_* variables the run command reads"
    );

    for (name, input) in &action.inputs {
        assert!(
            !input.description.trim().is_empty(),
            "input {name} needs a description"
        );
        assert!(
            !input.required,
            "inputs are optional (the runner does not enforce `required`)"
        );
        let cli_default = cli_inputs[name].clone();
        let yml_default = input.default.clone().filter(|d| !d.is_empty());
        match (
            name.as_str(),
            yml_default.as_deref(),
            cli_default.as_deref(),
        ) {
            // Expressions the runner evaluates (the CLI falls back to the same values), and
            // empty defaults in action.yml, which mean "not given" as in the CLI.
            ("github-token", Some("${{ github.token }}"), None)
            | ("api-url", Some("${{ github.api_url }}"), Some("https://api.github.com"))
            | (_, None, None | Some("")) => {}
            (_, y, c) => assert_eq!(y, c, "default of input {name}"),
        }
    }

    let outputs: Vec<&str> = action.outputs.keys().map(String::as_str).collect();
    let mut written: Vec<&str> = agent_gate::flow::publish::outputs::NAMES.to_vec();
    written.sort_unstable();
    assert_eq!(
        outputs, written,
        "action.yml outputs vs the outputs the gate writes"
    );
    assert!(action.outputs.values().all(|o| !o.description.is_empty()));
}

/// The release commit's `action.yml` (`.ci/pin-image`, run by the release workflow): the same
/// inputs and outputs, the image pulled by digest instead of the Dockerfile built; anything
/// but a reference pinned by digest is refused and the file left as it was.
#[test]
fn the_release_pins_action_yml_to_the_published_image_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("action.yml");
    let original =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/action.yml")).unwrap();
    std::fs::write(&file, &original).unwrap();
    let pin = |reference: &str| {
        Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/pin-image"))
            .arg(reference)
            .arg(&file)
            .output()
            .unwrap()
    };

    for bad in [
        "ghcr.io/octo-org/agent-gate:1",
        "ghcr.io/octo-org/agent-gate@sha256:abc",
        "ghcr.io/octo-org/agent-gate@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
    ] {
        let out = pin(bad);
        assert_eq!(out.status.code(), Some(2), "{bad} must be refused");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("pinned by digest"),
            "{out:?}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), original);
    }

    let digest = "sha256:8f14e45fceea167a5a36dedd4bea2543ce3a0c5f0b5b6b4f0bf0b6e0c1d2e3f4";
    let out = pin(&format!("ghcr.io/octo-org/agent-gate@{digest}"));
    assert!(out.status.success(), "{out:?}");
    let pinned: ActionYml = serde_saphyr::from_str(&std::fs::read_to_string(&file).unwrap())
        .expect("the pinned action.yml parses");
    let main = action_yml();
    assert_eq!(
        pinned.runs["image"],
        format!("docker://ghcr.io/octo-org/agent-gate@{digest}")
    );
    assert_eq!(pinned.runs["using"], "docker");
    assert_eq!(pinned.runs["args"], main.runs["args"]);
    assert_eq!(
        pinned.inputs.keys().collect::<Vec<_>>(),
        main.inputs.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        pinned.outputs.keys().collect::<Vec<_>>(),
        main.outputs.keys().collect::<Vec<_>>()
    );
    // Pinning twice finds no Dockerfile line left: an error, not a silent no-op.
    let again = pin(&format!("ghcr.io/octo-org/agent-gate@{digest}"));
    assert_eq!(again.status.code(), Some(1), "{again:?}");
}

/// The README's claim about `run`'s flags holds: each is readable from its Action input
/// variable, except `--repository` (`GITHUB_REPOSITORY`) and the CLI-only flags the README
/// names, which are exactly those without a variable.
#[test]
fn the_readme_names_every_run_flag_without_an_input_variable() {
    use clap::CommandFactory;
    let cli = agent_gate::cli::Cli::command();
    let run = cli.find_subcommand("run").expect("run subcommand");
    let mut without: Vec<String> = Vec::new();
    for arg in run.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        match arg.get_env().map(|e| e.to_string_lossy().into_owned()) {
            Some(env) if env == format!("INPUT_{}", long.to_ascii_uppercase()) => {}
            Some(env) if long == "repository" && env == "GITHUB_REPOSITORY" => {}
            Some(env) => panic!("--{long} reads {env}, not its input variable"),
            None => without.push(format!("`--{long}`")),
        }
    }
    without.sort();
    assert_eq!(
        without,
        [
            "`--audit-file`",
            "`--format`",
            "`--github-token-file`",
            "`--jobs`",
            "`--remote`",
            "`--repo`",
            "`--token-file`"
        ]
    );
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .unwrap()
        .replace('\n', " ");
    let claim = readme
        .split_once("Seven flags are the CLI's only, with no input: ")
        .expect("the README names the CLI-only flags")
        .1;
    let claim = &claim[..claim.find(" (in Actions").expect("end of the list")];
    let mut named: Vec<&str> = claim
        .split([',', ' '])
        .filter(|w| w.starts_with('`'))
        .collect();
    named.sort_unstable();
    assert_eq!(named, without, "README: {claim}");
}
