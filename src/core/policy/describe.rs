//! A human-readable account of a compiled policy, as `agent-gate validate` prints it: every
//! rule with its line, the protected paths, the limits, the checks and the agent settings,
//! defaults included, so an author sees what the gate will actually do. Plain text, no
//! colours; this module does not print anything itself.

use std::fmt::Write as _;

use super::{AwaitedChecks, CheckSpec, OnHeld, Policy, format_duration};
use crate::core::scope::{Rule, RuleOrigin, RuleSet};

/// Describe a compiled policy.
pub fn describe(policy: &Policy) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "policy {} (version 1)", policy.path);
    out.push('\n');

    if policy.repositories.is_empty() {
        out.push_str("repositories: any\n");
    } else {
        let _ = writeln!(out, "repositories: {}", policy.repositories.join(", "));
    }
    out.push('\n');

    agent(&mut out, policy);
    scope(&mut out, policy);
    checks(&mut out, policy);

    out.push_str("report:\n");
    let _ = writeln!(
        out,
        "  status-context       {}",
        policy.report.status_context
    );
    let _ = writeln!(out, "  comment              {}", policy.report.comment);
    out
}

fn agent(out: &mut String, policy: &Policy) {
    let a = &policy.agent;
    out.push_str("agent:\n");
    let row = |out: &mut String, key: &str, value: &str| {
        let _ = writeln!(out, "  {key:<23}{value}");
    };
    row(
        out,
        "base-ref",
        a.base_ref
            .as_deref()
            .unwrap_or("(the repository's default branch)"),
    );
    row(out, "timeout", &format_duration(a.timeout));
    row(
        out,
        "poll",
        &format!(
            "every {} at first, growing to {}; every {} while GitHub answers 304 (free)",
            format_duration(a.poll_initial),
            format_duration(a.poll_max),
            format_duration(a.poll_watch.clamp(a.poll_initial, a.poll_max))
        ),
    );
    row(out, "on-idle", a.on_idle.as_str());
    row(out, "on-waiting-for-user", a.on_waiting_for_user.as_str());
    row(
        out,
        "create-pull-request",
        &a.create_pull_request.to_string(),
    );
    row(out, "allow-no-change", &a.allow_no_change.to_string());
    let concurrency = match a.max_concurrent_tasks {
        None => "no cap".to_string(),
        Some(max) if a.reserved_for_high > 0 => {
            format!(
                "{max} (of which {} reserved for `priority: high`)",
                a.reserved_for_high
            )
        }
        Some(max) => max.to_string(),
    };
    row(out, "max-concurrent-tasks", &concurrency);
    row(
        out,
        "max-tasks-per-day",
        &a.max_tasks_per_day
            .map_or_else(|| "no limit".to_string(), |n| n.to_string()),
    );
    row(
        out,
        "max-ai-credits-per-day",
        &a.max_ai_credits_per_day
            .map_or_else(|| "no limit".to_string(), |n| n.to_string()),
    );
    row(out, "repair-rounds", &a.repair_rounds.to_string());
    row(
        out,
        "max-open-pull-requests",
        &a.max_open_pull_requests.map_or_else(
            || "no limit".to_string(),
            |n| {
                format!(
                    "{n} (then: {})",
                    match a.on_review_backlog {
                        crate::core::policy::OnReviewBacklog::Fail => "fail",
                        crate::core::policy::OnReviewBacklog::Wait => "wait",
                    }
                )
            },
        ),
    );
    out.push('\n');
}

