//! The gate's own cost around the agent (issue 10): time to verdict, start-up, memory, and
//! the overhead of running checks.
//!
//! - **Time to verdict**: a generated repository (built with `git fast-import`) whose
//!   `agent` branch changes 10, 1,000 or 50,000 files (half modified, half added). A fresh
//!   clone holding only `main` is the workspace; timed is what `run` does once the task is
//!   `completed`: fetch the agent's branch (`Git::fetch`), then `flow::check` (policy read
//!   at the base, `git diff` with renames, the scope decision for every path, the tree
//!   exported for the checks, one check of `true`, the report). The check's own run time is
//!   subtracted.
//! - **Start-up**: `agent-gate status` against the in-process simulator: from spawning the
//!   process to the first request reaching the simulator (its request log's arrival stamp).
//! - **Peak RSS**: `/usr/bin/time -v agent-gate check` on a 100,000-file change (the
//!   maximum resident set of the gate and of the largest process it waited for, e.g. git).
//! - **Checks overhead**: the checks phase alone (`checks::run_checks` on a small exported
//!   tree, as `check` calls it, isolation included): 8 checks of `true` with one job, per
//!   check, against a plain `bash` loop running `bash -c true` 8 times; 8 checks of
//!   `sleep 1` with two jobs.
//!
//! - **Admission lock**: one admission decision under the lock (`LeaseStore::try_lock`, then
//!   `commit` writing the waiting note) against a bare repository on the same disk: the git
//!   processes the lock costs per check, without the network (on GitHub each of its three
//!   remote operations adds a round trip).
//!
//! Run: `cargo bench --bench gate`, or `bench/run.sh`. `BENCH_QUICK=1` runs each once;
//! `BENCH_ONLY=verdict,startup,rss,checks,lock` (any of them) runs only those parts, for
//! iterating (its Markdown is then partial).

mod common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent_gate::adapters::checks;
use agent_gate::adapters::git::Git;
use agent_gate::adapters::shutdown::Shutdown;
use agent_gate::core::policy::Policy;
use agent_gate::core::report::{Report, Verdict};
use agent_gate::flow::admission::Priority;
use agent_gate::flow::lease::{Commit, LeaseStore, LockAttempt};
use agent_gate::flow::{CheckOptions, check};
use agent_gate::sim::{self, SimConfig};
use common::{Section, human, median, thousands};

const HEAD_REF: &str = "refs/agent-gate/head";
const BIN: &str = env!("CARGO_BIN_EXE_agent-gate");

/// The policies committed on `main`; each bench picks one with `--policy`.
const POLICIES: &[(&str, &str)] = &[
    (
        ".github/agent-gate.yml",
        "- name: noop\n    run: \"true\"\n",
    ),
    ("bench/none.yml", ""),
    (
        "bench/true8.yml",
        "- { name: t1, run: \"true\" }\n  - { name: t2, run: \"true\" }\n  - { name: t3, run: \"true\" }\n  - { name: t4, run: \"true\" }\n  - { name: t5, run: \"true\" }\n  - { name: t6, run: \"true\" }\n  - { name: t7, run: \"true\" }\n  - { name: t8, run: \"true\" }\n",
    ),
    (
        "bench/sleep8.yml",
        "- { name: s1, run: sleep 1 }\n  - { name: s2, run: sleep 1 }\n  - { name: s3, run: sleep 1 }\n  - { name: s4, run: sleep 1 }\n  - { name: s5, run: sleep 1 }\n  - { name: s6, run: sleep 1 }\n  - { name: s7, run: sleep 1 }\n  - { name: s8, run: sleep 1 }\n",
    ),
];

fn policy_text(checks: &str) -> String {
    let checks = if checks.is_empty() {
        "checks: []\n".to_string()
    } else {
        format!("checks:\n  {checks}")
    };
    format!(
        "version: 1\nscope:\n  allow: [\"src/**\", \"tests/**\"]\n  deny: [\"**/*.pem\", \"src/secrets/**\"]\n  \
         max-files: 1000000\n  max-changed-lines: 100000000\nchecks-isolation: best-effort\n{checks}"
    )
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?} failed in {}", dir.display());
}

/// Path of the i-th generated source file: 40 files per directory, three levels.
fn source_path(prefix: &str, i: usize) -> String {
    format!("src/{prefix}{}/m{}/f{i}.rs", i / 4000, (i / 40) % 100)
}

