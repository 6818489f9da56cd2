//! The admission lock across runs (issue 8): the refs under `refs/agent-gate/admission/` on
//! a bare repository standing in for the remote — the lock excludes, a stale lock is taken
//! over, leases and waiting notes count as `occupancy` says — and then several `run`
//! processes started at once against one simulator: with `max-concurrent-tasks: 2` the
//! simulator never sees more than two tasks unfinished at once, and a waiting high-priority
//! run gets the next free slot before a normal one that waited longer.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use agent_gate::adapters::git::Git;
use agent_gate::adapters::github::{Client, ClientConfig};
use agent_gate::core::prompt::marker;
use agent_gate::flow::admission::{
    Admission, AdmissionLimits, LeaseUse, Priority, WaitInfo, admit,
};
use agent_gate::flow::lease::{
    Entry, Held, LeaseStore, LeaseTimes, LockAttempt, Note, NoteKind, Snapshot, occupancy,
};
use agent_gate::sim::{Scenario, SimHandle};

use crate::support::{Cli, CliOutput, git_in as git, start_sim};

const REPOSITORY: &str = "octo/fleet";
const TOKEN: &str = "ghp_admission_lock";

/// The admission refs on `bare`: `(name, subject)`.
/// The admission refs on the remote (lock, leases, waiting notes), with their notes.
fn remote_refs(bare: &Path) -> Vec<(String, String)> {
    refs_under(bare, "refs/agent-gate/admission/")
}

fn refs_under(bare: &Path, prefix: &str) -> Vec<(String, String)> {
    git(
        bare,
        &[
            "for-each-ref",
            "--format=%(refname)%00%(contents:subject)",
            prefix,
        ],
    )
    .lines()
    .filter_map(|l| {
        let (n, s) = l.split_once('\0')?;
        Some((n.to_string(), s.to_string()))
    })
    .collect()
}

/// A bare "remote" holding `main` with `policy`, and a way to clone workspaces of it.
struct Remote {
    root: tempfile::TempDir,
    bare: PathBuf,
}

impl Remote {
    fn new(policy: &str) -> Remote {
        let root = tempfile::tempdir().expect("temp dir");
        let bare = root.path().join("remote.git");
        let seed = root.path().join("seed");
        git(
            root.path(),
            &["init", "-q", "-b", "main", seed.to_str().unwrap()],
        );
        std::fs::create_dir_all(seed.join(".github")).unwrap();
        std::fs::write(seed.join(".github/agent-gate.yml"), policy).unwrap();
        std::fs::write(seed.join("README.md"), "fleet\n").unwrap();
        git(&seed, &["add", "-A"]);
        git(&seed, &["commit", "-q", "-m", "seed"]);
        git(
            root.path(),
            &[
                "clone",
                "-q",
                "--bare",
                seed.to_str().unwrap(),
                bare.to_str().unwrap(),
            ],
        );
        Remote { root, bare }
    }

    /// A fresh clone (one matrix job's workspace).
    fn workspace(&self, name: &str) -> PathBuf {
        let ws = self.root.path().join(name);
        git(
            self.root.path(),
            &[
                "clone",
                "-q",
                self.bare.to_str().unwrap(),
                ws.to_str().unwrap(),
            ],
        );
        ws
    }

    fn store(ws: &Path, key: &str, priority: Priority, run: &str) -> LeaseStore {
        LeaseStore::new(Git::new(ws), "origin", None, key, priority, run)
    }

    /// The store of run `run-mine` (key `mine`), whose git gives up on the remote after 5 s.
    fn impatient_store(ws: &Path) -> LeaseStore {
        let git = Git::new(ws).with_timeout(Duration::from_secs(5));
        LeaseStore::new(git, "origin", None, "mine", Priority::Normal, "run-mine")
    }

