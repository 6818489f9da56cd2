//! Tests of concurrency admission against the in-process simulator: tasks are created with
//! and without agent-gate's marker and held in `in_progress` (`final: never`) until the test
//! stops them with `SimHandle::cancel_task`, so every "a slot frees" is an explicit step and
//! nothing depends on how fast the machine is. Waits use real time with short intervals.

use std::cell::Cell;
use std::time::Duration;

use agent_gate::adapters::github::types::{Task, TaskState};
use agent_gate::adapters::github::{Client, create_task_request};
use agent_gate::adapters::shutdown::Shutdown;
use agent_gate::core::prompt::marker;
use agent_gate::flow::admission::{
    Admission, AdmissionLimits, LeaseUse, Priority, RunningCounter, WaitInfo, admit,
};
use tokio::time::Instant;

use crate::support::{Gate, World};

const TOKEN: &str = "ghp_admissiontests";
const POLL: Duration = Duration::from_millis(20);
const GET_ONE: &str = "/agents/repos/*/*/tasks/*";
const LIST: &str = "/agents/repos/*/*/tasks";

/// A [`World`] whose simulated tasks queue briefly, then work until cancelled (real time),
/// and a client for it.
struct Fixture {
    world: World,
    client: Client,
}

async fn fixture() -> Fixture {
    let world = Gate::new()
        .repository("octo-org/payments")
        .token(TOKEN)
        .scenario_yaml("default: {queued: 0s, work: 1s, final: never}\n")
        .time_scale(1.0)
        .start()
        .await;
    Fixture {
        client: world.client(),
        world,
    }
}

impl Fixture {
    /// A task started by agent-gate with `key` (the marker at the end of a longer prompt, as
    /// `build_prompt` writes it, so the list item's name does not carry it).
    async fn gate_task(&self, key: &str) -> Task {
        let prompt = format!(
            "Bump the dependencies\n\n---\nThis task runs under agent-gate.\n{}\n",
            marker(key)
        );
        self.client
            .create_task(&create_task_request(prompt, None))
            .await
            .expect("create")
    }

    /// A task somebody started by hand (no marker).
    async fn other_task(&self, prompt: &str) -> Task {
        self.client
            .create_task(&create_task_request(prompt, None))
            .await
            .expect("create")
    }

    fn gets(&self) -> usize {
        self.world.sim.count("GET", GET_ONE)
    }

    fn lists(&self) -> usize {
        self.world.sim.count("GET", LIST)
    }
}

fn limits(max: u32, reserved: u32) -> AdmissionLimits {
    AdmissionLimits {
        max_concurrent: Some(max),
        reserved_for_high: reserved,
    }
}

fn soon(d: Duration) -> Instant {
    Instant::now() + d
}

/// `admit` with the test defaults: no shutdown, waits collected.
async fn admit_collect(
    f: &Fixture,
    limits: AdmissionLimits,
    priority: Priority,
    own_key: &str,
    timeout: Duration,
) -> (Admission, Vec<WaitInfo>) {
    let mut waits = Vec::new();
    let outcome = admit(
        &f.client,
        limits,
        priority,
        &marker(own_key),
        soon(timeout),
        POLL,
        None,
        std::future::pending::<()>(),
        |w| waits.push(w),
    )
    .await;
    (outcome, waits)
}

#[test]
fn limits_per_priority() {
    let l = limits(3, 1);
    assert_eq!(l.limit_for(Priority::High), Some(3));
    assert_eq!(l.limit_for(Priority::Normal), Some(2));
    assert_eq!(l.limit_for(Priority::Low), Some(2));
    assert_eq!(AdmissionLimits::default().limit_for(Priority::Low), None);
    assert_eq!(limits(1, 5).limit_for(Priority::Normal), Some(0));
    assert_eq!("HIGH".parse::<Priority>(), Ok(Priority::High));
    assert!("urgent".parse::<Priority>().is_err());
}

#[tokio::test]
async fn no_cap_admits_without_a_request() {
    let f = fixture().await;
    f.gate_task("busy-1").await;
    let (outcome, waits) = admit_collect(
        &f,
        AdmissionLimits::default(),
        Priority::Low,
        "mine",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(outcome, Admission::Admitted { waited, for_slots, lease: LeaseUse::NotUsed } if waited.is_zero() && for_slots.is_zero())
    );
    assert!(waits.is_empty());
    assert_eq!(f.lists(), 0, "no list request without a cap");
}

#[tokio::test]
async fn free_capacity_admits_at_once() {
    let f = fixture().await;
    f.gate_task("busy-1").await;
    let (outcome, waits) = admit_collect(
        &f,
        limits(2, 0),
        Priority::Normal,
        "mine",
        Duration::from_secs(5),
    )
    .await;
    assert!(matches!(outcome, Admission::Admitted { .. }), "{outcome:?}");
    assert!(waits.is_empty(), "{waits:?}");
    assert_eq!(f.lists(), 1);
}

