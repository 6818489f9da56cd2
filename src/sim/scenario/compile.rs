//! Compilation of a raw scenario into [`Scenario`]: defaults, the checks serde cannot do
//! (paths inside the repository, one action per fault, statuses GitHub uses), errors
//! carrying the line and column of the offending mapping, and reading the files a scenario
//! refers to (`from-file`, `patch-file`) relative to the scenario file. The raw types are
//! in `raw`, the compiled ones in the parent module; this module reads nothing but those
//! files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;

use super::raw::{RawCi, RawFault, RawFileOp, RawScenario, RawTask, UsageKind};
use super::{
    ApiOptions, CiCheck, CiScript, CiStatus, CreationLimit, Fault, FaultAction, FileOp, FinalState,
    PerPagePolicy, PullArtifact, PullId, RateLimit, Scenario, ScenarioError, TaskScript, When,
};
use crate::adapters::github::types::Usage;
use crate::sim::route::Endpoint;

pub(super) struct Compiler<'a> {
    pub(super) name: &'a Path,
    pub(super) dir: &'a Path,
}

impl Compiler<'_> {
    fn invalid(&self, at: &serde_saphyr::Location, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.name.to_path_buf(),
            line: at.line(),
            column: at.column(),
            message: message.into(),
        }
    }

    pub(super) fn scenario(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        let tasks = raw
            .tasks
            .into_iter()
            .map(|t| self.task(t))
            .collect::<Result<Vec<_>, _>>()?;
        let default_task = match raw.default {
            Some(t) => {
                if t.value.matches.is_some() {
                    return Err(self.invalid(&t.referenced, "the default task has no `match`: it answers every task nothing else matched"));
                }
                self.task(t)?
            }
            None => TaskScript::default(),
        };
        let faults = raw
            .faults
            .into_iter()
            .map(|f| self.fault(f))
            .collect::<Result<Vec<_>, _>>()?;
        let rate_limit = match raw.rate_limit {
            Some(r) => RateLimit {
                limit: r.value.limit,
                window: self.nonzero(
                    &r.referenced,
                    r.value.window.map(|d| d.0),
                    Duration::from_hours(1),
                    "rate-limit window",
                )?,
                status: self.limit_status(&r.referenced, r.value.status)?,
            },
            None => RateLimit::default(),
        };
        let mut creation_limits = Vec::new();
        for c in raw.creation_limit.into_iter().chain(raw.creation_limits) {
            creation_limits.push(CreationLimit {
                max: c.value.max,
                window: self.nonzero(
                    &c.referenced,
                    c.value.window.map(|d| d.0),
                    Duration::from_mins(1),
                    "creation-limit window",
                )?,
                status: self.limit_status(&c.referenced, c.value.status)?,
                retry_after: c.value.retry_after.map(|d| d.0),
            });
        }
        let api = raw.api.unwrap_or_default();
        let api = ApiOptions {
            retired_versions: api.retired_versions,
            per_page: api.per_page_out_of_range.unwrap_or(PerPagePolicy::Clamp),
            models: api.models,
            custom_agents: api.custom_agents,
            revoked_tokens: api.revoked_tokens,
            read_only_tokens: api.read_only_tokens,
            pull_id: api.pull_artifact_id.unwrap_or(PullId::DatabaseId),
            repositories: api
                .repositories
                .map(|r| r.iter().map(|x| x.to_ascii_lowercase()).collect()),
            agent_disabled: api.agent_disabled,
        };
        let ci = match raw.ci {
            Some(ci) => self.ci(ci)?,
            None => CiScript::default(),
        };
        Ok(Scenario {
            tasks,
            default_task,
            faults,
            rate_limit,
            creation_limits,
            api,
            ci,
        })
    }

    fn ci(&self, raw: Spanned<RawCi>) -> Result<CiScript, ScenarioError> {
        const CONCLUSIONS: [&str; 8] = [
            "success",
            "failure",
            "neutral",
            "cancelled",
            "skipped",
            "timed_out",
            "action_required",
            "stale",
        ];
        let ci = raw.value;
        let mut checks = Vec::new();
        for c in ci.checks {
            let at = c.referenced;
            let c = c.value;
            let conclusion = match c.conclusion.as_deref() {
                None => Some("success".to_string()),
                Some("never") => None,
                Some(v) if CONCLUSIONS.contains(&v) => Some(v.to_string()),
                Some(v) => {
                    return Err(self.invalid(
                        &at,
                        format!(
                            "unknown check-run conclusion {v:?}: use one of {} or `never`",
                            CONCLUSIONS.join(", ")
                        ),
                    ));
                }
            };
            checks.push(CiCheck {
                name: c.name,
                workflow: c.workflow,
                queued: c.queued.map_or(Duration::ZERO, |d| d.0),
                duration: c.duration.map_or(Duration::from_secs(10), |d| d.0),
                conclusion,
                title: c.title,
                summary: c.summary,
            });
        }
        let mut statuses = Vec::new();
        for st in ci.statuses {
            let at = st.referenced;
            let st = st.value;
            let state = match st.state.as_deref() {
                None => Some("success".to_string()),
                Some("never") => None,
                Some(v @ ("success" | "failure" | "error")) => Some(v.to_string()),
                Some(v) => {
                    return Err(self.invalid(
                        &at,
                        format!(
                            "unknown status state {v:?}: use success, failure, error or `never`"
                        ),
                    ));
                }
            };
            statuses.push(CiStatus {
                context: st.context,
                after: st.after.map_or(Duration::ZERO, |d| d.0),
                duration: st.duration.map_or(Duration::from_secs(10), |d| d.0),
                state,
                description: st.description,
            });
        }
        Ok(CiScript {
            require_approval: ci.require_approval.unwrap_or(true),
            approved_after: ci.approved_after.map(|d| d.0),
            required: ci.required,
            protection: ci.protection,
            protection_forbidden: ci.protection_forbidden,
            checks,
            statuses,
        })
    }

    fn nonzero(
        &self,
        at: &serde_saphyr::Location,
        d: Option<Duration>,
        default: Duration,
        what: &str,
    ) -> Result<Duration, ScenarioError> {
        let d = d.unwrap_or(default);
        if d.is_zero() {
            return Err(self.invalid(at, format!("{what} must be longer than 0s")));
        }
        Ok(d)
    }

    fn limit_status(
        &self,
        at: &serde_saphyr::Location,
        s: Option<u16>,
    ) -> Result<u16, ScenarioError> {
        match s.unwrap_or(403) {
            s @ (403 | 429) => Ok(s),
            s => Err(self.invalid(
                at,
                format!("a rate-limit status is 403 or 429 (GitHub uses both), not {s}"),
            )),
        }
    }

    fn task(&self, t: Spanned<RawTask>) -> Result<TaskScript, ScenarioError> {
        let at = t.referenced;
        let r = t.value;
        if r.matches.as_deref() == Some("") {
            return Err(self.invalid(
                &at,
                "`match` is a non-empty substring of the prompt; omit it to match by order",
            ));
        }
        let files = match r.files {
            Some(ops) => Some(
                ops.into_iter()
                    .map(|op| self.file_op(op))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        let usage = r.usage.map(|u| Usage {
            kind: match u.kind {
                UsageKind::AiCredits => "ai_credits".to_string(),
                UsageKind::PremiumRequests => "premium_requests".to_string(),
            },
            amount: u.amount,
        });
        if let Some(w) = &r.working_state
            && w.trim().is_empty()
        {
            return Err(self.invalid(&at, "`working-state` must not be empty"));
        }
        let d = TaskScript::default();
        Ok(TaskScript {
            matches: r.matches,
            queued: r.queued.map_or(d.queued, |x| x.0),
            work: r.work.map_or(d.work, |x| x.0),
            files,
            final_state: r.final_state.unwrap_or(FinalState::Completed),
            error: r.error,
            usage,
            pull_artifact: r.pull_artifact.unwrap_or(PullArtifact::Pull),
            working_state: r.working_state.unwrap_or(d.working_state),
            commit_message: r.commit_message,
            extra_fields: r.extra_fields.unwrap_or_default(),
        })
    }

    fn path(&self, at: &serde_saphyr::Location, p: &str) -> Result<String, ScenarioError> {
        let bad = p.is_empty()
            || p.starts_with('/')
            || p.ends_with('/')
            || p.contains('\0')
            || p.split('/')
                .any(|c| c.is_empty() || c == "." || c == ".." || c.eq_ignore_ascii_case(".git"));
        if bad {
            return Err(self.invalid(at, format!("{p:?} is not a repository path: use a relative path like src/a.rs, without `..`, `.git` or empty parts")));
        }
        Ok(p.to_string())
    }

    fn read(
        &self,
        at: &serde_saphyr::Location,
        file: &str,
    ) -> Result<(PathBuf, Vec<u8>), ScenarioError> {
        let full = self.dir.join(file);
        std::fs::read(&full)
            .map(|b| (full.clone(), b))
            .map_err(|source| ScenarioError::File {
                path: self.name.to_path_buf(),
                line: at.line(),
                file: full,
                source,
            })
    }

    fn file_op(&self, op: Spanned<RawFileOp>) -> Result<FileOp, ScenarioError> {
        let at = op.referenced;
        Ok(match op.value {
            RawFileOp::Write(w) => {
                let path = self.path(&at, &w.path)?;
                let content = match (w.content, w.from_file) {
                    (Some(c), None) => c.into_bytes(),
                    (None, Some(f)) => self.read(&at, &f)?.1,
                    _ => {
                        return Err(self.invalid(
                            &at,
                            "`write` takes exactly one of `content` or `from-file`",
                        ));
                    }
                };
                FileOp::Write { path, content }
            }
            RawFileOp::PatchFile(f) => {
                let (file, patch) = self.read(&at, &f)?;
                FileOp::Patch { file, patch }
            }
            RawFileOp::Delete(p) => FileOp::Delete {
                path: self.path(&at, &p)?,
            },
            RawFileOp::Rename(r) => FileOp::Rename {
                from: self.path(&at, &r.from)?,
                to: self.path(&at, &r.to)?,
            },
            RawFileOp::Mode(m) => FileOp::Mode {
                path: self.path(&at, &m.path)?,
                executable: m.executable,
            },
            RawFileOp::Symlink(s) => {
                if s.target.is_empty() || s.target.contains('\0') {
                    return Err(self.invalid(&at, "a symlink needs a non-empty `target`"));
                }
                FileOp::Symlink {
                    path: self.path(&at, &s.path)?,
                    target: s.target,
                }
            }
        })
    }

    fn fault(&self, f: Spanned<RawFault>) -> Result<Fault, ScenarioError> {
        let at = f.referenced;
        let r = f.value;
        let names: Vec<&str> = Endpoint::ALL.iter().map(|e| e.name()).collect();
        let endpoint = Endpoint::parse(&r.endpoint).ok_or_else(|| {
            self.invalid(
                &at,
                format!(
                    "unknown endpoint {:?}: use one of {} or `METHOD /template`",
                    r.endpoint,
                    names.join(", ")
                ),
            )
        })?;
        let nth = r.nth.unwrap_or(1);
        let count = r.count.unwrap_or(1);
        if nth == 0 || count == 0 {
            return Err(self.invalid(
                &at,
                "`nth` (1 = the first request) and `count` must be at least 1",
            ));
        }
        let mut actions = Vec::new();
        if let Some(status) = r.status {
            if !(400..=599).contains(&status) {
                return Err(self.invalid(
                    &at,
                    format!("fault status {status} is not an error status (400-599)"),
                ));
            }
            actions.push(FaultAction::Status {
                status,
                message: r.message.clone(),
            });
        } else if r.message.is_some() {
            return Err(self.invalid(&at, "`message` goes with `status`"));
        }
        if r.drop == Some(true) {
            actions.push(FaultAction::Drop);
        }
        if let Some(b) = r.body {
            actions.push(FaultAction::Body(b));
        }
        if let Some(s) = r.secondary_rate_limit {
            let status = self.limit_status(&at, s.status)?;
            actions.push(FaultAction::SecondaryRateLimit {
                status,
                retry_after: s.retry_after.map(|d| d.0),
            });
        }
        let delay = r.delay.map(|d| d.0);
        let action = match actions.len() {
            0 if delay.is_some() => FaultAction::DelayOnly,
            0 => return Err(self.invalid(&at, "a fault needs one of `status`, `drop: true`, `body`, `secondary-rate-limit` or `delay`")),
            1 => actions.remove(0),
            _ => return Err(self.invalid(&at, "a fault takes only one of `status`, `drop`, `body`, `secondary-rate-limit` (a `delay` combines with any)")),
        };
        let when = match (&action, r.when) {
            (FaultAction::Body(_), Some(When::Before)) => {
                return Err(self.invalid(&at, "a `body` fault breaks the real response, so it always happens after the server acted"));
            }
            (FaultAction::SecondaryRateLimit { .. }, Some(When::After)) => {
                return Err(self.invalid(
                    &at,
                    "a rate-limited request is refused before the server acts: drop `when: after`",
                ));
            }
            (FaultAction::Body(_), _) => When::After,
            (_, w) => w.unwrap_or(When::Before),
        };
        Ok(Fault {
            endpoint,
            nth,
            count,
            when,
            delay,
            action,
            line: at.line(),
        })
    }
}
