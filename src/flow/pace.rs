//! The fleet's write pace (issue 21): GitHub allows one user about 80 content-creating
//! requests a minute and 500 an hour, whatever repository they go to, and every job of a
//! nightly matrix writes with the same token (task creations, commit statuses, comments). No
//! job can see the others, so the pace is kept in a ledger on a remote every job can push
//! to — the workflow's own repository by default — as one ref per claimed write,
//! `refs/agent-gate/pace/writes/<milliseconds since the epoch>`. A write claims the earliest
//! time on the pace's grid at which every limit (`N/DURATION`: at most N writes in any window
//! of that length) still holds, by creating that ref (the remote refuses one that exists),
//! checks the limits again once it is created, and is sent at that time.
//!
//! This module owns the limits ([`WritePace`], parsed from `write-pace`), the arithmetic of
//! a claim ([`Ledger`]), the ledger on the remote ([`PaceStore`]) and the pacer the GitHub
//! client calls before each write ([`LedgerPacer`]). A ledger that cannot be read or written
//! never fails a run: the run says so once and writes unpaced, as without `write-pace`.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::adapters::git::{Expect, Git, GitError, PushOutcome, RefUpdate, RemoteAuth};
use crate::adapters::github::WritePacer;
use crate::core::secret::Token;
use crate::core::slug::RepoSlug;

/// Where the ledger lives on the remote: one ref per claimed write, named by its time.
pub const LEDGER_PREFIX: &str = "refs/agent-gate/pace/writes/";
/// Attempts of one claim before the ledger counts as unusable.
const MAX_ATTEMPTS: u32 = 64;
/// How many claims older than every window are left before a run deletes them.
const FORGET_AT: usize = 32;

/// One limit: at most `max` writes in any window of `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceLimit {
    pub max: u32,
    pub per: Duration,
}

impl PaceLimit {
    fn per_ms(&self) -> i64 {
        i64::try_from(self.per.as_millis()).unwrap_or(i64::MAX / 4)
    }
}

/// The compiled `write-pace`: every limit must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritePace {
    limits: Vec<PaceLimit>,
}

/// Why a `write-pace` or a ledger cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PaceError {
    #[error(
        "write-pace `{text}`: {reason}; write limits as N/DURATION separated by commas, e.g. `1/s, 480/h` (DURATION: s, min, h, or a number with one of them or ms: 10s, 5min, 250ms)"
    )]
    Spec { text: String, reason: String },
    #[error("cannot {action} the write-pace ledger `{LEDGER_PREFIX}*` on `{remote}`: {source}")]
    Git {
        action: &'static str,
        remote: String,
        #[source]
        source: Box<GitError>,
    },
    #[error(
        "`{remote}` took none of {attempts} claims on the write-pace ledger `{LEDGER_PREFIX}*` ({reason}); a ruleset or push restriction on `refs/agent-gate/*` would explain it"
    )]
    Refused {
        remote: String,
        attempts: u32,
        reason: String,
    },
}

impl WritePace {
    /// Parse `write-pace` (`1/s, 480/h`); `Ok(None)` when it is empty (no pacing).
    pub fn parse(text: &str) -> Result<Option<WritePace>, PaceError> {
        let bad = |reason: String| PaceError::Spec {
            text: text.to_string(),
            reason,
        };
        let mut limits = Vec::new();
        for part in text.split(',').map(str::trim) {
            if part.is_empty() {
                continue;
            }
            let (n, per) = part
                .split_once('/')
                .ok_or_else(|| bad(format!("`{part}` has no `/`")))?;
            let max: u32 = n.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                bad(format!(
                    "`{}` is not a count of writes (1 or more)",
                    n.trim()
                ))
            })?;
            let per = window(per.trim())
                .ok_or_else(|| bad(format!("`{}` is not a duration", per.trim())))?;
            if per.is_zero() || per > Duration::from_hours(24) {
                return Err(bad(format!(
                    "the window of `{part}` must be longer than 0 and at most a day"
                )));
            }
            if max > 5_000 {
                return Err(bad(format!(
                    "`{part}` allows more writes than the ledger keeps (5000)"
                )));
            }
            limits.push(PaceLimit { max, per });
        }
        if limits.is_empty() {
            return Ok(None);
        }
        Ok(Some(WritePace { limits }))
    }

    pub fn limits(&self) -> &[PaceLimit] {
        &self.limits
    }

    /// The grid claims are made on: the tightest limit's average spacing (a write every
    /// `per / max`), at least a millisecond.
    fn cell_ms(&self) -> i64 {
        self.limits
            .iter()
            .map(|l| l.per_ms() / i64::from(l.max))
            .min()
            .unwrap_or(1)
            .max(1)
    }
}