    /// Install a pre-receive hook that declines every push touching refs matching `pattern`
    /// (a shell `case` pattern), as a ruleset would.
    fn decline(&self, pattern: &str) {
        let hook = self.bare.join("hooks/pre-receive");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\nwhile read old new ref; do case \"$ref\" in {pattern}) echo \"protected: $ref\" >&2; exit 1;; esac; done\nexit 0\n"
            ),
        )
        .unwrap();
        let mut perms = std::fs::metadata(&hook).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&hook, perms).unwrap();
    }

    /// Make the remote apply the next update that writes `name`, then not answer for 30 s (its
    /// `reference-transaction` hook sleeps once the ref is written): the client's git times
    /// out although the push took effect. Returns the file that says it happened.
    fn hang_once_after_writing(&self, name: &str) -> PathBuf {
        let once = self
            .root
            .path()
            .join(format!("hung-{}", name.replace('/', "-")));
        let hook = self.bare.join("hooks/reference-transaction");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\n[ \"$1\" = committed ] || exit 0\nwhile read old new ref; do\n  if [ \"$ref\" = {name} ] && [ \"$new\" != 0000000000000000000000000000000000000000 ] && [ ! -e {once} ]; then\n    touch {once}; sleep 30\n  fi\ndone\nexit 0\n",
                once = once.display()
            ),
        )
        .unwrap();
        let mut perms = std::fs::metadata(&hook).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&hook, perms).unwrap();
        once
    }

    /// Write an admission ref directly on the remote, as another (maybe dead) run would have.
    fn plant(&self, name: &str, kind: NoteKind, key: &str, priority: &str, age: Duration) {
        let note = Note {
            kind,
            key: key.to_string(),
            priority: priority.to_string(),
            at: jiff::Timestamp::now().as_second() - i64::try_from(age.as_secs()).unwrap(),
            poll_s: 1,
        };
        let ws = self.root.path().join("seed");
        let id = Git::new(&ws)
            .note_commit(&serde_json::to_string(&note).unwrap())
            .unwrap();
        git(
            &ws,
            &[
                "push",
                "-q",
                "--force",
                self.bare.to_str().unwrap(),
                &format!("{id}:{name}"),
            ],
        );
    }
}

const LOCK_POLICY: &str = "version: 1\nscope:\n  allow: [\"**\"]\n";

#[test]
fn the_lock_excludes_a_second_run_until_it_is_released() {
    let remote = Remote::new(LOCK_POLICY);
    let (wa, wb) = (remote.workspace("a"), remote.workspace("b"));
    let mut a = Remote::store(&wa, "key-a", Priority::Normal, "run-a");
    let mut b = Remote::store(&wb, "key-b", Priority::Normal, "run-b");
    let now = jiff::Timestamp::now().as_second();
    assert!(matches!(a.try_lock(now).unwrap(), LockAttempt::Held(_)));
    assert_eq!(
        b.try_lock(now).unwrap(),
        LockAttempt::Busy {
            holder: Some("key-a".to_string())
        }
    );
    // A takes a lease and releases the lock in one push; B then holds the lock and sees it.
    let agent_gate::flow::lease::Commit::Done(Some(held)) = a.commit(true, false, now).unwrap()
    else {
        panic!("a's commit");
    };
    assert_eq!(held.name, "refs/agent-gate/admission/leases/run-a");
    let LockAttempt::Held(snap) = b.try_lock(now).unwrap() else {
        panic!("b gets the lock once a released it");
    };
    assert_eq!(snap.leases.len(), 1);
    let note = snap.leases[0].note.as_ref().expect("a readable note");
    assert_eq!((note.kind, note.key.as_str()), (NoteKind::Lease, "key-a"));
    // B waits: its waiting note replaces the lock.
    b.commit(false, true, now).unwrap();
    let names: Vec<String> = remote_refs(&remote.bare).into_iter().map(|r| r.0).collect();
    assert_eq!(
        names,
        [
            "refs/agent-gate/admission/leases/run-a",
            "refs/agent-gate/admission/waiting/run-b"
        ]
    );
    // Dropping the stores gives the lease back and withdraws nothing else.
    drop(a);
    b.withdraw();
    assert!(
        remote_refs(&remote.bare).is_empty(),
        "{:?}",
        remote_refs(&remote.bare)
    );
    // The mirrored refs of the workspaces are gone with the stores.
    drop(b);
    for ws in [&wa, &wb] {
        assert_eq!(git(ws, &["for-each-ref", "refs/agent-gate/"]), "");
    }
}

