//! The cost of compiling hostile globs (issue 15, review finding 5): the worst policies and
//! `scope` inputs within the size limits, each compiled (or refused) once per run, timed,
//! with the rise of the resident set while it ran (`VmHWM`, reset before each run). The caps
//! are `policy::MAX_POLICY_PATTERNS` / `MAX_POLICY_EXPANDED_BYTES` per policy (inside the
//! 1 MiB file limit) and `scope::MAX_SCOPE_INPUT_*` per `scope` input; the target is under
//! 1 s and 200 MB for every case.
//!
//! - **at the caps**: 4,096 distinct unanchored globs built to be expensive (wildcards,
//!   classes and `**` between literal runs, 64 bytes each); 16 rules of eight `{a,b}`
//!   groups (256 patterns each, long alternatives); 64 globs of 4 KiB; one glob of 256 KiB;
//!   a `scope` input of 256 expensive globs (16 KiB).
//! - **refused by the caps**: a 1 MiB policy of `{a,b}` rules (what the review sent) and a
//!   16 KiB `scope` input of them.
//!
//! Run: `cargo bench --bench compile`, or `bench/run.sh`. `BENCH_QUICK=1` runs each once.

mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use agent_gate::core::policy::{
    MAX_POLICY_BYTES, MAX_POLICY_EXPANDED_BYTES, MAX_POLICY_PATTERNS, Policy,
};
use agent_gate::core::scope::{
    MAX_SCOPE_INPUT_BYTES, MAX_SCOPE_INPUT_EXPANDED_BYTES, MAX_SCOPE_INPUT_PATTERNS,
};
use common::{Rng, Section, human, median, quick, thousands};

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(field: &str) -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<usize>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Compile case `case` once in this process: its time and the rise of the resident set's
/// peak (`VmHWM`, reset through `/proc/self/clear_refs` once the input is built) over the
/// resident set before, and the outcome in words.
fn run_once(case: &Case) -> (Duration, usize, String) {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_bytes("VmRSS:");
    let start = Instant::now();
    let out = (case.run)();
    let t = start.elapsed();
    (t, status_bytes("VmHWM:").saturating_sub(before), out)
}

/// Each run of a case in a fresh process (this program again, with `BENCH_COMPILE_CASE`),
/// so no run reuses memory an earlier one freed: the median time, the largest peak rise,
/// and the outcome.
fn measure(index: usize, runs: usize) -> (Duration, usize, String) {
    let mut times = Vec::new();
    let mut peak = 0;
    let mut outcome = String::new();
    for _ in 0..runs.max(1) {
        let out = std::process::Command::new(std::env::current_exe().expect("own path"))
            .env("BENCH_COMPILE_CASE", index.to_string())
            .output()
            .expect("the case runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut parts = text.trim().splitn(3, ' ');
        let ns: u64 = parts.next().and_then(|p| p.parse().ok()).expect("time");
        let bytes: usize = parts.next().and_then(|p| p.parse().ok()).expect("peak");
        times.push(Duration::from_nanos(ns));
        peak = peak.max(bytes);
        outcome = parts.next().unwrap_or_default().to_string();
    }
    (median(&times), peak, outcome)
}

/// A glob built to cost the most per byte: literal runs, `*`, `?`, classes and `**/`.
fn expensive_glob(rng: &mut Rng, len: usize) -> String {
    let pieces = ["*", "?", "[a-f0-9]", "[!x]", "**/", "ab", "c", "*.", "q"];
    let mut g = String::from("**/");
    while g.len() < len {
        g.push_str(rng.pick(&pieces));
        g.push(char::from(b'a' + u8::try_from(rng.below(26)).unwrap_or(0)));
    }
    g.truncate(len);
    // Never end inside a class or with a lone `\`.
    while g.ends_with('[') || g.contains('[') && g.rfind('[') > g.rfind(']') {
        g.pop();
    }
    g
}

fn yaml_list(key: &str, globs: &[String]) -> String {
    let mut out = format!("scope:\n  {key}:\n");
    for g in globs {
        out.push_str("    - ");
        out.push_str(&serde_json::to_string(g).unwrap_or_default());
        out.push('\n');
    }
    out
}

fn policy(globs: &[String]) -> String {
    format!("version: 1\n{}", yaml_list("allow", globs))
}

/// Eight `{a,b}` groups of `alt`-byte alternatives: 256 patterns.
fn brace_rule(rng: &mut Rng, alt: usize) -> String {
    let mut r = String::from("**/");
    for _ in 0..8 {
        r.push('{');
        r.push_str(&expensive_glob(rng, alt)[3..]);
        r.push(',');
        r.push_str(&expensive_glob(rng, alt)[3..]);
        r.push('}');
    }
    r
}

fn outcome<T, E: std::fmt::Display>(r: &Result<T, E>) -> String {
    match r {
        Ok(_) => "compiled".to_string(),
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let at = first
                .find("too many")
                .or_else(|| first.find("the scope input"))
                .unwrap_or(0);
            format!(
                "refused: {}",
                &first[at..].chars().take(70).collect::<String>()
            )
        }
    }
}

/// One measured input: a name, a description of its size, and the compile.
struct Case {
    name: &'static str,
    input: String,
    run: Box<dyn Fn() -> String>,
}