impl fmt::Display for WritePace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.limits.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}/{}", l.max, show_window(l.per))?;
        }
        Ok(())
    }
}

/// `s`, `min`, `h`, or a number with one of them (`10s`, `5min`, `2h`, also `m`, and `ms`
/// for a compressed clock such as a benchmark's).
fn window(text: &str) -> Option<Duration> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: u64 = if n.is_empty() { 1 } else { n.parse().ok()? };
    let ms = match unit.trim() {
        "ms" => 1,
        "s" | "sec" | "second" => 1_000,
        "m" | "min" | "minute" => 60_000,
        "h" | "hour" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(ms).map(Duration::from_millis)
}

fn show_window(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        1_000 => "s".into(),
        60_000 => "min".into(),
        3_600_000 => "h".into(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}min", ms / 60_000),
        _ if ms.is_multiple_of(1_000) => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
    }
}

/// Where the ledger of a run is kept: `explicit` (`pace-ledger`: `owner/repo` on the server
/// at `server_url`, else a git URL, path or remote name as given); else the workflow's
/// repository when the run targets another one (every job of a fleet's matrix shares it);
/// else `remote`, the target's own remote.
#[must_use]
pub fn ledger_remote(
    explicit: Option<&str>,
    workflow_repository: &str,
    target: &str,
    server_url: &str,
    remote: &str,
) -> String {
    let server = if server_url.trim().is_empty() {
        "https://github.com"
    } else {
        server_url.trim().trim_end_matches('/')
    };
    let on_server = |slug: &RepoSlug| format!("{server}/{slug}.git");
    if let Some(e) = explicit.map(str::trim).filter(|e| !e.is_empty()) {
        let is_slug = !e.contains(':') && !e.starts_with(['/', '.', '~']);
        return match RepoSlug::parse(e) {
            Ok(slug) if is_slug && !std::path::Path::new(e).exists() => on_server(&slug),
            _ => e.to_string(),
        };
    }
    match RepoSlug::parse(workflow_repository.trim()) {
        Ok(w) if !w.same_as(target.trim()) => on_server(&w),
        _ => remote.to_string(),
    }
}

/// The writes claimed on a ledger: their times, in milliseconds since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    writes: BTreeSet<i64>,
}

impl Ledger {
    /// A ledger holding these claims.
    pub fn new(writes: impl IntoIterator<Item = i64>) -> Ledger {
        Ledger {
            writes: writes.into_iter().collect(),
        }
    }

    pub fn writes(&self) -> impl Iterator<Item = i64> + '_ {
        self.writes.iter().copied()
    }

    /// Whether one more write at `t` keeps every limit of `pace`: every window of every
    /// limit that would hold it (those ending at `t` and at each later claim less than a
    /// window after it) holds no more than the limit's count. A claim at `t` itself does
    /// not fit (each time is one ref).
    #[must_use]
    pub fn fits(&self, pace: &WritePace, t: i64) -> bool {
        if self.writes.contains(&t) {
            return false;
        }
        pace.limits.iter().all(|l| {
            let w = l.per_ms();
            let later = self.writes.range(t + 1..t.saturating_add(w)).copied();
            std::iter::once(t).chain(later).all(|end| {
                let before = self.writes.range(end - w + 1..=end).count();
                before < l.max as usize
            })
        })
    }

    /// The `skip`-th (from 0) time at or after `now` on `pace`'s grid where one more write
    /// fits. Runs that lost a race skip ahead at random, so that they spread out instead of
    /// trying the same time again together.
    #[must_use]
    pub fn next_fit(&self, pace: &WritePace, now: i64, skip: u32) -> i64 {
        let cell = pace.cell_ms();
        let mut t = now.div_euclid(cell) * cell;
        if t < now {
            t += cell;
        }
        let mut left = skip;
        loop {
            if self.fits(pace, t) {
                if left == 0 {
                    return t;
                }
                left -= 1;
            }
            t += cell;
        }
    }

    fn insert(&mut self, t: i64) {
        self.writes.insert(t);
    }

    fn remove(&mut self, t: i64) {
        self.writes.remove(&t);
    }
}

/// The ledger on one remote, as one run reads and writes it: one ref per claimed write,
/// `refs/agent-gate/pace/writes/<milliseconds since the epoch>`. A claim is the creation of
/// its ref (the remote refuses one that exists), checked again once created: a run that
/// finds a window of a limit over its count because of claims made at the same moment
/// withdraws its own and claims again (the earlier claim, seen by the later one, stands).
#[derive(Debug)]
pub struct PaceStore {
    git: Git,
    remote: String,
    auth: RemoteAuth,
    /// The commit every claim ref of this run points at (written once).
    note: Option<String>,
    run_id: String,
}