#[test]
fn a_stale_lock_is_taken_over_and_a_fresh_one_is_not() {
    let remote = Remote::new(LOCK_POLICY);
    let ws = remote.workspace("a");
    let mut store = Remote::store(&ws, "key-a", Priority::Normal, "run-a");
    let now = jiff::Timestamp::now().as_second();
    remote.plant(
        "refs/agent-gate/admission/lock",
        NoteKind::Lock,
        "crashed",
        "normal",
        Duration::from_secs(30),
    );
    assert_eq!(
        store.try_lock(now).unwrap(),
        LockAttempt::Busy {
            holder: Some("crashed".to_string())
        }
    );
    remote.plant(
        "refs/agent-gate/admission/lock",
        NoteKind::Lock,
        "crashed",
        "normal",
        LeaseTimes::default().lock_stale + Duration::from_secs(1),
    );
    assert!(matches!(store.try_lock(now).unwrap(), LockAttempt::Held(_)));
    let lock = remote_refs(&remote.bare);
    assert_eq!(lock.len(), 1);
    assert!(lock[0].1.contains("\"key-a\""), "{lock:?}");
}

fn entry(name: &str, kind: NoteKind, key: &str, priority: &str, age_s: i64) -> Entry {
    Entry {
        name: name.to_string(),
        id: "0".repeat(40),
        note: Some(Note {
            kind,
            key: key.to_string(),
            priority: priority.to_string(),
            at: 1_000_000 - age_s,
            poll_s: 5,
        }),
    }
}

#[test]
fn occupancy_counts_young_leases_and_leases_of_running_tasks_once() {
    let times = LeaseTimes::default();
    let grace = i64::try_from(times.lease_grace.as_secs()).unwrap();
    let snap = Snapshot {
        lock: None,
        leases: vec![
            // Admitted a moment ago, task not listed yet: holds a slot.
            entry("l/young", NoteKind::Lease, "k-young", "normal", 5),
            // Old, but its task runs: one slot with the task, not two.
            entry(
                "l/running",
                NoteKind::Lease,
                "k-running",
                "normal",
                grace + 60,
            ),
            // Old and its task is not running: nobody holds it.
            entry("l/dead", NoteKind::Lease, "k-dead", "normal", grace + 60),
            // This run's own (from an earlier attempt): never counted.
            entry("l/own", NoteKind::Lease, "me", "normal", 1),
            // Not a note at all: presumed stale.
            Entry {
                name: "l/junk".into(),
                id: "1".repeat(40),
                note: None,
            },
        ],
        waiting: vec![],
    };
    let keys = vec!["k-running".to_string(), "k-other".to_string()];
    let occ = occupancy(&snap, &keys, "me", Priority::Normal, 1_000_000, times);
    assert_eq!(occ.running, 3, "k-running, k-other, k-young");
    assert_eq!(occ.ahead, 0);
    let dead: Vec<&str> = occ.dead.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(dead, ["l/dead", "l/junk"]);
}

#[test]
fn occupancy_puts_fresh_waiters_of_higher_priority_ahead() {
    let times = LeaseTimes::default();
    let stale = i64::try_from(times.waiting_grace.as_secs()).unwrap() + 3 * 5 + 1;
    let snap = Snapshot {
        lock: None,
        leases: vec![],
        waiting: vec![
            entry("w/high", NoteKind::Waiting, "k-high", "high", 2),
            entry("w/high-again", NoteKind::Waiting, "k-high", "high", 1),
            entry("w/normal", NoteKind::Waiting, "k-normal", "normal", 2),
            entry("w/low", NoteKind::Waiting, "k-low", "low", 2),
            entry("w/stale-high", NoteKind::Waiting, "k-gone", "high", stale),
        ],
    };
    let at = |p| occupancy(&snap, &[], "me", p, 1_000_000, times);
    assert_eq!(at(Priority::High).ahead, 0, "nobody is ahead of high");
    assert_eq!(at(Priority::Normal).ahead, 1, "one high run (two notes)");
    assert_eq!(at(Priority::Low).ahead, 2, "the high and the normal run");
    let dead: Vec<String> = at(Priority::Low).dead.into_iter().map(|e| e.name).collect();
    assert_eq!(dead, ["w/stale-high"]);
}

/// `admit` with a store on `remote` and a simulator with no tasks: `max` slots, 2 s deadline.
async fn admit_with_store(
    sim: &SimHandle,
    store: &mut LeaseStore,
    max: u32,
    priority: Priority,
) -> Admission {
    admit_collecting(sim, store, max, priority).await.0
}

/// [`admit_with_store`], with the waits it reported.
async fn admit_collecting(
    sim: &SimHandle,
    store: &mut LeaseStore,
    max: u32,
    priority: Priority,
) -> (Admission, Vec<WaitInfo>) {
    let mut waits = Vec::new();
    let outcome = admit_watching(sim, store, max, priority, Duration::from_secs(2), |w| {
        waits.push(w);
    })
    .await;
    (outcome, waits)
}