fn policy_case(name: &'static str, text: String) -> Case {
    Case {
        name,
        input: format!("{} B policy", thousands(text.len())),
        run: Box::new(move || outcome(&Policy::from_yaml(&text, ".github/agent-gate.yml"))),
    }
}

fn scope_case(name: &'static str, input: String, globs: Vec<String>) -> Case {
    let base =
        Policy::from_yaml("version: 1\nscope:\n  allow: [\"**\"]\n", "p.yml").expect("policy");
    Case {
        name,
        input,
        run: Box::new(move || outcome(&base.scope.narrowed(&globs))),
    }
}

/// Every case, built the same way (seeded) in the parent and in each child.
fn cases() -> Vec<Case> {
    let mut rng = Rng(15);
    let mut cases = Vec::new();
    let many: Vec<String> = (0..MAX_POLICY_PATTERNS)
        .map(|_| expensive_glob(&mut rng, MAX_POLICY_EXPANDED_BYTES / MAX_POLICY_PATTERNS))
        .collect();
    cases.push(policy_case(
        "expensive globs up to the pattern cap",
        policy(&many),
    ));
    let rules = MAX_POLICY_PATTERNS / 256;
    let braces: Vec<String> = (0..rules).map(|_| brace_rule(&mut rng, 7)).collect();
    cases.push(policy_case(
        "rules of 256 alternatives up to the pattern cap",
        policy(&braces),
    ));
    let long: Vec<String> = (0..MAX_POLICY_EXPANDED_BYTES / 4096)
        .map(|_| expensive_glob(&mut rng, 4000))
        .collect();
    cases.push(policy_case("4 KB globs up to the byte cap", policy(&long)));
    let one = vec![expensive_glob(&mut rng, MAX_POLICY_EXPANDED_BYTES - 100)];
    cases.push(policy_case(
        "one glob as long as the byte cap",
        policy(&one),
    ));
    let mut review = String::from("version: 1\nscope:\n  allow:\n");
    let mut n = 0usize;
    while review.len() < MAX_POLICY_BYTES - 64 {
        let _ = writeln!(
            review,
            "    - \"{{a,b}}{{c,d}}{{e,f}}{{g,h}}{{i,j}}{{k,l}}{{m,n}}{{o,p}}/r{n}\""
        );
        n += 1;
    }
    cases.push(policy_case("1 MiB of `{a,b}` rules (the review's)", review));
    let input: Vec<String> = (0..MAX_SCOPE_INPUT_PATTERNS)
        .map(|_| {
            expensive_glob(
                &mut rng,
                MAX_SCOPE_INPUT_BYTES / MAX_SCOPE_INPUT_PATTERNS - 2,
            )
        })
        .collect();
    let bytes: usize = input.iter().map(String::len).sum();
    cases.push(scope_case(
        "scope input, expensive globs up to the caps",
        format!("{} B", thousands(bytes)),
        input,
    ));
    let mut braces_input = Vec::new();
    let mut bytes = 0;
    while bytes < MAX_SCOPE_INPUT_BYTES - 64 {
        let g = format!("{{a,b}}{{c,d}}{{e,f}}{{g,h}}/s{}", braces_input.len());
        bytes += g.len();
        braces_input.push(g);
    }
    cases.push(scope_case(
        "scope input, 16 KB of `{a,b}` globs (the review's)",
        format!("{} globs", thousands(braces_input.len())),
        braces_input,
    ));
    cases
}

fn main() {
    let all = cases();
    if let Some(i) = std::env::var("BENCH_COMPILE_CASE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        let (t, peak, out) = run_once(&all[i]);
        println!("{} {peak} {out}", t.as_nanos());
        return;
    }
    let runs = if quick() { 1 } else { 5 };
    let mut section = Section::new(
        "compile",
        "Compiling hostile globs: the worst policies and scope inputs within the limits",
        &format!(
            "Each run of each case in a fresh process, on one thread; the time is the median of the runs, the memory the largest rise of the process's peak resident set during the compile (`VmHWM`, reset through `/proc/self/clear_refs` once the input is built). Caps: {} patterns and {} KiB of patterns per policy (alternatives expanded, inside the 1 MiB file limit); {} patterns, {} KiB expanded and {} KiB written per `scope` input. Target: under 1 s and 200 MB each. Command: `cargo bench --bench compile`.",
            thousands(MAX_POLICY_PATTERNS),
            MAX_POLICY_EXPANDED_BYTES / 1024,
            MAX_SCOPE_INPUT_PATTERNS,
            MAX_SCOPE_INPUT_EXPANDED_BYTES / 1024,
            MAX_SCOPE_INPUT_BYTES / 1024
        ),
        &[
            "case",
            "input",
            "outcome",
            "time (median)",
            "peak RSS rise",
            "runs",
        ],
    );
    for (i, case) in all.iter().enumerate() {
        let (t, peak, out) = measure(i, runs);
        section.row(&[
            case.name.to_string(),
            case.input.clone(),
            out,
            human(t),
            format!(
                "{:.1} MB",
                f64::from(u32::try_from(peak / 1000).unwrap_or(u32::MAX)) / 1e3
            ),
            runs.to_string(),
        ]);
    }
    section.note("Before the caps, the review measured a 128 KB policy of `{a,b}` rules aborting on a failed allocation, a 1 MB one taking all 24 GB of the machine, and a 16 KB `scope` input taking 1.3 GB.");
    section.finish();
}