impl PaceStore {
    /// The ledger on `remote` (name, URL or path), read and written from the repository `git`
    /// works in; `token` authenticates HTTPS remotes when plain git cannot.
    pub fn new(git: Git, remote: &str, token: Option<Token>, run_id: &str) -> PaceStore {
        PaceStore {
            git,
            remote: remote.to_string(),
            auth: RemoteAuth::new(token),
            note: None,
            run_id: run_id.to_string(),
        }
    }

    fn remote_op<T>(
        &mut self,
        action: &'static str,
        op: impl Fn(&Git, &str, Option<&str>) -> Result<T, GitError>,
    ) -> Result<T, PaceError> {
        let (git, remote) = (&self.git, self.remote.as_str());
        self.auth
            .run(|token| op(git, remote, token))
            .map_err(|source| PaceError::Git {
                action,
                remote: self.remote.clone(),
                source: Box::new(source),
            })
    }

    /// The claims on the remote (one `ls-remote`).
    pub fn read(&mut self) -> Result<Ledger, PaceError> {
        let names = self.remote_op("read", |git, remote, token| {
            git.remote_ref_names(remote, LEDGER_PREFIX, token)
        })?;
        Ok(Ledger::new(names.iter().filter_map(|n| {
            n.strip_prefix(LEDGER_PREFIX)?.parse().ok()
        })))
    }

    fn note(&mut self) -> Result<String, PaceError> {
        if let Some(id) = &self.note {
            return Ok(id.clone());
        }
        let text = format!("{{\"pace\":\"a write claimed by run {}\"}}", self.run_id);
        let id = self
            .git
            .note_commit(&text)
            .map_err(|source| PaceError::Git {
                action: "write a claim for",
                remote: self.remote.clone(),
                source: Box::new(source),
            })?;
        self.note = Some(id.clone());
        Ok(id)
    }

    fn push(
        &mut self,
        action: &'static str,
        updates: &[RefUpdate],
        atomic: bool,
    ) -> Result<PushOutcome, PaceError> {
        self.remote_op(action, |git, remote, token| {
            if atomic {
                git.push_refs(remote, updates, token)
            } else {
                git.push_refs_each(remote, updates, token)
            }
        })
    }

    /// Claim the next write under `pace`, reading the time from `now`: the claimed time, in
    /// milliseconds since the epoch. Claims older than every window are deleted on the way.
    pub fn claim(&mut self, pace: &WritePace, now: impl Fn() -> i64) -> Result<i64, PaceError> {
        let note = self.note()?;
        let mut ledger = self.read()?;
        self.forget_old(&ledger, pace, now());
        let mut lost = 0u32;
        let mut reason = String::new();
        for _ in 0..MAX_ATTEMPTS {
            // Runs that lost a race skip ahead at random, to spread out.
            let skip = rand::random_range(0..=lost.min(8));
            let t = ledger.next_fit(pace, now(), skip);
            let name = format!("{LEDGER_PREFIX}{t}");
            let create = [RefUpdate {
                name: name.clone(),
                new: Some(note.clone()),
                expect: Expect::Absent,
            }];
            match self.push("claim a write on", &create, true)? {
                PushOutcome::Rejected { reason: r } => {
                    // Taken: by someone else, or (rarely) refused; look again now and then.
                    reason = r;
                    lost += 1;
                    ledger.insert(t);
                    if lost.is_multiple_of(4) {
                        ledger = self.read()?;
                    }
                    continue;
                }
                PushOutcome::Pushed => {}
            }
            // Made at the same moment as another claim, this one may overfill a window:
            // the later of two claims sees the earlier one, and gives way.
            let mut seen = self.read()?;
            seen.remove(t);
            if seen.fits(pace, t) {
                return Ok(t);
            }
            let withdraw = [RefUpdate {
                name,
                new: None,
                expect: Expect::Is(note.clone()),
            }];
            let _ = self.push("withdraw a claim on", &withdraw, true)?;
            ledger = seen;
            ledger.insert(t);
            lost += 1;
        }
        Err(PaceError::Refused {
            remote: self.remote.clone(),
            attempts: MAX_ATTEMPTS,
            reason,
        })
    }