#[tokio::test]
async fn full_waits_and_is_admitted_when_a_task_finishes() {
    let f = fixture().await;
    let a = f.gate_task("busy-1").await;
    f.gate_task("busy-2").await;
    let mut waits = Vec::new();
    let outcome = admit(
        &f.client,
        limits(2, 0),
        Priority::Normal,
        &marker("mine"),
        soon(Duration::from_secs(30)),
        POLL,
        None,
        std::future::pending::<()>(),
        |w: WaitInfo| {
            waits.push(w);
            // The third check still finds both running; then one of them ends.
            if waits.len() == 3 {
                assert!(f.world.sim.cancel_task(&a.id));
            }
        },
    )
    .await;
    let Admission::Admitted { waited, .. } = outcome else {
        panic!("expected Admitted, got {outcome:?}");
    };
    assert_eq!(waits.len(), 3, "{waits:?}");
    assert!(waits.iter().all(|w| w.running == 2 && w.limit == 2));
    assert!(waits.windows(2).all(|p| p[0].waited <= p[1].waited));
    assert!(
        waited >= waits[2].waited + POLL,
        "re-checked after poll_every"
    );
    assert_eq!(f.lists(), 4, "one list per check");
    assert_eq!(f.gets(), 2, "each task read once, however many checks");
}

#[tokio::test]
async fn normal_cannot_take_the_reserved_slot_high_can() {
    let f = fixture().await;
    f.gate_task("busy-1").await;
    // max 2, 1 reserved: a normal run may start only while nothing runs.
    let (normal, waits) = admit_collect(
        &f,
        limits(2, 1),
        Priority::Normal,
        "normal-run",
        Duration::from_millis(150),
    )
    .await;
    assert!(
        matches!(normal, Admission::NeverAdmitted { running: 1, .. }),
        "{normal:?}"
    );
    assert!(!waits.is_empty() && waits.iter().all(|w| w.limit == 1 && w.running == 1));
    let (low, _) = admit_collect(
        &f,
        limits(2, 1),
        Priority::Low,
        "low-run",
        Duration::from_millis(60),
    )
    .await;
    assert!(matches!(low, Admission::NeverAdmitted { .. }), "{low:?}");
    let (high, waits) = admit_collect(
        &f,
        limits(2, 1),
        Priority::High,
        "high-run",
        Duration::from_secs(5),
    )
    .await;
    assert!(matches!(high, Admission::Admitted { .. }), "{high:?}");
    assert!(waits.is_empty());
}

#[tokio::test]
async fn high_is_admitted_before_a_waiting_normal_when_slots_free() {
    let f = fixture().await;
    let a = f.gate_task("busy-a").await;
    let normal_waits = Cell::new(0usize);
    let normal_admitted = Cell::new(false);
    let own = marker("normal-run");
    let normal = async {
        let outcome = admit(
            &f.client,
            limits(2, 1),
            Priority::Normal,
            &own,
            soon(Duration::from_secs(30)),
            POLL,
            None,
            std::future::pending::<()>(),
            |_| normal_waits.set(normal_waits.get() + 1),
        )
        .await;
        normal_admitted.set(true);
        outcome
    };
    let script = async {
        while normal_waits.get() == 0 {
            tokio::time::sleep(POLL / 2).await;
        }
        // A high run arrives while the normal one waits: it takes the reserved slot.
        let (high, _) = admit_collect(
            &f,
            limits(2, 1),
            Priority::High,
            "high-run",
            Duration::from_secs(5),
        )
        .await;
        assert!(matches!(high, Admission::Admitted { .. }), "{high:?}");
        let b = f.gate_task("high-run").await;
        // The first task ends: the high run's task still holds the one normal slot.
        assert!(f.world.sim.cancel_task(&a.id));
        let seen = normal_waits.get();
        while normal_waits.get() < seen + 3 {
            assert!(
                !normal_admitted.get(),
                "the normal run took a slot while the high run's task was running"
            );
            tokio::time::sleep(POLL / 2).await;
        }
        assert!(!normal_admitted.get());
        // The high run's task ends: now the normal run gets in.
        assert!(f.world.sim.cancel_task(&b.id));
    };
    let (outcome, ()) = tokio::join!(normal, script);
    assert!(matches!(outcome, Admission::Admitted { .. }), "{outcome:?}");
}

#[tokio::test]
async fn deadline_while_waiting_is_never_admitted() {
    let f = fixture().await;
    f.gate_task("busy-1").await;
    let timeout = Duration::from_millis(200);
    let (outcome, waits) = admit_collect(&f, limits(1, 0), Priority::High, "mine", timeout).await;
    let Admission::NeverAdmitted {
        waited,
        for_slots,
        running,
    } = outcome
    else {
        panic!("expected NeverAdmitted, got {outcome:?}");
    };
    assert_eq!(running, 1);
    assert!(waited >= timeout, "{waited:?}");
    // No lock here: every wait was for a slot.
    assert!(
        for_slots > Duration::ZERO && for_slots <= waited,
        "{for_slots:?}"
    );
    assert!(waits.len() >= 2, "{waits:?}");
    assert!(waits.iter().all(|w| w.waited < timeout));
}