/// `admit` with a store on `remote`, a simulator with no tasks, `max` slots, the deadline
/// `within` from now and `on_wait` told of every wait.
async fn admit_watching(
    sim: &SimHandle,
    store: &mut LeaseStore,
    max: u32,
    priority: Priority,
    within: Duration,
    on_wait: impl FnMut(WaitInfo),
) -> Admission {
    let client = Client::new(ClientConfig::new(TOKEN, "octo", "fleet").with_api_url(sim.url()))
        .expect("client");
    admit(
        &client,
        AdmissionLimits {
            max_concurrent: Some(max),
            reserved_for_high: 0,
        },
        priority,
        &marker(store.key()),
        tokio::time::Instant::now() + within,
        Duration::from_millis(200),
        Some(store),
        std::future::pending::<()>(),
        on_wait,
    )
    .await
}

/// The lease of an admission under the lock (else panic with `admitted`), checked to be the
/// only admission ref left on the remote (`left`).
fn only_lease_left(remote: &Remote, outcome: Admission, admitted: &str, left: &str) -> Held {
    let Admission::Admitted {
        lease: LeaseUse::Held(held),
        ..
    } = outcome
    else {
        panic!("{admitted}: {outcome:?}");
    };
    let names: Vec<String> = remote_refs(&remote.bare).into_iter().map(|r| r.0).collect();
    assert_eq!(names, std::slice::from_ref(&held.name), "{left}");
    held
}

async fn empty_sim(bare: &Path) -> SimHandle {
    start_sim(bare, Scenario::default(), 1.0).await
}