    /// Delete claims older than every window of `pace` (and a minute), when there are many
    /// (best effort: another run may delete them first).
    fn forget_old(&mut self, ledger: &Ledger, pace: &WritePace, now: i64) {
        let horizon = pace.limits.iter().map(PaceLimit::per_ms).max().unwrap_or(0) + 60_000;
        let old: Vec<RefUpdate> = ledger
            .writes()
            .take_while(|t| *t < now - horizon)
            .map(|t| RefUpdate {
                name: format!("{LEDGER_PREFIX}{t}"),
                new: None,
                expect: Expect::Any,
            })
            .collect();
        if old.len() >= FORGET_AT
            && let Err(e) = self.push("clean", &old, false)
        {
            tracing::debug!(error = %e, "old write-pace claims were not deleted");
        }
    }
}

/// The pacer a GitHub client calls before each write: claims the write's time on the ledger
/// (in a blocking thread: git runs there) and returns it. The first failure is logged and
/// turns pacing off for the rest of the run.
#[derive(Debug, Clone)]
pub struct LedgerPacer {
    inner: Arc<PacerInner>,
}

#[derive(Debug)]
struct PacerInner {
    pace: WritePace,
    store: Mutex<Option<PaceStore>>,
    /// Writes paced, and the time they waited in all (milliseconds).
    waited: Mutex<(u32, u64)>,
}

impl LedgerPacer {
    pub fn new(pace: WritePace, store: PaceStore) -> LedgerPacer {
        LedgerPacer {
            inner: Arc::new(PacerInner {
                pace,
                store: Mutex::new(Some(store)),
                waited: Mutex::new((0, 0)),
            }),
        }
    }

    /// The writes this pacer timed and how long they waited in all.
    pub fn waited(&self) -> (u32, Duration) {
        let (n, ms) = *self
            .inner
            .waited
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (n, Duration::from_millis(ms))
    }

    fn claim_blocking(inner: &PacerInner) -> SystemTime {
        let now_ms = || {
            i64::try_from(
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis(),
            )
            .unwrap_or(i64::MAX)
        };
        let mut guard = inner.store.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(store) = guard.as_mut() else {
            return SystemTime::now();
        };
        let asked = now_ms();
        match store.claim(&inner.pace, now_ms) {
            Ok(at) => {
                let mut w = inner.waited.lock().unwrap_or_else(PoisonError::into_inner);
                w.0 += 1;
                w.1 += u64::try_from(at.saturating_sub(asked)).unwrap_or(0);
                SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(at).unwrap_or(0))
            }
            Err(e) => {
                tracing::warn!(
                    "{e}; this run's writes are sent without the fleet's write pace from now on"
                );
                *guard = None;
                SystemTime::now()
            }
        }
    }
}

impl WritePacer for LedgerPacer {
    fn reserve(&self) -> Pin<Box<dyn Future<Output = SystemTime> + Send + '_>> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || LedgerPacer::claim_blocking(&inner))
                .await
                .unwrap_or_else(|_| SystemTime::now())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace(text: &str) -> WritePace {
        WritePace::parse(text).unwrap().unwrap()
    }