fn inline(stream: &mut Vec<u8>, path: &str, content: &[u8]) {
    let _ = writeln!(stream, "M 100644 inline {path}\ndata {}", content.len());
    stream.extend_from_slice(content);
    stream.push(b'\n');
}

fn commit_header(stream: &mut Vec<u8>, branch: &str, message: &str, time: u64) {
    let _ = writeln!(
        stream,
        "commit refs/heads/{branch}\ncommitter Bench <bench@example.com> {time} +0000\ndata {}\n{message}",
        message.len()
    );
}

/// A bare repository: `main` with the policies, 2,000 unrelated files and `change / 2`
/// files the change modifies; `agent` modifying those and adding `change - change / 2`.
fn origin(dir: &Path, change: usize) -> PathBuf {
    let bare = dir.join(format!("origin-{change}.git"));
    if bare.exists() {
        return bare;
    }
    std::fs::create_dir_all(&bare).expect("mkdir");
    git(&bare, &["init", "-q", "--bare", "-b", "main"]);
    let modified = change / 2;
    let mut stream = Vec::new();
    commit_header(&mut stream, "main", "base", 1_700_000_000);
    for (path, checks) in POLICIES {
        inline(&mut stream, path, policy_text(checks).as_bytes());
    }
    for i in 0..2000 {
        inline(
            &mut stream,
            &format!("docs/d{}/page{i}.md", i / 50),
            format!("# page {i}\n\nunchanged\n").as_bytes(),
        );
    }
    for i in 0..modified {
        let body = format!("pub fn f{i}() -> u32 {{\n    {i}\n}}\n");
        inline(&mut stream, &source_path("a", i), body.as_bytes());
    }
    commit_header(&mut stream, "agent", "the agent's change", 1_700_000_600);
    stream.extend_from_slice(b"from refs/heads/main\n");
    for i in 0..modified {
        let body = format!("pub fn f{i}() -> u32 {{\n    {i} + 1\n}}\n");
        inline(&mut stream, &source_path("a", i), body.as_bytes());
    }
    for i in 0..change - modified {
        let body = format!("pub fn g{i}() -> u32 {{\n    {i}\n}}\n");
        inline(&mut stream, &source_path("b", i), body.as_bytes());
    }
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(&bare)
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&stream)
        .expect("feed fast-import");
    assert!(child.wait().expect("fast-import").success());
    bare
}

/// A fresh workspace: a clone of `main` only (over git's transport, so the agent's objects
/// must really be fetched).
fn workspace(dir: &Path, origin: &Path, name: &str) -> PathBuf {
    let ws = dir.join(name);
    if ws.exists() {
        std::fs::remove_dir_all(&ws).expect("remove old workspace");
    }
    git(
        dir,
        &[
            "clone",
            "-q",
            "--no-local",
            "--single-branch",
            "--branch",
            "main",
            &origin.to_string_lossy(),
            name,
        ],
    );
    ws
}

fn fetch_head(ws: &Path) -> Duration {
    let start = Instant::now();
    Git::new(ws)
        .fetch("origin", &[&format!("+refs/heads/agent:{HEAD_REF}")])
        .expect("fetch the agent's branch");
    start.elapsed()
}

fn run_check(
    rt: &tokio::runtime::Runtime,
    ws: &Path,
    policy: &str,
    jobs: Option<usize>,
) -> (Duration, Report) {
    let opts = CheckOptions {
        repo: ws.to_path_buf(),
        base: "main".into(),
        head: HEAD_REF.into(),
        policy_path: policy.into(),
        scope: agent_gate::core::scope::ScopeInput::default(),
        jobs,
    };
    let start = Instant::now();
    let report = rt.block_on(check(opts, Shutdown::never()));
    (start.elapsed(), report)
}

fn checks_own(report: &Report) -> Duration {
    Duration::from_millis(report.checks.iter().map(|c| c.duration_ms).sum())
}

fn expect_passed(report: &Report, files: usize) {
    assert_eq!(
        report.verdict,
        Verdict::Passed,
        "the benchmark change should pass: {:?} {:?}",
        report.errors,
        report.violations.first()
    );
    assert_eq!(report.files.len(), files, "every changed file is reported");
}

/// Whether `part` is to be measured (`BENCH_ONLY` unset, or naming it).
fn wanted(part: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| {
        only.is_empty() || only.split(',').any(|p| p.trim() == part)
    })
}