fn scope(out: &mut String, policy: &Policy) {
    let scope = &policy.scope;
    out.push_str("scope:\n");
    if scope.allow().is_empty() {
        out.push_str("  allow: everything that is not denied or protected\n");
    } else {
        out.push_str("  allow (a changed path must match one of these):\n");
        rules(out, scope.allow());
    }
    if scope.deny().is_empty() {
        out.push_str("  deny: nothing\n");
    } else {
        out.push_str("  deny (deny wins over allow):\n");
        rules(out, scope.deny());
    }
    out.push_str("  protected (never changeable):\n");
    rules(out, scope.protected());
    let l = &policy.limits;
    out.push_str("  limits:\n");
    let _ = writeln!(
        out,
        "    max-files          {}",
        l.max_files
            .map_or_else(|| "no limit".to_string(), |n| n.to_string())
    );
    let _ = writeln!(
        out,
        "    max-changed-lines  {}",
        l.max_changed_lines
            .map_or_else(|| "no limit".to_string(), |n| n.to_string())
    );
    let _ = writeln!(out, "    binary-files       {}", l.binary_files.as_str());
    let _ = writeln!(out, "    symlinks           {}", l.symlinks.as_str());
    let _ = writeln!(out, "    submodules         {}", l.submodules.as_str());
    let _ = writeln!(out, "    mode-changes       {}", l.mode_changes.as_str());
    out.push('\n');
}

fn rules(out: &mut String, rules: &[Rule]) {
    for rule in rules {
        let origin = match &rule.origin {
            RuleOrigin::Policy { line, column } => format!("line {line}:{column}"),
            _ => "always".to_string(),
        };
        let _ = writeln!(out, "    {origin:<12} {}", rule.pattern.as_str());
    }
}

fn globs(set: &RuleSet) -> String {
    set.rules()
        .iter()
        .map(|r| match r.origin {
            RuleOrigin::Policy { line, .. } => format!("{} (line {line})", r.pattern.as_str()),
            _ => r.pattern.as_str().to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn checks(out: &mut String, policy: &Policy) {
    let _ = writeln!(
        out,
        "checks (checks-on-violation: {}, checks-isolation: {}):",
        policy.checks_on_violation.as_str(),
        policy.checks_isolation.as_str()
    );
    if policy.checks.is_empty() {
        out.push_str("  none\n");
    }
    for (i, check) in policy.checks.iter().enumerate() {
        check_entry(out, i + 1, check);
    }
    out.push('\n');
}

fn check_entry(out: &mut String, number: usize, check: &CheckSpec) {
    let kind = if check.required {
        "required"
    } else {
        "advisory"
    };
    if let Some(github) = &check.github {
        let timeout = github.timeout.map_or_else(
            || "the run's deadline".to_string(),
            |t| format!("timeout {}", format_duration(t)),
        );
        let _ = writeln!(
            out,
            "  {number}. {} (line {}): {kind}, {timeout}",
            check.name, check.line
        );
        let awaited = match &github.awaited {
            AwaitedChecks::Required => {
                "the base branch's required status checks (rules and branch protection)".to_string()
            }
            AwaitedChecks::Named(names) => names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let _ = writeln!(out, "       await: {awaited} on the agent's head commit");
        let held = match github.on_held {
            OnHeld::Fail => "fail (held for approval: the check fails, naming who must approve)",
            OnHeld::Wait => "wait (held for approval: wait for a person to approve)",
        };
        let _ = writeln!(out, "       held:  {held}");
    } else {
        let _ = writeln!(
            out,
            "  {number}. {} (line {}): {kind}, timeout {}",
            check.name,
            check.line,
            format_duration(check.timeout)
        );
        let _ = writeln!(
            out,
            "       run:   {}",
            check.run.replace('\n', "\n              ")
        );
    }
    let when = check.when.as_ref().map_or_else(
        || "always".to_string(),
        |w| format!("if a changed path matches {}", globs(w)),
    );
    let _ = writeln!(out, "       when:  {when}");
    if check.run.contains("{files}") || check.files.is_some() {
        let files = check
            .files
            .as_ref()
            .map_or_else(|| "every changed path".to_string(), globs);
        let _ = writeln!(out, "       files: {files}");
    }
    if !check.env.is_empty() {
        let env = check
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(out, "       env:   {env}");
    }
    if let Some(image) = &check.image {
        #[allow(
            clippy::cast_precision_loss,
            reason = "CPU counts far below 2^52 billionths"
        )]
        let cpus = image.nano_cpus as f64 / 1e9;
        let _ = writeln!(
            out,
            "       image: {} (network {}, memory {} MiB, {cpus} CPUs, {} processes)",
            image.image,
            image.network.mode(),
            image.memory_bytes / (1024 * 1024),
            image.pids
        );
    }
}