#[tokio::test]
async fn a_young_lease_of_another_run_holds_its_slot_and_a_dead_one_is_cleaned_up() {
    let remote = Remote::new(LOCK_POLICY);
    let sim = empty_sim(&remote.bare).await;
    let ws = remote.workspace("a");
    remote.plant(
        "refs/agent-gate/admission/leases/other",
        NoteKind::Lease,
        "other-key",
        "normal",
        Duration::from_secs(3),
    );
    let mut store = Remote::store(&ws, "mine", Priority::Normal, "run-mine");
    let outcome = admit_with_store(&sim, &mut store, 1, Priority::Normal).await;
    assert!(
        matches!(outcome, Admission::NeverAdmitted { running: 1, .. }),
        "the other run was admitted and its task is not listed yet: {outcome:?}"
    );
    assert!(
        remote_refs(&remote.bare)
            .iter()
            .all(|(n, _)| !n.ends_with("/lock") && !n.contains("/waiting/")),
        "no lock and no waiting note left behind: {:?}",
        remote_refs(&remote.bare)
    );

    // The same lease, written long ago by a run that died before starting its task.
    remote.plant(
        "refs/agent-gate/admission/leases/other",
        NoteKind::Lease,
        "other-key",
        "normal",
        LeaseTimes::default().lease_grace + Duration::from_secs(5),
    );
    let outcome = admit_with_store(&sim, &mut store, 1, Priority::Normal).await;
    only_lease_left(
        &remote,
        outcome,
        "admitted with a lease",
        "the dead lease was deleted",
    );
    store.release().unwrap();
    assert!(remote_refs(&remote.bare).is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_remote_that_cannot_be_written_leaves_admission_advisory_and_says_why() {
    let remote = Remote::new(LOCK_POLICY);
    let sim = empty_sim(&remote.bare).await;
    let ws = remote.workspace("a");
    let mut store = LeaseStore::new(
        Git::new(&ws),
        remote.root.path().join("missing.git").to_str().unwrap(),
        None,
        "mine",
        Priority::Normal,
        "run-mine",
    );
    let outcome = admit_with_store(&sim, &mut store, 1, Priority::Normal).await;
    let Admission::Admitted {
        lease: LeaseUse::Unavailable(why),
        ..
    } = outcome
    else {
        panic!("admitted without a lease: {outcome:?}");
    };
    assert!(
        why.contains("refs/agent-gate/admission/") && why.contains("missing.git"),
        "{why}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_remote_gone_for_a_moment_is_retried_and_the_lock_kept() {
    let remote = Remote::new(LOCK_POLICY);
    let sim = empty_sim(&remote.bare).await;
    let ws = remote.workspace("a");
    let other = "refs/agent-gate/admission/leases/other";
    remote.plant(
        other,
        NoteKind::Lease,
        "other-key",
        "normal",
        Duration::from_secs(3),
    );
    let mut store = Remote::store(&ws, "mine", Priority::Normal, "run-mine");
    let away = remote.root.path().join("away.git");
    let mut back = None;
    // The slot is taken; at the first wait the remote vanishes, and 1.5 s later it is back
    // with the other run's lease gone.
    let outcome = admit_watching(
        &sim,
        &mut store,
        1,
        Priority::Normal,
        Duration::from_secs(20),
        |_| {
            if back.is_none() {
                std::fs::rename(&remote.bare, &away).unwrap();
                let (away, bare) = (away.clone(), remote.bare.clone());
                back = Some(std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(1500));
                    std::fs::rename(&away, &bare).unwrap();
                    git(&bare, &["update-ref", "-d", other]);
                }));
            }
        },
    )
    .await;
    back.expect("the run waited").join().unwrap();
    only_lease_left(
        &remote,
        outcome,
        "admitted under the lock, not advisory",
        "only the lease is left",
    );
    store.release().unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn a_lock_taken_by_a_push_whose_answer_was_lost_is_recognised_as_its_own() {
    let remote = Remote::new(LOCK_POLICY);
    let sim = empty_sim(&remote.bare).await;
    let ws = remote.workspace("a");
    let other = "refs/agent-gate/admission/leases/other";
    remote.plant(
        other,
        NoteKind::Lease,
        "other-key",
        "normal",
        Duration::from_secs(3),
    );
    let mut store = Remote::impatient_store(&ws);
    let mut once = None;
    // At the first wait the slot frees, and the remote's next lock update is applied but
    // never answered: the hook sleeps past the client's timeout after the ref is written.
    let outcome = admit_watching(
        &sim,
        &mut store,
        1,
        Priority::Normal,
        Duration::from_secs(40),
        |_| {
            if once.is_none() {
                git(&remote.bare, &["update-ref", "-d", other]);
                once = Some(remote.hang_once_after_writing("refs/agent-gate/admission/lock"));
            }
        },
    )
    .await;
    assert!(once.is_some_and(|f| f.exists()), "the lock push hung once");
    only_lease_left(
        &remote,
        outcome,
        "admitted under the lock it had taken",
        "the lock was released",
    );
    store.release().unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn a_lease_written_by_a_push_whose_answer_was_lost_is_held() {
    let remote = Remote::new(LOCK_POLICY);
    let sim = empty_sim(&remote.bare).await;
    let ws = remote.workspace("a");
    let mut store = Remote::impatient_store(&ws);
    let once = remote.hang_once_after_writing("refs/agent-gate/admission/leases/run-mine");
    let outcome = admit_with_store(&sim, &mut store, 1, Priority::Normal).await;
    assert!(once.exists(), "the push of the lease hung once");
    let held = only_lease_left(
        &remote,
        outcome,
        "admitted with the lease the remote wrote, not advisory",
        "the lock was released",
    );
    assert_eq!(held.name, "refs/agent-gate/admission/leases/run-mine");
    store.release().unwrap();
    assert!(remote_refs(&remote.bare).is_empty());
    sim.shutdown().await;
}

// --- several `run` processes at once -------------------------------------------------------

/// One `agent-gate run` process in its own workspace.
fn spawn_run(
    remote: &Remote,
    sim: &SimHandle,
    name: &str,
    priority: &str,
) -> std::thread::JoinHandle<CliOutput> {
    let ws = remote.workspace(name);
    let cli = Cli::new()
        .arg("run")
        .args(["--repository", REPOSITORY])
        .args(["--api-url", &sim.url()])
        .args(["--instruction", &format!("Migrate {name}")])
        .args(["--task-key", &format!("fleet-{name}")])
        .args(["--priority", priority])
        .arg("--repo")
        .arg(&ws)
        .clean_env()
        .env("HOME", &ws)
        .env("INPUT_TOKEN", TOKEN);
    std::thread::spawn(move || cli.run())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn sim_with(remote: &Remote, scenario: &str) -> SimHandle {
    let scenario = Scenario::from_yaml(scenario, Path::new("fleet.yml"), remote.root.path())
        .expect("scenario");
    start_sim(&remote.bare, scenario, 1.0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_runs_started_together_never_have_more_than_two_tasks_at_once() {
    let remote = Remote::new(
        "version: 1\nagent:\n  max-concurrent-tasks: 2\n  timeout: 5m\n  poll: { initial: 1s, max: 1s }\nscope:\n  allow: [\"**\"]\n",
    );
    // Tasks long enough that all five runs have checked at least once before the first
    // ones end, however slowly the processes start.
    let sim = sim_with(
        &remote,
        "default: {queued: 0s, work: 3s, final: completed}\n",
    )
    .await;
    let names = ["r1", "r2", "r3", "r4", "r5"];
    let runs: Vec<_> = names
        .iter()
        .map(|n| spawn_run(&remote, &sim, n, "normal"))
        .collect();
    let outs: Vec<CliOutput> =
        tokio::task::spawn_blocking(move || runs.into_iter().map(|h| h.join().unwrap()).collect())
            .await
            .unwrap();
    for (name, out) in names.iter().zip(&outs) {
        assert_eq!(out.status.code(), Some(0), "{name}:\n{}", stderr(out));
    }
    assert_eq!(sim.tasks().len(), 5, "one task per run");
    assert_eq!(
        sim.peak_running("octo", "fleet"),
        2,
        "two at a time, never three"
    );
    let waited = outs
        .iter()
        .filter(|o| stderr(o).contains("waiting for capacity"))
        .count();
    assert!(waited >= 3, "at least three runs waited, {waited} did");
    // The task index records each run's task under its key (kept for re-runs).
    let mut indexed: Vec<String> = refs_under(&remote.bare, "refs/agent-gate/tasks/")
        .into_iter()
        .map(|(_, note)| {
            serde_json::from_str::<serde_json::Value>(&note).unwrap()["key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    indexed.sort();
    assert_eq!(
        indexed,
        ["fleet-r1", "fleet-r2", "fleet-r3", "fleet-r4", "fleet-r5"]
    );
    assert!(
        remote_refs(&remote.bare).is_empty(),
        "every lock, lease and waiting note is gone: {:?}",
        remote_refs(&remote.bare)
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_high_run_gets_the_free_slot_before_a_normal_run_that_waited_longer() {
    let remote = Remote::new(
        "version: 1\nagent:\n  max-concurrent-tasks: 1\n  timeout: 5m\n  poll: { initial: 1s, max: 1s }\nscope:\n  allow: [\"**\"]\n",
    );
    let sim = sim_with(
        &remote,
        "tasks:\n  - {match: Migrate busy, queued: 0s, work: 1s, final: never}\ndefault: {queued: 0s, work: 1s, final: completed}\n",
    )
    .await;
    let busy = spawn_run(&remote, &sim, "busy", "normal");
    let until = |what: &str, f: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !f() {
            assert!(start.elapsed() < Duration::from_mins(1), "{what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    until("the busy run's task starts", &|| sim.tasks().len() == 1);
    let waiting = |n: usize| {
        remote_refs(&remote.bare)
            .iter()
            .filter(|(r, _)| r.contains("/waiting/"))
            .count()
            >= n
    };
    let normal = spawn_run(&remote, &sim, "normal", "normal");
    until("the normal run waits", &|| waiting(1));
    let high = spawn_run(&remote, &sim, "high", "high");
    until("the high run waits too", &|| waiting(2));
    // The normal run checks again (every second) and sees the high one waiting: wait until
    // its waiting note was rewritten two seconds after the high run's, so that check read
    // the refs after the high run's note was there (however slow the machine). Then the
    // slot frees.
    let note_at = |key: &str| {
        remote_refs(&remote.bare)
            .iter()
            .filter(|(r, _)| r.contains("/waiting/"))
            .filter_map(|(_, subject)| serde_json::from_str::<Note>(subject).ok())
            .find(|n| n.key == key)
            .map(|n| n.at)
    };
    let high_at = note_at("fleet-high").expect("the high run's waiting note");
    until("the normal run checks again", &|| {
        note_at("fleet-normal").is_some_and(|at| at >= high_at + 2)
    });
    let busy_id = sim.tasks()[0].id.clone();
    assert!(sim.cancel_task(&busy_id));

    let (busy, normal, high) = tokio::task::spawn_blocking(move || {
        (
            busy.join().unwrap(),
            normal.join().unwrap(),
            high.join().unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(normal.status.code(), Some(0), "{}", stderr(&normal));
    assert_eq!(high.status.code(), Some(0), "{}", stderr(&high));
    assert_ne!(busy.status.code(), Some(0), "the busy task was stopped");
    let order: Vec<String> = sim
        .tasks()
        .iter()
        .map(|t| t.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(order.len(), 3, "{order:?}");
    assert!(
        order[1].contains("Migrate high") && order[2].contains("Migrate normal"),
        "the high run started before the normal one: {order:?}"
    );
    assert!(
        stderr(&normal).contains("1 higher-priority run waiting"),
        "{}",
        stderr(&normal)
    );
    assert_eq!(sim.peak_running("octo", "fleet"), 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_that_refuses_the_lock_refs_leaves_the_run_advisory_with_a_warning() {
    let remote = Remote::new(
        "version: 1\nagent:\n  max-concurrent-tasks: 1\n  timeout: 5m\n  poll: { initial: 1s, max: 1s }\nscope:\n  allow: [\"**\"]\n",
    );
    // As a ruleset on refs/agent-gate/* would: every push there is declined.
    remote.decline("refs/agent-gate/*");
    let sim = sim_with(
        &remote,
        "default: {queued: 0s, work: 1s, final: completed}\n",
    )
    .await;
    let run = spawn_run(&remote, &sim, "solo", "normal");
    let out = tokio::task::spawn_blocking(move || run.join().unwrap())
        .await
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: `")
            && err.contains("declines pushes to `refs/agent-gate/admission/*`"),
        "{err}"
    );
    let warning = err
        .lines()
        .find(|l| l.contains("warning:"))
        .expect("a warning line");
    insta::assert_snapshot!(warning);
    assert_eq!(sim.tasks().len(), 1, "the run still started its task");
    assert!(remote_refs(&remote.bare).is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_remote_that_declines_only_the_lease_is_a_refusal_not_a_retry_loop() {
    let remote = Remote::new(LOCK_POLICY);
    let sim = empty_sim(&remote.bare).await;
    let ws = remote.workspace("a");
    remote.decline("refs/agent-gate/admission/leases/*");
    let mut store = Remote::store(&ws, "mine", Priority::Normal, "run-mine");
    let outcome = admit_with_store(&sim, &mut store, 1, Priority::Normal).await;
    let Admission::Admitted {
        lease: LeaseUse::Unavailable(why),
        ..
    } = outcome
    else {
        panic!("admitted without a lease: {outcome:?}");
    };
    assert!(
        why.contains("declines pushes to `refs/agent-gate/admission/*`"),
        "{why}"
    );
    assert!(
        why.contains("leases/run-mine"),
        "names the declined ref: {why}"
    );
    assert!(
        remote_refs(&remote.bare).is_empty(),
        "the lock was released: {:?}",
        remote_refs(&remote.bare)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_lock_held_by_another_run_is_waited_for_and_reported() {
    let remote = Remote::new(LOCK_POLICY);
    let sim = empty_sim(&remote.bare).await;
    let ws = remote.workspace("a");
    // Another run took the lock 10 s ago and has not released it (not stale yet).
    remote.plant(
        "refs/agent-gate/admission/lock",
        NoteKind::Lock,
        "slow-run",
        "normal",
        Duration::from_secs(10),
    );
    let mut store = Remote::store(&ws, "mine", Priority::Normal, "run-mine");
    let (outcome, waits) = admit_collecting(&sim, &mut store, 2, Priority::Normal).await;
    assert!(
        matches!(outcome, Admission::NeverAdmitted { .. }),
        "a held lock is never bypassed: {outcome:?}"
    );
    assert!(!waits.is_empty(), "the wait for the lock is reported");
    assert!(
        waits
            .iter()
            .all(|w| w.lock_holder.as_deref() == Some("slow-run")),
        "{waits:?}"
    );
    assert!(
        waits[0]
            .to_string()
            .starts_with("waiting for the admission lock, held by slow-run"),
        "{}",
        waits[0]
    );
    sim.shutdown().await;
}

#[test]
fn status_admission_shows_the_lock_leases_and_waiting_runs() {
    let remote = Remote::new(LOCK_POLICY);
    let ws = remote.workspace("a");
    let status = |format: &str| {
        let out = Cli::new()
            .args(["status", "--admission", "--format", format, "--repo"])
            .arg(&ws)
            .run();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(status("text").starts_with("no admission refs on origin"));

    remote.plant(
        "refs/agent-gate/admission/lock",
        NoteKind::Lock,
        "deciding-run",
        "normal",
        Duration::from_secs(2),
    );
    remote.plant(
        "refs/agent-gate/admission/leases/r1",
        NoteKind::Lease,
        "nightly-svc-1",
        "normal",
        Duration::from_secs(40),
    );
    remote.plant(
        "refs/agent-gate/admission/waiting/r2",
        NoteKind::Waiting,
        "hotfix",
        "high",
        Duration::from_secs(5),
    );
    let text = status("text");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("ROLE"), "{text}");
    assert!(
        lines[1].starts_with("lock") && lines[1].ends_with("deciding-run"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("lease") && lines[2].ends_with("nightly-svc-1"),
        "{text}"
    );
    assert!(
        lines[3].starts_with("waiting")
            && lines[3].contains("high")
            && lines[3].ends_with("hotfix"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&status("json")).expect("json");
    let lease = &json[1];
    assert_eq!(lease["role"], "lease");
    assert_eq!(lease["ref"], "refs/agent-gate/admission/leases/r1");
    assert!(lease["age_s"].as_i64().is_some_and(|a| a >= 40), "{lease}");
    // Reading leaves nothing behind in the clone.
    assert_eq!(git(&ws, &["for-each-ref", "refs/agent-gate/"]), "");
}

#[test]
fn a_run_whose_lock_was_taken_over_writes_nothing() {
    let remote = Remote::new(LOCK_POLICY);
    let ws = remote.workspace("a");
    let mut slow = Remote::store(&ws, "slow-key", Priority::Normal, "run-slow");
    let now = jiff::Timestamp::now().as_second();
    assert!(matches!(slow.try_lock(now).unwrap(), LockAttempt::Held(_)));
    // While it counted, another run found its lock stale and took it over.
    remote.plant(
        "refs/agent-gate/admission/lock",
        NoteKind::Lock,
        "new-holder",
        "normal",
        Duration::ZERO,
    );
    assert_eq!(
        slow.commit(true, false, now).unwrap(),
        agent_gate::flow::lease::Commit::LostLock,
        "the old holder cannot admit itself"
    );
    let refs = remote_refs(&remote.bare);
    assert_eq!(refs.len(), 1, "no lease was written: {refs:?}");
    assert!(refs[0].1.contains("new-holder"), "{refs:?}");
    assert_eq!(slow.held(), None);
}

proptest::proptest! {
    /// Whatever the refs say: running tasks always count, this run never counts, every
    /// lease and waiting note is either live or dead (never both), and nobody is ahead of
    /// a high run.
    #[test]
    fn occupancy_invariants(
        running in proptest::collection::vec(0u8..6, 0..6),
        leases in proptest::collection::vec((0u8..6, 0i64..400), 0..8),
        waiting in proptest::collection::vec((0u8..6, 0u8..3, 0i64..200), 0..8),
        mine in 0u8..3,
    ) {
        let key = |k: u8| if k == 0 { "me".to_string() } else { format!("k{k}") };
        let prio = |p: u8| ["high", "normal", "low"][usize::from(p)];
        let running_keys: Vec<String> = running.iter().filter(|k| **k != 0).map(|k| key(*k)).collect();
        let snap = Snapshot {
            lock: None,
            leases: leases
                .iter()
                .enumerate()
                .map(|(i, (k, age))| entry(&format!("l/{i}"), NoteKind::Lease, &key(*k), "normal", *age))
                .collect(),
            waiting: waiting
                .iter()
                .enumerate()
                .map(|(i, (k, p, age))| entry(&format!("w/{i}"), NoteKind::Waiting, &key(*k), prio(*p), *age))
                .collect(),
        };
        let priority = [Priority::High, Priority::Normal, Priority::Low][usize::from(mine)];
        let occ = occupancy(&snap, &running_keys, "me", priority, 1_000_000, LeaseTimes::default());
        proptest::prop_assert!(occ.running as usize >= running_keys.len());
        let other_leases: std::collections::BTreeSet<String> = leases
            .iter()
            .filter(|(k, _)| *k != 0)
            .map(|(k, _)| key(*k))
            .collect();
        proptest::prop_assert!(occ.running as usize <= running_keys.len() + other_leases.len());
        for dead in &occ.dead {
            proptest::prop_assert!(
                snap.leases.iter().chain(&snap.waiting).any(|e| e.name == dead.name)
            );
        }
        let names: std::collections::BTreeSet<&str> = occ.dead.iter().map(|e| e.name.as_str()).collect();
        proptest::prop_assert_eq!(names.len(), occ.dead.len(), "no ref is dead twice");
        if priority == Priority::High {
            proptest::prop_assert_eq!(occ.ahead, 0);
        }
    }
}