    #[test]
    fn limits_are_read_with_their_windows() {
        let p = pace("1/s, 480/h, 10/5s, 60/min, 1/40ms");
        assert_eq!(
            p.limits(),
            &[
                PaceLimit {
                    max: 1,
                    per: Duration::from_secs(1)
                },
                PaceLimit {
                    max: 480,
                    per: Duration::from_hours(1)
                },
                PaceLimit {
                    max: 10,
                    per: Duration::from_secs(5)
                },
                PaceLimit {
                    max: 60,
                    per: Duration::from_mins(1)
                },
                PaceLimit {
                    max: 1,
                    per: Duration::from_millis(40)
                },
            ]
        );
        assert_eq!(p.to_string(), "1/s, 480/h, 10/5s, 60/min, 1/40ms");
        assert_eq!(WritePace::parse("  ").unwrap(), None);
        for bad in ["60", "0/s", "x/s", "1/fortnight", "1/0s", "1/2d", "9000/h"] {
            assert!(WritePace::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_spacing_limit_spaces_every_write() {
        let p = pace("1/s");
        let mut l = Ledger::default();
        let mut claim = |now| {
            let t = l.next_fit(&p, now, 0);
            l.insert(t);
            t
        };
        assert_eq!(claim(10_000), 10_000);
        assert_eq!(claim(10_000), 11_000);
        assert_eq!(claim(10_500), 12_000);
        assert_eq!(claim(20_001), 21_000, "on the grid");
    }

    #[test]
    fn writes_keep_the_tightest_spacing_until_a_longer_window_is_full() {
        let p = pace("1/s, 3/10s");
        let mut l = Ledger::default();
        let got: Vec<i64> = (0..5)
            .map(|_| {
                let t = l.next_fit(&p, 0, 0);
                l.insert(t);
                t
            })
            .collect();
        assert_eq!(got, vec![0, 1_000, 2_000, 10_000, 11_000]);
        // A skip takes a later fitting time; an earlier free time that fits is still taken
        // by someone who does not skip.
        let l = Ledger::new([0, 2_000]);
        assert_eq!(l.next_fit(&p, 0, 0), 1_000);
        assert_eq!(l.next_fit(&p, 0, 1), 3_000);
        assert!(!l.fits(&p, 2_000), "taken");
    }

    #[test]
    fn the_ledger_is_on_the_named_repository_else_the_workflows_else_the_remote() {
        let at = |explicit, workflow, target| {
            ledger_remote(explicit, workflow, target, "https://ghe.example/", "origin")
        };
        assert_eq!(
            at(Some("octo/ops"), "", "octo/a"),
            "https://ghe.example/octo/ops.git"
        );
        assert_eq!(
            at(Some("https://x.example/r.git"), "", "octo/a"),
            "https://x.example/r.git"
        );
        assert_eq!(at(Some("./ledger.git"), "", "octo/a"), "./ledger.git");
        assert_eq!(
            at(None, "octo/nightly", "octo/a"),
            "https://ghe.example/octo/nightly.git"
        );
        assert_eq!(at(None, "octo/a", "octo/a"), "origin");
        assert_eq!(at(Some(" "), "", "octo/a"), "origin");
        assert_eq!(
            ledger_remote(None, "octo/n", "octo/a", "", "origin"),
            "https://github.com/octo/n.git"
        );
    }

    /// The first window that holds too many claims, if one does.
    fn overfull(pace: &WritePace, claims: &BTreeSet<i64>) -> Option<String> {
        for l in pace.limits() {
            let w = l.per_ms();
            for s in claims {
                let n = claims.range(*s..s + w).count();
                if n > l.max as usize {
                    return Some(format!("{n} claims in {w} ms from {s}: {claims:?}"));
                }
            }
        }
        None
    }

    #[derive(Clone)]
    enum Step {
        Read,
        Create(i64),
        Validate(i64),
    }

    proptest::proptest! {
        /// The protocol of [`PaceStore::claim`] played out on a shared set standing for the
        /// remote: claimers read (a view that goes stale), create their claim (refused when
        /// it exists), read again and withdraw when a window is over its count, in any
        /// interleaving. Whatever the limits, the clock and the order, every limit holds
        /// on what remains, and each claim was at or after it was asked for.
        #[test]
        fn concurrent_claims_keep_every_limit(
            limits in proptest::collection::vec((1u32..5, 1u64..6), 1..3),
            steps in proptest::collection::vec((0usize..4, 0i64..700, 0u32..3), 1..300),
        ) {
            let pace = WritePace {
                limits: limits
                    .iter()
                    .map(|&(max, s)| PaceLimit { max, per: Duration::from_millis(s * 500) })
                    .collect(),
            };
            let mut remote: BTreeSet<i64> = BTreeSet::new();
            let mut claimers: Vec<(Step, Ledger, i64)> = vec![(Step::Read, Ledger::default(), 0); 4];
            let mut now = 0i64;
            for (who, tick, skip) in steps {
                now += tick;
                let (step, view, asked) = &mut claimers[who];
                *step = match step.clone() {
                    Step::Read => {
                        *view = Ledger::new(remote.iter().copied());
                        *asked = now;
                        Step::Create(view.next_fit(&pace, now, skip))
                    }
                    Step::Create(t) => {
                        if remote.insert(t) {
                            Step::Validate(t)
                        } else {
                            view.insert(t);
                            Step::Create(view.next_fit(&pace, now.max(*asked), skip))
                        }
                    }
                    Step::Validate(t) => {
                        let mut seen = Ledger::new(remote.iter().copied());
                        seen.remove(t);
                        if seen.fits(&pace, t) {
                            proptest::prop_assert!(t >= *asked);
                        } else {
                            remote.remove(&t);
                        }
                        Step::Read
                    }
                };
            }
            // Claims still between create and validate may be withdrawn yet; the ones
            // validated must keep the limits among themselves and the rest.
            let pending: Vec<i64> = claimers
                .iter()
                .filter_map(|(s, _, _)| if let Step::Validate(t) = s { Some(*t) } else { None })
                .collect();
            let settled: BTreeSet<i64> = remote.iter().copied().filter(|t| !pending.contains(t)).collect();
            proptest::prop_assert_eq!(overfull(&pace, &settled), None);
        }
    }
}