/// A directory for the tree export made as `check` makes its checks directory: a new
/// directory marked as the top of unrelated trees (`FS_TOPDIR_FL`, best effort), the tree
/// under a new name inside it.
fn export_dir(dir: &Path, run: usize) -> (PathBuf, PathBuf) {
    let root = dir.join(format!("export-{run}-{}", std::process::id()));
    std::fs::create_dir_all(&root).expect("mkdir");
    if let Ok(file) = std::fs::File::open(&root)
        && let Ok(flags) = rustix::fs::ioctl_getflags(&file)
    {
        let _ = rustix::fs::ioctl_setflags(&file, flags | rustix::fs::IFlags::TOPDIR);
    }
    let tree = root.join(format!("tree-{}", uuid::Uuid::new_v4().simple()));
    (root, tree)
}

fn main() {
    let quick = common::quick();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();

    // Time to verdict.
    let mut verdict = Section::new(
        "verdict",
        "Time to verdict, without the checks' own time",
        "From the task reaching `completed` to the verdict: fetch the agent's branch into a \
         fresh clone of `main`, then `check` (policy at the base, `git diff` with renames, scope \
         decision for every path, the head tree exported for the checks, one check of `true`, \
         the report), minus that check's own run time. Half the files modified, half added; \
         2,000 unchanged files beside them. The export writes the whole head tree (changed or \
         not), so it grows with the repository, not with the change; `check` writes it with \
         git's parallel checkout into a checks directory marked as the top of unrelated trees \
         (`FS_TOPDIR_FL`), so ext4 puts it in a block group of its own. The last column is the \
         same export into a plain new directory beside the workspace, for comparison: on this \
         machine (ext4 without a journal, a busy `/tmp`) creating a file there costs up to \
         about 0.7 ms (`docs/benchmarks.md`).",
        &[
            "files changed",
            "fetch",
            "check − checks' own time",
            "time to verdict (median)",
            "of which tree export",
            "same export, plain temp dir",
            "runs",
        ],
    );
    let sizes: &[(usize, usize)] = if wanted("verdict") {
        &[(10, 7), (1000, 5), (50_000, 3)]
    } else {
        &[]
    };
    for &(change, runs) in sizes {
        let runs = if quick { 1 } else { runs };
        let origin = origin(dir, change);
        let mut fetches = Vec::new();
        let mut checks = Vec::new();
        let mut totals = Vec::new();
        let mut exports = Vec::new();
        let mut plain_exports = Vec::new();
        for run in 0..runs {
            let ws = workspace(dir, &origin, "ws");
            let fetch = fetch_head(&ws);
            let (took, report) = run_check(&rt, &ws, ".github/agent-gate.yml", None);
            expect_passed(&report, change);
            let gate = took.saturating_sub(checks_own(&report));
            fetches.push(fetch);
            checks.push(gate);
            totals.push(fetch + gate);
            // The export alone, as `check` does it for the checks (into a new directory).
            let (root, dest) = export_dir(dir, run);
            let start = Instant::now();
            Git::new(&ws).export_tree(HEAD_REF, &dest).expect("export");
            exports.push(start.elapsed());
            std::fs::remove_dir_all(&root).expect("remove export");
            // The same export into a plain new directory beside the workspace (no hint): what
            // this machine's file system charges without a block group of its own.
            let plain = dir.join(format!("plain-{run}"));
            let start = Instant::now();
            Git::new(&ws).export_tree(HEAD_REF, &plain).expect("export");
            plain_exports.push(start.elapsed());
            std::fs::remove_dir_all(&plain).expect("remove export");
        }
        println!(
            "{change:>6} files: fetch {} check−own {} total {}",
            human(median(&fetches)),
            human(median(&checks)),
            human(median(&totals))
        );
        verdict.row(&[
            thousands(change),
            human(median(&fetches)),
            human(median(&checks)),
            format!("**{}**", human(median(&totals))),
            human(median(&exports)),
            human(median(&plain_exports)),
            runs.to_string(),
        ]);
    }
    verdict.finish();

    let mut other = Section::new(
        "startup",
        "Start-up, memory, checks overhead",
        "",
        &["what", "measured", "reference", "runs"],
    );
    if wanted("startup") {
        startup(&rt, dir, quick, &mut other);
    }
    if wanted("rss") {
        peak_rss(dir, &mut other);
    }
    if wanted("checks") {
        checks_overhead(&rt, dir, quick, &mut other);
    }
    if wanted("lock") {
        admission_lock(dir, quick, &mut other);
    }
    other.finish();
}