#[tokio::test]
async fn a_deadline_already_past_still_admits_free_capacity() {
    let f = fixture().await;
    let outcome = admit(
        &f.client,
        limits(1, 0),
        Priority::Normal,
        &marker("mine"),
        Instant::now(),
        POLL,
        None,
        std::future::pending::<()>(),
        |_| {},
    )
    .await;
    assert!(matches!(outcome, Admission::Admitted { .. }), "{outcome:?}");
}

#[tokio::test]
async fn tasks_without_the_marker_are_not_counted() {
    let f = fixture().await;
    f.other_task("Fix the flaky test by hand").await;
    f.other_task("Mentions agent-gate but carries no marker")
        .await;
    let (outcome, waits) = admit_collect(
        &f,
        limits(1, 0),
        Priority::Normal,
        "mine",
        Duration::from_secs(5),
    )
    .await;
    assert!(matches!(outcome, Admission::Admitted { .. }), "{outcome:?}");
    assert!(waits.is_empty());
    assert_eq!(
        f.gets(),
        2,
        "each candidate read once to look for the marker"
    );
}

#[tokio::test]
async fn the_runs_own_task_is_not_counted() {
    let f = fixture().await;
    f.gate_task("nightly-20260310-abc").await;
    let (outcome, waits) = admit_collect(
        &f,
        limits(1, 0),
        Priority::Normal,
        "nightly-20260310-abc",
        Duration::from_secs(5),
    )
    .await;
    assert!(matches!(outcome, Admission::Admitted { .. }), "{outcome:?}");
    assert!(waits.is_empty());
    // A key that is a prefix of the running one is another run's.
    let (outcome, _) = admit_collect(
        &f,
        limits(1, 0),
        Priority::Normal,
        "nightly-20260310",
        Duration::from_millis(50),
    )
    .await;
    assert!(
        matches!(outcome, Admission::NeverAdmitted { running: 1, .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn finished_tasks_free_their_slot() {
    let f = fixture().await;
    let t = f.gate_task("done").await;
    assert!(f.world.sim.cancel_task(&t.id));
    let mut counter = RunningCounter::new(&marker("mine"));
    assert_eq!(counter.count(&f.client).await.expect("count"), 0);
    let listed = f.world.sim.request_log();
    let list = listed
        .iter()
        .rev()
        .find(|r| r.path.ends_with("/tasks"))
        .expect("a list request");
    assert!(
        list.query
            .contains("state=queued%2Cin_progress%2Cidle%2Cwaiting_for_user"),
        "{:?}",
        list.query
    );
}

#[tokio::test]
async fn a_marker_in_the_task_name_needs_no_extra_read() {
    let f = fixture().await;
    // A prompt that is only the marker: the task's name (its first line) carries it.
    f.client
        .create_task(&create_task_request(marker("short"), None))
        .await
        .expect("create");
    let mut counter = RunningCounter::new(&marker("mine"));
    assert_eq!(counter.count(&f.client).await.expect("count"), 1);
    assert_eq!(f.gets(), 0);
}

#[tokio::test]
async fn shutdown_while_waiting_is_interrupted() {
    let f = fixture().await;
    f.gate_task("busy-1").await;
    let (trigger, shutdown) = Shutdown::manual();
    let outcome = admit(
        &f.client,
        limits(1, 0),
        Priority::Normal,
        &marker("mine"),
        soon(Duration::from_mins(1)),
        Duration::from_secs(30),
        None,
        async move {
            shutdown.wait().await;
        },
        |_| trigger.fire("test"),
    )
    .await;
    assert!(matches!(outcome, Admission::Interrupted), "{outcome:?}");
}

#[tokio::test]
async fn an_api_error_is_reported() {
    let f = fixture().await;
    let client = f.world.client_with("ghs_installation_token");
    let outcome = admit(
        &client,
        limits(1, 0),
        Priority::Normal,
        &marker("mine"),
        soon(Duration::from_secs(5)),
        POLL,
        None,
        std::future::pending::<()>(),
        |_| {},
    )
    .await;
    assert!(matches!(outcome, Admission::ApiError(_)), "{outcome:?}");
}

#[tokio::test]
async fn running_states_are_the_slot_holders() {
    let f = fixture().await;
    let t = f.gate_task("k").await;
    let task = f.client.get_task(&t.id).await.expect("get");
    assert!(matches!(
        task.state,
        TaskState::Queued | TaskState::InProgress
    ));
    assert!(agent_gate::flow::admission::RUNNING_STATES.contains(&task.state));
}