/// One admission decision under the lock against a bare repository on the same disk.
fn admission_lock(dir: &Path, quick: bool, out: &mut Section) {
    let runs = if quick { 3 } else { 31 };
    let origin = dir.join("lock-origin.git");
    git(
        dir,
        &["init", "-q", "--bare", origin.to_str().expect("utf-8")],
    );
    let ws = dir.join("lock-ws");
    git(dir, &["init", "-q", ws.to_str().expect("utf-8")]);
    git(
        &ws,
        &["remote", "add", "origin", origin.to_str().expect("utf-8")],
    );
    let mut store = LeaseStore::new(
        Git::new(&ws),
        "origin",
        None,
        "bench-key",
        Priority::Normal,
        "bench-run",
    );
    let decisions: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let now = jiff::Timestamp::now().as_second();
            let held = store.try_lock(now).expect("lock");
            assert!(matches!(held, LockAttempt::Held(_)), "{held:?}");
            let done = store.commit(false, true, now).expect("commit");
            assert!(matches!(done, Commit::Done(None)), "{done:?}");
            start.elapsed()
        })
        .collect();
    store.withdraw();
    let decision = median(&decisions);
    println!("admission lock: one decision {}", human(decision));
    out.row(&[
        "admission lock: one decision (take the lock, read the notes, release it with the waiting note), bare remote on the same disk".into(),
        format!("**{}**", human(decision)),
        "three remote git operations; on GitHub each adds a network round trip".into(),
        runs.to_string(),
    ]);
}

/// `agent-gate status` against the simulator: spawn → first request, and the whole process.
fn startup(rt: &tokio::runtime::Runtime, dir: &Path, quick: bool, out: &mut Section) {
    let runs = if quick { 1 } else { 15 };
    let handle = rt
        .block_on(sim::start(
            SimConfig::new(dir.join("sim.git")),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        ))
        .expect("simulator");
    let url = handle.url();
    let mut first = Vec::new();
    let mut whole = Vec::new();
    for _ in 0..runs {
        let before = handle.request_log().len();
        let wall = jiff::Timestamp::now();
        let start = Instant::now();
        let status = Command::new(BIN)
            .args([
                "status",
                "--repository",
                "octo-org/payments",
                "--api-url",
                &url,
            ])
            .env("INPUT_TOKEN", "ghu_bench_startup")
            .stdout(Stdio::null())
            .status()
            .expect("agent-gate status");
        whole.push(start.elapsed());
        assert!(status.success(), "agent-gate status failed");
        let log = handle.request_log();
        let arrived = log.get(before).expect("a request reached the simulator").at;
        let since = arrived.duration_since(wall);
        first.push(Duration::try_from(since).unwrap_or_default());
    }
    drop(handle);
    println!(
        "start-up: first request {} (whole `status` {})",
        human(median(&first)),
        human(median(&whole))
    );
    out.row(&[
        "start-up: process start → first request at the simulator (`agent-gate status`)".into(),
        format!("**{}**", human(median(&first))),
        format!(
            "target < 50 ms; whole `status` run {}",
            human(median(&whole))
        ),
        runs.to_string(),
    ]);
}

/// Peak RSS of `agent-gate check` on a 100,000-file change, through `/usr/bin/time -v`.
fn peak_rss(dir: &Path, out: &mut Section) {
    const CHANGE: usize = 100_000;
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        println!("peak RSS: /usr/bin/time not found (apt-get install time), skipped");
        out.row(&[
            "peak RSS of `check`, 100,000 files".into(),
            "not measured: install GNU time (`apt-get install time`)".into(),
            String::new(),
            String::new(),
        ]);
        return;
    }
    let origin = origin(dir, CHANGE);
    let ws = workspace(dir, &origin, "ws-rss");
    fetch_head(&ws);
    let start = Instant::now();
    let output = Command::new(time)
        .arg("-v")
        .arg(BIN)
        .args([
            "check", "--base", "main", "--head", HEAD_REF, "--format", "json", "--repo",
        ])
        .arg(&ws)
        .stdout(Stdio::null())
        .output()
        .expect("/usr/bin/time -v agent-gate check");
    let took = start.elapsed();
    assert!(
        output.status.success(),
        "agent-gate check failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mb = max_rss_mb(&String::from_utf8_lossy(&output.stderr));
    // Which process peaked: the largest git child (the diff with rename detection), alone.
    let rev = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(&ws)
            .output()
            .expect("git");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let merge_base = rev(&["merge-base", "main", HEAD_REF]);
    let head = rev(&["rev-parse", HEAD_REF]);
    let diff = Command::new(time)
        .arg("-v")
        .args([
            "git",
            "diff",
            "--raw",
            "--numstat",
            "-z",
            "-M",
            "-C",
            "--no-abbrev",
            &merge_base,
            &head,
            "--",
        ])
        .current_dir(&ws)
        .stdout(Stdio::null())
        .output()
        .expect("/usr/bin/time -v git diff");
    let git_mb = max_rss_mb(&String::from_utf8_lossy(&diff.stderr));
    println!(
        "peak RSS, check on {CHANGE} files: {mb:.0} MB in {} (git diff alone: {git_mb:.0} MB)",
        human(took)
    );
    out.row(&[
        "peak RSS of `agent-gate check`, 100,000 files changed".into(),
        format!("**{mb:.0} MB**"),
        format!(
            "target < 100 MB; its `git diff` alone: {git_mb:.0} MB; the run took {}",
            human(took)
        ),
        "1".into(),
    ]);
}

/// GNU time's "Maximum resident set size", in MB.
fn max_rss_mb(stderr: &str) -> f64 {
    let kb: u64 = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .expect("GNU time prints the maximum resident set size");
    #[allow(clippy::cast_precision_loss)]
    let mb = kb as f64 / 1024.0;
    mb
}

/// The checks phase alone (`checks::run_checks` on an exported tree, as `check` calls it):
/// 8 × `true` with one job, per check, against a bash loop; 8 × `sleep 1` with two jobs.
fn checks_overhead(rt: &tokio::runtime::Runtime, dir: &Path, quick: bool, out: &mut Section) {
    let runs = if quick { 1 } else { 7 };
    let tree = dir.join("checks-tree");
    std::fs::create_dir_all(tree.join("src")).expect("mkdir");
    std::fs::write(tree.join("src/lib.rs"), "pub fn f() {}\n").expect("write");
    let root = dir.join("checks-root");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let phase = |policy: &str, jobs: usize| {
        let checks = POLICIES
            .iter()
            .find(|(p, _)| *p == policy)
            .map(|(_, c)| *c)
            .expect("policy");
        let policy = Policy::from_yaml(&policy_text(checks), policy).expect("policy");
        let planned = checks::plan(&policy.checks, &[]);
        let opts = checks::RunOptions {
            jobs,
            isolation: policy.checks_isolation,
            env: std::env::vars_os().collect(),
            temp_dir: Some(root.clone()),
            ..checks::RunOptions::default()
        };
        let start = Instant::now();
        let run = rt.block_on(checks::run_checks(
            &tree,
            planned,
            &opts,
            std::future::pending::<()>(),
        ));
        let took = start.elapsed();
        assert!(
            run.outcomes
                .iter()
                .all(|o| matches!(o.status, checks::CheckStatus::Passed)),
            "every benchmark check passes"
        );
        took
    };
    let eight: Vec<Duration> = (0..runs).map(|_| phase("bench/true8.yml", 1)).collect();
    let per_check = median(&eight) / 8;
    let shell: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let ok = Command::new("bash")
                .args(["-c", "for i in 1 2 3 4 5 6 7 8; do bash -c true; done"])
                .status()
                .expect("bash")
                .success();
            assert!(ok);
            start.elapsed()
        })
        .collect();
    let shell = median(&shell) / 8;
    println!(
        "checks: per `true` check {} vs bash loop {}",
        human(per_check),
        human(shell)
    );
    out.row(&[
        "checks phase: 8 checks of `true`, `--jobs 1`, per check".into(),
        format!("**{}** per check", human(per_check)),
        format!(
            "plain bash loop: {} per `bash -c true` (×{:.1})",
            human(shell),
            per_check.as_secs_f64() / shell.as_secs_f64().max(1e-9)
        ),
        runs.to_string(),
    ]);
    let sleep_runs = if quick { 1 } else { 3 };
    let sleeps: Vec<Duration> = (0..sleep_runs)
        .map(|_| phase("bench/sleep8.yml", 2))
        .collect();
    let sleeps = median(&sleeps);
    println!("checks: 8 × sleep 1 with --jobs 2: {}", human(sleeps));
    out.row(&[
        "checks phase: 8 checks of `sleep 1`, `--jobs 2`".into(),
        format!("**{}**", human(sleeps)),
        "ideal 4 s on 2 cores".into(),
        sleep_runs.to_string(),
    ]);
}
