//! Scope engine benchmark: 1,000 rules × 100,000 paths, the full decision for every path,
//! side by side with what users would use instead (issue 10).
//!
//! A plain `harness = false` program (no benchmark framework): it builds a seeded, realistic
//! tree of 100,000 file paths and 1,000 gitignore rules of the kinds real policies and
//! CODEOWNERS files hold, compiles them once, then times (best and median of several runs,
//! `std::time::Instant`):
//!
//! - `RuleSet::last_match_many`: which rule (if any) decides each path, 1,000 rules;
//! - `Scope::decide_many`: the full scope decision (protected → deny → allow), 700 allow +
//!   300 deny rules;
//! - the same decisions one path at a time on one thread (`Scope::decide`), for comparison;
//! - the real corpora of `tests/data/corpus/` (their rules × every path of their trees);
//! - the comparison: the same rules translated to plain glob syntax, through `globset`
//!   (`matches_into`, and three `GlobSet`s for the decision), a loop over the `glob` crate's
//!   `Pattern`s, and picomatch 4 under node (`bench/picomatch.mjs`, when `PICOMATCH_DIR`
//!   points at a directory where `npm install picomatch@4` ran, as `bench/run.sh` does).
//!   Every tool's set of matching rules is compared with agent-gate's on every path.
//!
//! Then the same measurements side by side on every data set (issue 20): the generator's,
//! the three real CODEOWNERS files of `tests/data/corpus/` scaled up to 1,000 rules ×
//! 100,000 paths with their own path shapes, and a gitignore-style set with few matches per
//! path, each against plain `globset` listing every matching rule.
//!
//! Run: `cargo bench --bench scope` (release profile), or `bench/run.sh` for everything.
//! The target is under 100 ms for the decision and at least ×2.5 against `globset` on every
//! data set. `SCOPE_BENCH_BREAKDOWN=1` also times each kind of generated rule alone;
//! `SCOPE_BENCH_CORPORA=1` times the corpora unscaled; `SCOPE_BENCH_FAST=1` skips the
//! generated set's slow comparisons; `SCOPE_BENCH_SETS=<part of a label>` (`dd-trace`, `gitignore-style`) measures only the
//! matching data sets; `SCOPE_BENCH_PROFILE=<part of a label>` only decides the paths of
//! the first matching data set, 200 times over, for a profiler; `BENCH_QUICK=1` runs
//! everything once.

mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use agent_gate::core::scope::{
    ALWAYS_PROTECTED, Decision, Pattern, Reason, Rule, RuleOrigin, RuleRef, RuleSet, Scope,
};
use common::{Rng, human, ms, ratio, thousands, time};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

const WORDS: &[&str] = &[
    "api",
    "auth",
    "billing",
    "cache",
    "client",
    "common",
    "config",
    "core",
    "db",
    "events",
    "handlers",
    "internal",
    "jobs",
    "metrics",
    "models",
    "net",
    "payments",
    "plugins",
    "queue",
    "server",
    "services",
    "storage",
    "util",
    "views",
    "web",
    "worker",
    "integration",
    "fixtures",
    "v1",
    "v2",
    "legacy",
    "tools",
];
const TOP: &[&str] = &[
    "src", "tests", "docs", "lib", "packages", "services", "tools", "scripts", "vendor",
    "examples", "crates",
];
const EXTS: &[&str] = &[
    "rs", "py", "md", "json", "yml", "yaml", "ts", "tsx", "go", "c", "h", "txt", "toml", "pem",
    "lock", "sql",
];
const FILES: &[&str] = &[
    "mod",
    "lib",
    "main",
    "index",
    "README",
    "test_utils",
    "handler",
    "schema",
    "conftest",
    "setup",
];

fn generate_paths(rng: &mut Rng, count: usize) -> (Vec<String>, Vec<String>) {
    // A tree of directories, 1 to 8 levels deep.
    let mut dirs: Vec<String> = Vec::new();
    for top in TOP {
        dirs.push((*top).to_string());
    }
    while dirs.len() < 6000 {
        let parent = dirs[rng.below(dirs.len())].clone();
        if parent.matches('/').count() >= 7 {
            continue;
        }
        let name = if rng.chance(20) {
            format!("{}_{}", rng.pick(WORDS), rng.below(50))
        } else {
            rng.pick(WORDS).to_string()
        };
        dirs.push(format!("{parent}/{name}"));
    }
    dirs.sort();
    dirs.dedup();
    let mut paths = Vec::with_capacity(count);
    for i in 0..count {
        let dir = &dirs[rng.below(dirs.len())];
        let stem = if rng.chance(50) {
            rng.pick(FILES).to_string()
        } else {
            format!("{}_{i}", rng.pick(WORDS))
        };
        paths.push(format!("{dir}/{stem}.{}", rng.pick(EXTS)));
    }
    paths.push(".github/workflows/ci.yml".to_string());
    paths.push(".github/CODEOWNERS".to_string());
    (paths, dirs)
}

/// One generated rule: its kind (for the breakdown), the gitignore text agent-gate reads, and
/// the same rule in plain glob syntax (picomatch, `globset`, the `glob` crate): the rule
/// matches a path when one of `globs` does. Each translation spells out what gitignore
/// implies (`docs/*` also covers `docs/a/b`, so `docs/*/**` is added; an unanchored rule
/// gets `**/`), and is exact on the generated paths, where a file path is never also a
/// directory (files have an extension, directories never do).
#[derive(Debug, Clone)]
struct GenRule {
    kind: usize,
    text: String,
    globs: Vec<String>,
}

impl GenRule {
    fn new(kind: usize, text: String, globs: Vec<String>) -> GenRule {
        GenRule { kind, text, globs }
    }
}

/// A rule that names a path (file or directory) and so also covers everything below it.
fn path_and_below(path: &str) -> Vec<String> {
    vec![path.to_string(), format!("{path}/**")]
}

fn generate_rules(rng: &mut Rng, dirs: &[String], count: usize) -> Vec<GenRule> {
    let mut rules = Vec::with_capacity(count);
    while rules.len() < count {
        let dir = &dirs[rng.below(dirs.len())];
        let word = rng.pick(WORDS);
        let ext = rng.pick(EXTS);
        let kind = rng.below(100);
        let (rule, globs) = match kind {
            // CODEOWNERS style: everything below dir (its `*` matches a child directory too,
            // which covers what is below it).
            0..=24 => (format!("{dir}/*"), vec![format!("{dir}/**")]),
            // anchored directory
            25..=39 => (format!("/{dir}/"), vec![format!("{dir}/**")]),
            // files of one type in one directory
            40..=47 => (format!("{dir}/*.{ext}"), vec![format!("{dir}/*.{ext}")]),
            // files of one type below a directory
            48..=53 => (
                format!("{dir}/**/*.{ext}"),
                vec![format!("{dir}/**/*.{ext}")],
            ),
            // an extension anywhere
            54..=61 => (format!("*.{ext}"), vec![format!("**/*.{ext}")]),
            // a directory name anywhere
            62..=69 => (format!("{word}/"), vec![format!("**/{word}/**")]),
            // a name anywhere
            70..=75 => (word.to_string(), path_and_below(&format!("**/{word}"))),
            76..=80 => (format!("**/{word}/**"), vec![format!("**/{word}/**")]),
            81..=85 => {
                let r = format!("{}/*/{word}", rng.pick(TOP));
                let g = path_and_below(&r);
                (r, g)
            }
            // one file
            86..=89 => {
                let r = format!("{dir}/{}.{ext}", rng.pick(FILES));
                let g = path_and_below(&r);
                (r, g)
            }
            90..=93 => (
                format!("{dir}/{word}_*"),
                path_and_below(&format!("{dir}/{word}_*")),
            ),
            94..=96 => {
                let other = rng.pick(EXTS);
                (
                    format!("*.{{{ext},{other}}}"),
                    vec![format!("**/*.{ext}"), format!("**/*.{other}")],
                )
            }
            _ => {
                let top = rng.pick(TOP);
                (format!("{top}/[a-m]*/"), vec![format!("{top}/[a-m]*/**")])
            }
        };
        rules.push(GenRule::new(kind, rule, globs));
    }
    rules
}

/// Narrower rules, as a `deny` list holds: single files, secrets, generated directories.
fn generate_deny_rules(rng: &mut Rng, dirs: &[String], count: usize) -> Vec<GenRule> {
    let mut rules = Vec::with_capacity(count);
    while rules.len() < count {
        let dir = &dirs[rng.below(dirs.len())];
        let kind = rng.below(100);
        let (rule, globs) = match kind {
            0..=39 => {
                let r = format!("{dir}/{}.{}", rng.pick(FILES), rng.pick(EXTS));
                let g = path_and_below(&r);
                (r, g)
            }
            40..=59 => (format!("/{dir}/"), vec![format!("{dir}/**")]),
            60..=74 => {
                let r = format!("{dir}/*.{}", rng.pick(&["sql", "lock", "pem"]));
                let g = vec![r.clone()];
                (r, g)
            }
            75..=84 => (format!("{dir}/**/*.pem"), vec![format!("{dir}/**/*.pem")]),
            85..=89 => {
                let r = format!("**/{}_{}/**", rng.pick(WORDS), rng.below(50));
                let g = vec![r.clone()];
                (r, g)
            }
            90..=94 => {
                let name = format!("{}_{}", rng.pick(WORDS), rng.below(50));
                (format!("{name}/"), vec![format!("**/{name}/**")])
            }
            _ => ("*.pem".to_string(), vec!["**/*.pem".to_string()]),
        };
        rules.push(GenRule::new(kind, rule, globs));
    }
    rules
}

/// The always-protected rules of the engine (and the policy file), in glob syntax.
fn protected_globs(policy_path: &str) -> Vec<String> {
    ALWAYS_PROTECTED
        .iter()
        .map(|p| p.trim_start_matches('/'))
        .chain(std::iter::once(policy_path))
        .flat_map(path_and_below)
        .collect()
}

/// The rules, compiled now (a list queried on its own).
fn rule_set(rules: &[String], first_line: usize) -> RuleSet {
    RuleSet::compiled(rules_of(rules, first_line))
}

/// The rules as a scope's list, which the scope compiles together with its other lists.
fn rule_list(rules: &[String], first_line: usize) -> RuleSet {
    RuleSet::new(rules_of(rules, first_line))
}

fn rules_of(rules: &[String], first_line: usize) -> Vec<Rule> {
    rules
        .iter()
        .enumerate()
        .filter_map(|(i, text)| {
            Pattern::new(text)
                .map_err(|e| eprintln!("skipping {e}"))
                .ok()
                .map(|pattern| Rule {
                    pattern,
                    origin: RuleOrigin::Policy {
                        line: first_line + i,
                        column: 5,
                    },
                })
        })
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is ignored too.
    if let Ok(name) = std::env::var("SCOPE_BENCH_PROFILE") {
        profile(&name);
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let quick = common::quick();
    let runs = if quick { 1 } else { 7 };
    let mut rng = Rng(0x5eed_2026);
    let (paths, dirs) = generate_paths(&mut rng, 100_000);
    let generated = generate_rules(&mut rng, &dirs, 1000);
    let rules: Vec<String> = generated.iter().map(|r| r.text.clone()).collect();
    if std::env::var_os("SCOPE_BENCH_BREAKDOWN").is_some() {
        for (lo, hi) in [
            (0, 24),
            (25, 39),
            (40, 47),
            (48, 53),
            (54, 61),
            (62, 69),
            (70, 75),
            (76, 80),
            (81, 85),
            (86, 89),
            (90, 93),
            (94, 96),
            (97, 99),
        ] {
            let part: Vec<String> = generated
                .iter()
                .filter(|r| (lo..=hi).contains(&r.kind))
                .map(|r| r.text.clone())
                .collect();
            let set = rule_set(&part, 1);
            let (best, _) = time(3, || set.last_match_many(&paths));
            println!(
                "kind {lo:>2}-{hi:>2}: {:>4} rules, e.g. {:<40} {}",
                part.len(),
                part[0],
                ms(best)
            );
        }
    }
    println!(
        "scope benchmark: {} rules × {} paths ({cores} cores available)",
        rules.len(),
        paths.len()
    );

    let start = Instant::now();
    let set = rule_set(&rules, 1);
    let compile_set = start.elapsed();
    println!(
        "compile 1000 rules (RuleSet::compiled):     {}",
        ms(compile_set)
    );

    let allow = &generated[..700];
    let deny = generate_deny_rules(&mut rng, &dirs, 300);
    let deny_rules: Vec<String> = deny.iter().map(|r| r.text.clone()).collect();
    let start = Instant::now();
    let scope = Scope::new(
        rule_list(&rules[..700], 1),
        rule_list(&deny_rules, 701),
        RuleSet::default(),
        POLICY_PATH,
    )
    .expect("scope");
    println!(
        "compile scope (700 allow + 300 deny):       {}",
        ms(start.elapsed())
    );

    let decided = set.last_match_many(&paths);
    let matched = decided.iter().filter(|d| d.is_some()).count();
    let (best, last_match_median) = time(runs, || set.last_match_many(&paths));
    println!(
        "RuleSet::last_match_many  best {} median {}   ({matched} paths matched a rule)",
        ms(best),
        ms(last_match_median)
    );

    let decisions = scope.decide_many(&paths);
    let in_scope = decisions.iter().filter(|d| d.in_scope).count();
    let (best, decide_many_median) = time(runs, || scope.decide_many(&paths));
    println!(
        "Scope::decide_many        best {} median {}   ({in_scope} in scope)",
        ms(best),
        ms(decide_many_median)
    );

    let (best, decide_median) = time(runs.min(3), || {
        paths
            .iter()
            .map(|p| scope.decide(p.as_bytes()))
            .filter(|d| d.in_scope)
            .count()
    });
    println!(
        "Scope::decide (1 thread)  best {} median {}",
        ms(best),
        ms(decide_median)
    );

    // Consistency: batch and single answers agree.
    assert!(
        paths
            .iter()
            .zip(&decided)
            .all(|(p, d)| set.last_match(p.as_bytes()) == *d)
    );

    if std::env::var_os("SCOPE_BENCH_CORPORA").is_some() {
        corpora();
    }

    let engine = Engine {
        set: &set,
        decided: &decided,
        decisions: &decisions,
        compile: compile_set,
        last_match: last_match_median,
        decide_many: decide_many_median,
        decide_one_thread: decide_median,
    };
    let generator = if std::env::var_os("SCOPE_BENCH_FAST").is_some() {
        println!("SCOPE_BENCH_FAST: the generated set's slow comparisons are skipped");
        None
    } else {
        Some(compare(
            &engine, &paths, &generated, allow, &deny, cores, runs,
        ))
    };
    let mut rows = Vec::new();
    let matches_per_path = per(
        paths.iter().map(|p| set.matches(p.as_bytes()).len()).sum(),
        paths.len(),
    );
    rows.push(SetRow {
        name: "the project's generator (195 \"directory anywhere\" rules)".into(),
        rules: rules.len(),
        allow_deny: (700, deny.len()),
        paths: paths.len(),
        matches_per_path,
        decide_many: decide_many_median,
        last_match_many: last_match_median,
        globset_all: generator.as_ref().map(|g| (g.all, g.all_runs)),
        agreement: generator
            .as_ref()
            .map_or_else(|| "not compared".into(), |g| g.agreement.clone()),
    });
    let only = std::env::var("SCOPE_BENCH_SETS").unwrap_or_default();
    for set in data_sets(&only) {
        rows.push(measure(&set, runs));
    }
    report(&rows, generator.as_ref().map(|g| g.table.as_str()), cores);
}

const POLICY_PATH: &str = ".github/agent-gate.yml";

/// `SCOPE_BENCH_PROFILE`: the decision alone, over and over, on one data set.
fn profile(name: &str) {
    let Some(data) = data_sets(name).into_iter().next() else {
        println!("SCOPE_BENCH_PROFILE={name}: no data set by that name");
        return;
    };
    let scope = data.scope();
    let start = Instant::now();
    let mut decided = 0;
    for _ in 0..200 {
        decided += scope.decide_many(&data.paths).len();
    }
    println!(
        "{}: {decided} decisions in {}",
        data.name,
        ms(start.elapsed())
    );
}

fn corpora() {
    for repo in [
        "DataDog-integrations-extras",
        "esphome-esphome",
        "DataDog-dd-trace-py",
    ] {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/corpus/");
        let (Ok(rules), Ok(paths)) = (
            std::fs::read_to_string(format!("{dir}{repo}/rules.txt")),
            std::fs::read_to_string(format!("{dir}{repo}/paths.txt")),
        ) else {
            println!("corpus {repo}: not found, skipped");
            continue;
        };
        let rules: Vec<String> = rules.lines().map(str::to_string).collect();
        let paths: Vec<&str> = paths.lines().collect();
        let start = Instant::now();
        let set = rule_set(&rules, 1);
        let compile = start.elapsed();
        let (best, median) = time(7, || set.last_match_many(&paths));
        println!(
            "corpus {repo:<28} {:>5} rules × {:>5} paths: compile {} last_match_many best {} median {}",
            rules.len(),
            paths.len(),
            ms(compile),
            ms(best),
            ms(median)
        );
    }
}

/// agent-gate's answers and timings, computed above.
struct Engine<'a> {
    set: &'a RuleSet,

    decided: &'a [Option<usize>],
    decisions: &'a [Decision],
    compile: Duration,
    last_match: Duration,
    decide_many: Duration,
    decide_one_thread: Duration,
}

/// A scope decision reduced to what every tool can say: which list decided, and which rule
/// of it (index into that list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Protected,
    Denied(usize),
    Allowed(usize),
    NoAllowRule,
}

fn engine_verdict(d: &Decision) -> Verdict {
    let line = |r: &RuleRef| match r.origin {
        RuleOrigin::Policy { line, .. } => line,
        _ => usize::MAX,
    };
    match &d.reason {
        Reason::Protected { .. } => Verdict::Protected,
        Reason::Denied { rule } => Verdict::Denied(line(rule).wrapping_sub(701)),
        Reason::Allowed { rule } => Verdict::Allowed(line(rule).wrapping_sub(1)),
        _ => Verdict::NoAllowRule,
    }
}

/// One `GlobSet` over every translated glob, and the rule each glob belongs to.
fn globset_of(rules: impl IntoIterator<Item = Vec<String>>) -> (GlobSet, Vec<usize>) {
    let mut builder = GlobSetBuilder::new();
    let mut owner = Vec::new();
    for (i, globs) in rules.into_iter().enumerate() {
        for g in globs {
            builder.add(
                GlobBuilder::new(&g)
                    .literal_separator(true)
                    .build()
                    .expect("glob"),
            );
            owner.push(i);
        }
    }
    (builder.build().expect("globset"), owner)
}

/// Every rule matching each path through `GlobSet::matches_into`: sorted, deduplicated.
fn globset_all(set: &GlobSet, owner: &[usize], paths: &[String]) -> Vec<Vec<usize>> {
    let mut scratch = Vec::new();
    paths
        .iter()
        .map(|p| {
            set.matches_into(p.as_str(), &mut scratch);
            let mut rules: Vec<usize> = scratch.iter().map(|&g| owner[g]).collect();
            rules.sort_unstable();
            rules.dedup();
            rules
        })
        .collect()
}

fn glob_patterns(rules: &[GenRule]) -> Vec<(glob::Pattern, usize)> {
    rules
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.globs
                .iter()
                .map(move |g| (glob::Pattern::new(g).expect("glob pattern"), i))
        })
        .collect()
}

const GLOB_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

fn glob_all(patterns: &[(glob::Pattern, usize)], paths: &[String]) -> Vec<Vec<usize>> {
    paths
        .iter()
        .map(|p| {
            let mut rules: Vec<usize> = patterns
                .iter()
                .filter(|(pat, _)| pat.matches_with(p, GLOB_OPTIONS))
                .map(|&(_, i)| i)
                .collect();
            rules.dedup();
            rules
        })
        .collect()
}

/// Paths where `theirs` differs from `ours`; prints the first few.
fn disagreements(
    tool: &str,
    paths: &[String],
    ours: &[Vec<usize>],
    theirs: &[Vec<usize>],
) -> usize {
    let mut n = 0;
    for ((p, a), b) in paths.iter().zip(ours).zip(theirs) {
        if a != b {
            if n < 5 {
                println!("  {tool} disagrees on {p}: agent-gate {a:?}, {tool} {b:?}");
            }
            n += 1;
        }
    }
    if theirs.len() != ours.len() {
        println!(
            "  {tool}: {} answers for {} paths",
            theirs.len(),
            ours.len()
        );
        n += ours.len().abs_diff(theirs.len());
    }
    n
}

fn agreement(n: usize, total: usize) -> String {
    if n == 0 {
        format!("agrees on all {}", thousands(total))
    } else {
        format!("**differs on {}** of {}", thousands(n), thousands(total))
    }
}

/// The comparison of issue 10: the same rules and paths through agent-gate, plain
/// `globset`, the `glob` crate and picomatch 4 (node, when `PICOMATCH_DIR` is set).
#[allow(clippy::too_many_arguments)]
fn compare(
    engine: &Engine<'_>,
    paths: &[String],
    rules: &[GenRule],
    allow: &[GenRule],
    deny: &[GenRule],
    cores: usize,
    runs: usize,
) -> Detail {
    let total = paths.len();
    let slow_runs = runs.min(3);
    println!("\ncomparison: the same rules in glob syntax");
    let mut section = Table::new(&["what", "tool", "median", "runs", "vs agent-gate", "answers"]);

    // The full decision: protected → deny → allow.
    let (protected_set, _) = globset_of(protected_globs(POLICY_PATH).into_iter().map(|g| vec![g]));
    let (deny_set, deny_owner) = globset_of(deny.iter().map(|r| r.globs.clone()));
    let (allow_set, allow_owner) = globset_of(allow.iter().map(|r| r.globs.clone()));
    let globset_decide = || {
        let mut scratch = Vec::new();
        paths
            .iter()
            .map(|p| {
                if protected_set.is_match(p.as_str()) {
                    return Verdict::Protected;
                }
                deny_set.matches_into(p.as_str(), &mut scratch);
                if let Some(r) = scratch.iter().map(|&g| deny_owner[g]).max() {
                    return Verdict::Denied(r);
                }
                allow_set.matches_into(p.as_str(), &mut scratch);
                scratch
                    .iter()
                    .map(|&g| allow_owner[g])
                    .max()
                    .map_or(Verdict::NoAllowRule, Verdict::Allowed)
            })
            .collect::<Vec<_>>()
    };
    let ours: Vec<Verdict> = engine.decisions.iter().map(engine_verdict).collect();
    let start = Instant::now();
    let theirs = globset_decide();
    let first = start.elapsed();
    println!("globset decision: first run {}", ms(first));
    let differ = ours.iter().zip(&theirs).filter(|(a, b)| a != b).count();
    for ((p, a), b) in paths
        .iter()
        .zip(&ours)
        .zip(&theirs)
        .filter(|((_, a), b)| a != b)
        .take(5)
    {
        println!("  globset decision differs on {p}: agent-gate {a:?}, globset {b:?}");
    }
    let (globset_decide_t, globset_decide_runs) = again(first, runs, globset_decide);
    let what = "scope decision, 700 allow + 300 deny + protected";
    section.row(&[
        what.into(),
        format!("agent-gate `Scope::decide_many` ({cores} threads)"),
        human(engine.decide_many),
        runs.to_string(),
        "×1.0".into(),
        "which rule decided, every path".into(),
    ]);
    section.row(&[
        what.into(),
        "agent-gate `Scope::decide` (1 thread, per path)".into(),
        human(engine.decide_one_thread),
        runs.min(3).to_string(),
        ratio(engine.decide_one_thread, engine.decide_many),
        "same".into(),
    ]);
    section.row(&[
        what.into(),
        "globset: 3 `GlobSet`s, `matches_into` (1 thread)".into(),
        human(globset_decide_t),
        globset_decide_runs.to_string(),
        ratio(globset_decide_t, engine.decide_many),
        agreement(differ, total),
    ]);

    // Every matching rule of the 1,000 (and so the deciding one).
    let ours_all: Vec<Vec<usize>> = paths
        .iter()
        .map(|p| engine.set.matches(p.as_bytes()))
        .collect();
    assert!(
        ours_all
            .iter()
            .zip(engine.decided)
            .all(|(all, last)| all.last().copied() == *last),
        "RuleSet::matches and last_match_many disagree"
    );
    let (_, engine_all_t) = time(slow_runs, || {
        paths
            .iter()
            .map(|p| engine.set.matches(p.as_bytes()))
            .collect::<Vec<_>>()
    });
    let start = Instant::now();
    let (gs, gs_owner) = globset_of(rules.iter().map(|r| r.globs.clone()));
    let gs_compile = start.elapsed();
    let start = Instant::now();
    let gs_all = globset_all(&gs, &gs_owner, paths);
    let first = start.elapsed();
    println!("globset matches_into: first run {}", ms(first));
    let gs_differ = disagreements("globset", paths, &ours_all, &gs_all);
    let (gs_all_t, gs_all_runs) = again(first, runs, || globset_all(&gs, &gs_owner, paths));
    let (_, gs_any_t) = time(runs, || {
        paths.iter().filter(|p| gs.is_match(p.as_str())).count()
    });
    let gs_any = paths.iter().filter(|p| gs.is_match(p.as_str())).count();
    let ours_any = engine.decided.iter().filter(|d| d.is_some()).count();

    let start = Instant::now();
    let patterns = glob_patterns(rules);
    let glob_compile = start.elapsed();
    let start = Instant::now();
    let glob_answers = glob_all(&patterns, paths);
    let glob_first = start.elapsed();
    println!("glob crate, every match: first run {}", ms(glob_first));
    let glob_differ = disagreements("glob", paths, &ours_all, &glob_answers);
    let (glob_all_t, glob_runs) = again(glob_first, slow_runs, || glob_all(&patterns, paths));
    let glob_any = || {
        paths
            .iter()
            .filter(|p| {
                patterns
                    .iter()
                    .any(|(pat, _)| pat.matches_with(p, GLOB_OPTIONS))
            })
            .count()
    };
    let start = Instant::now();
    let glob_any_n = glob_any();
    let glob_any_first = start.elapsed();
    let (glob_any_t, glob_any_runs) = again(glob_any_first, slow_runs, glob_any);

    let pico = picomatch(paths, rules, &ours_all);

    let what = "every matching rule of 1,000 (→ the deciding one)";
    section.row(&[
        what.into(),
        format!("agent-gate `RuleSet::last_match_many` ({cores} threads)"),
        human(engine.last_match),
        runs.to_string(),
        "×1.0".into(),
        format!("the deciding rule; {} paths match", thousands(ours_any)),
    ]);
    section.row(&[
        what.into(),
        "agent-gate `RuleSet::matches` (1 thread, per path)".into(),
        human(engine_all_t),
        slow_runs.to_string(),
        ratio(engine_all_t, engine.last_match),
        "every matching rule".into(),
    ]);
    section.row(&[
        what.into(),
        "globset `matches_into` (1 thread)".into(),
        human(gs_all_t),
        gs_all_runs.to_string(),
        ratio(gs_all_t, engine.last_match),
        agreement(gs_differ, total),
    ]);
    section.row(&[
        what.into(),
        "`glob` crate, loop over `Pattern`s (1 thread)".into(),
        human(glob_all_t),
        glob_runs.to_string(),
        ratio(glob_all_t, engine.last_match),
        agreement(glob_differ, total),
    ]);
    if let Some(p) = &pico {
        section.row(&[
            what.into(),
            "picomatch 4 (node, loop over matchers)".into(),
            human(p.all),
            p.all_runs.to_string(),
            ratio(p.all, engine.last_match),
            agreement(p.differ, total),
        ]);
    }
    let what = "any rule matches";
    let any_note = |n: usize| {
        if n == ours_any {
            format!("{} paths, same as agent-gate", thousands(n))
        } else {
            format!(
                "**{} paths, agent-gate {}**",
                thousands(n),
                thousands(ours_any)
            )
        }
    };
    section.row(&[
        what.into(),
        "globset `is_match` (1 thread)".into(),
        human(gs_any_t),
        runs.to_string(),
        ratio(gs_any_t, engine.last_match),
        any_note(gs_any),
    ]);
    section.row(&[
        what.into(),
        "`glob` crate, `any` over `Pattern`s (1 thread)".into(),
        human(glob_any_t),
        glob_any_runs.to_string(),
        ratio(glob_any_t, engine.last_match),
        any_note(glob_any_n),
    ]);
    if let Some(p) = &pico {
        section.row(&[
            what.into(),
            "picomatch 4 (node, one matcher for all globs)".into(),
            human(p.any),
            p.any_runs.to_string(),
            ratio(p.any, engine.last_match),
            any_note(p.any_count),
        ]);
    }
    section.row(&[
        "compile the 1,000 rules".into(),
        "agent-gate `RuleSet::compiled` / globset / `glob`".into(),
        format!(
            "{} / {} / {}",
            human(engine.compile),
            human(gs_compile),
            human(glob_compile)
        ),
        "1".into(),
        String::new(),
        String::new(),
    ]);
    section.note(
        "Ratios are against agent-gate's batch call (`last_match_many`, or `decide_many` for the \
         decision rows); `×1.0` is agent-gate itself, above 1 is slower. agent-gate's rows are \
         medians of seven runs; a run over 5 s (20 s for picomatch) is taken once, others three \
         times (the machine is shared). Plain `globset` answers \"any rule\" fast (it stops at \
         the first match), but asking it for every matching rule of this set falls back from \
         its lazy DFA to a PikeVM (the regex set is too large for the DFA cache): that is why \
         agent-gate splits rules by shape (literal paths and directories in hash maps, \
         `dir/<glob>` per directory) and remembers each directory's answer.",
    );
    if pico.is_none() {
        section.note("picomatch was not measured (set `PICOMATCH_DIR`, as `bench/run.sh` does).");
    }
    Detail {
        all: gs_all_t,
        all_runs: gs_all_runs,
        agreement: agreement(gs_differ, total),
        table: section.text,
    }
}

/// The median of `runs` timings of `f`, or `first` alone when that one run took over 5 s
/// (the machine is shared); and how many runs that was.
fn again<T>(first: Duration, runs: usize, f: impl FnMut() -> T) -> (Duration, usize) {
    if first > Duration::from_secs(5) || runs <= 1 {
        (first, 1)
    } else {
        (time(runs, f).1, runs)
    }
}

/// picomatch's answers and timings.
struct Pico {
    any: Duration,
    any_runs: usize,
    any_count: usize,
    all: Duration,
    all_runs: usize,
    differ: usize,
}

/// Export the rules and paths, run `bench/picomatch.mjs` with node, compare its answers.
fn picomatch(paths: &[String], rules: &[GenRule], ours_all: &[Vec<usize>]) -> Option<Pico> {
    let Some(module_dir) = std::env::var_os("PICOMATCH_DIR") else {
        println!("picomatch: PICOMATCH_DIR not set, skipped (bench/run.sh installs it)");
        return None;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let rules_file = dir.path().join("rules.json");
    let paths_file = dir.path().join("paths.txt");
    let answers_file = dir.path().join("picomatch-matches.txt");
    let globs: Vec<&[String]> = rules.iter().map(|r| r.globs.as_slice()).collect();
    std::fs::write(&rules_file, serde_json::to_string(&globs).expect("json")).expect("write rules");
    std::fs::write(&paths_file, paths.join("\n") + "\n").expect("write paths");
    if let Some(keep) = std::env::var_os("BENCH_OUT") {
        // Keep a copy of the exported input next to the results, for anyone re-running node.
        let keep = std::path::PathBuf::from(keep);
        let _ = std::fs::copy(&rules_file, keep.join("scope-rules.json"));
        let _ = std::fs::copy(&paths_file, keep.join("scope-paths.txt"));
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/picomatch.mjs");
    let runs = if common::quick() { "1" } else { "3" };
    println!("picomatch: running node (this takes a minute or two)…");
    let out = std::process::Command::new("node")
        .arg(script)
        .arg(&rules_file)
        .arg(&paths_file)
        .arg(&answers_file)
        .arg(runs)
        .env("PICOMATCH_DIR", module_dir)
        .stderr(std::process::Stdio::inherit())
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            println!("picomatch: node failed ({}), skipped", o.status);
            return None;
        }
        Err(e) => {
            println!("picomatch: cannot run node ({e}), skipped");
            return None;
        }
    };
    let report: serde_json::Value = serde_json::from_slice(out.stdout.trim_ascii())
        .expect("picomatch.mjs prints one JSON object");
    println!("picomatch: {report}");
    let answers = std::fs::read_to_string(&answers_file).expect("picomatch answers");
    let theirs: Vec<Vec<usize>> = answers
        .lines()
        .map(|l| {
            l.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .collect();
    let differ = disagreements("picomatch", paths, ours_all, &theirs);
    let secs = |k: &str| Duration::from_secs_f64(report[k].as_f64().unwrap_or(0.0) / 1000.0);
    let count = |k: &str| {
        report[k]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
    };
    Some(Pico {
        any: secs("any_ms"),
        any_runs: count("any_runs"),
        any_count: count("any_count"),
        all: secs("all_ms"),
        all_runs: count("all_runs"),
        differ,
    })
}

/// A Markdown table built here (the generated set's detailed comparison goes below the
/// side-by-side table of every data set, in the same section).
struct Table {
    text: String,
}

impl Table {
    fn new(columns: &[&str]) -> Table {
        let mut text = format!("| {} |\n|", columns.join(" | "));
        for _ in columns {
            text.push_str("---|");
        }
        text.push('\n');
        Table { text }
    }

    fn row(&mut self, cells: &[String]) {
        let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(self.text, "| {} |", cells.join(" | "));
    }

    fn note(&mut self, note: &str) {
        let _ = write!(self.text, "\n{note}\n");
    }
}

/// `total / count`, for averages of counts well below 2^32.
fn per(total: usize, count: usize) -> f64 {
    let f = |n: usize| f64::from(u32::try_from(n).unwrap_or(u32::MAX));
    f(total) / f(count.max(1))
}

/// What the generated set's detailed comparison found for plain `globset`.
struct Detail {
    /// `matches_into` over the 1,000 rules, every path, one thread.
    all: Duration,
    all_runs: usize,
    /// Whether its matching rules equal agent-gate's on every path.
    agreement: String,
    /// The detailed table (every tool), Markdown.
    table: String,
}

/// One data set: gitignore rules, their exact translation to plain globs, and paths.
struct DataSet {
    name: String,
    rules: Vec<String>,
    /// For each rule, globs of which one matches exactly when the rule does.
    globs: Vec<Vec<String>>,
    paths: Vec<String>,
    /// The first `allow` rules are the decision's allow list, the rest its deny list.
    allow: usize,
}

impl DataSet {
    fn scope(&self) -> Scope {
        Scope::new(
            rule_list(&self.rules[..self.allow], 1),
            rule_list(&self.rules[self.allow..], self.allow + 1),
            RuleSet::default(),
            POLICY_PATH,
        )
        .expect("scope")
    }
}

/// One row of the side-by-side table.
struct SetRow {
    name: String,
    rules: usize,
    allow_deny: (usize, usize),
    paths: usize,
    matches_per_path: f64,
    decide_many: Duration,
    last_match_many: Duration,
    globset_all: Option<(Duration, usize)>,
    agreement: String,
}

/// The plain-glob translation of gitignore rules for `globset` (with `literal_separator`),
/// exact on `paths` and no larger than it needs to be there: each rule's glob itself
/// (`**/` in front when it has no `/` but a trailing one, which anchors it nowhere) unless
/// it is for directories only, and `…/**` for what is below a directory it matches, only
/// when it matches one of the directories of `paths` (an extension rule such as `*.log`
/// needs no `**/*.log/**` where no directory is named `x.log`). That keeps `globset` off
/// its slow path wherever the data allows; every answer is still compared with agent-gate's.
fn gitignore_globs(rules: &[String], paths: &[String]) -> Vec<Vec<String>> {
    let mut dirs: Vec<&str> = paths
        .iter()
        .flat_map(|p| p.match_indices('/').map(move |(at, _)| &p[..at]))
        .collect();
    dirs.sort_unstable();
    dirs.dedup();
    rules
        .iter()
        .map(|rule| {
            let (body, dir_only) = match rule.strip_suffix('/') {
                Some(body) => (body, true),
                None => (rule.as_str(), false),
            };
            let anchored = body.contains('/');
            let body = body.strip_prefix('/').unwrap_or(body);
            let base = if anchored {
                body.to_string()
            } else {
                format!("**/{body}")
            };
            let mut globs = Vec::new();
            if !dir_only {
                globs.push(base.clone());
            }
            if dir_only || !base.ends_with("/**") {
                let matcher = GlobBuilder::new(&base)
                    .literal_separator(true)
                    .build()
                    .expect("glob")
                    .compile_matcher();
                if dirs.iter().any(|d| matcher.is_match(d)) {
                    globs.push(format!("{base}/**"));
                }
            }
            globs
        })
        .collect()
}

/// The data sets besides the project's generator: the three real CODEOWNERS corpora scaled
/// up to 100,000 paths with their own path shapes, and a gitignore-style set. Only those
/// whose label (`CODEOWNERS corpus <repo>` in backticks, or `gitignore-style`) holds `only`
/// are built (building one takes seconds).
fn data_sets(only: &str) -> Vec<DataSet> {
    let mut sets = Vec::new();
    for repo in [
        "DataDog-integrations-extras",
        "esphome-esphome",
        "DataDog-dd-trace-py",
    ] {
        if !format!("CODEOWNERS corpus `{repo}`").contains(only) {
            continue;
        }
        match scaled_corpus(repo) {
            Some(set) => sets.push(set),
            None => println!("corpus {repo}: not found, skipped"),
        }
    }
    if "gitignore-style".contains(only) {
        sets.push(gitignore_set());
    }
    sets
}

/// A real corpus (`tests/data/corpus/<repo>`) scaled up: its rules as given, padded to
/// 1,000 with rules of the same shapes (each a real rule with its literal directory names
/// swapped for other real directory names at the same depth); 100,000 paths made of its
/// real paths plus real directories joined with real file names (a fifth of them one
/// level deeper, under a real directory name found at that depth).
fn scaled_corpus(repo: &str) -> Option<DataSet> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/corpus/");
    let rules_text = std::fs::read_to_string(format!("{dir}{repo}/rules.txt")).ok()?;
    let paths_text = std::fs::read_to_string(format!("{dir}{repo}/paths.txt")).ok()?;
    let mut rng = Rng(0xc0de_0000 + repo.len() as u64);
    let real: Vec<&str> = paths_text.lines().collect();
    // Directory names by depth (0 = top level), and file names.
    let mut names_at: Vec<Vec<&str>> = Vec::new();
    let mut files: Vec<&str> = Vec::new();
    let mut dirs: Vec<&str> = Vec::new();
    for p in &real {
        let parts: Vec<&str> = p.split('/').collect();
        for (depth, name) in parts[..parts.len() - 1].iter().enumerate() {
            if names_at.len() <= depth {
                names_at.push(Vec::new());
            }
            names_at[depth].push(name);
        }
        files.push(parts[parts.len() - 1]);
        if let Some(at) = p.rfind('/') {
            dirs.push(&p[..at]);
        }
    }
    for names in &mut names_at {
        names.sort_unstable();
        names.dedup();
    }
    dirs.sort_unstable();
    dirs.dedup();
    let mut paths: Vec<String> = real.iter().map(|p| (*p).to_string()).collect();
    while paths.len() < 100_000 {
        let file = files[rng.below(files.len())];
        let dir = dirs[rng.below(dirs.len())];
        let depth = dir.matches('/').count() + 1;
        if rng.chance(20) && depth < names_at.len() {
            let extra = names_at[depth][rng.below(names_at[depth].len())];
            paths.push(format!("{dir}/{extra}/{file}"));
        } else {
            paths.push(format!("{dir}/{file}"));
        }
    }
    let mut rules: Vec<String> = rules_text.lines().map(str::to_string).collect();
    let given = rules.len();
    while rules.len() < 1000 {
        let model = &rules[rng.below(given)];
        let anchored = model.starts_with('/');
        let body = model.trim_start_matches('/');
        let parts: Vec<&str> = body.split('/').collect();
        let mut out: Vec<String> = Vec::new();
        for (depth, part) in parts.iter().enumerate() {
            let is_last_name = depth + 1 == parts.len();
            let literal = !part.is_empty() && !part.contains(['*', '?', '[', '\\']);
            if literal && !is_last_name && depth < names_at.len() {
                out.push(names_at[depth][rng.below(names_at[depth].len())].to_string());
            } else if literal && is_last_name && parts.len() > 1 && depth < names_at.len() {
                // A directory rule (`a/b/`, `a/b`) names another real directory.
                let names = &names_at[depth];
                if rng.chance(50) {
                    out.push(names[rng.below(names.len())].to_string());
                } else {
                    out.push((*part).to_string());
                }
            } else {
                out.push((*part).to_string());
            }
        }
        let joined = out.join("/");
        rules.push(if anchored {
            format!("/{joined}")
        } else {
            joined
        });
    }
    let globs = gitignore_globs(&rules, &paths);
    Some(DataSet {
        name: format!("CODEOWNERS corpus `{repo}` ({given} real rules)"),
        rules,
        globs,
        paths,
        allow: 700,
    })
}

/// A gitignore-style set: 1,000 rules of the shapes `.gitignore` files hold (extensions,
/// literal file names, anchored directories and files, names at any depth, `dir/**/*.ext`,
/// `**/name/*.ext`, `dir/*.ext`, editor backups, character classes), most of which match
/// few paths, over a generated project tree of 100,000 paths.
fn gitignore_set() -> DataSet {
    const DIR_WORDS: &[&str] = &[
        "src",
        "lib",
        "app",
        "core",
        "api",
        "cmd",
        "pkg",
        "internal",
        "ui",
        "components",
        "utils",
        "models",
        "views",
        "server",
        "client",
        "tests",
        "test",
        "docs",
        "scripts",
        "config",
        "assets",
        "static",
        "templates",
        "migrations",
        "handlers",
        "services",
        "plugins",
        "tools",
        "examples",
        "fixtures",
        "data",
        "common",
        "shared",
        "hooks",
        "styles",
        "public",
        "include",
        "bin",
        "vendor",
        "third_party",
    ];
    const CODE_EXTS: &[&str] = &[
        "rs", "py", "js", "ts", "tsx", "go", "c", "h", "cpp", "java", "kt", "rb", "md", "json",
        "yaml", "yml", "toml", "html", "css", "scss", "sql", "sh", "txt", "proto", "xml",
    ];
    const JUNK_EXTS: &[&str] = &[
        "log", "tmp", "bak", "swp", "swo", "pyc", "pyo", "o", "obj", "class", "cache", "so",
        "dylib", "dll", "exe", "out", "orig", "rej", "iml", "lock", "pid", "seed", "tgz", "zip",
        "egg", "whl", "map", "min.js", "d", "coverage", "lcov", "prof", "pdb", "idb",
    ];
    const FILE_NAMES: &[&str] = &[
        ".DS_Store",
        "Thumbs.db",
        "desktop.ini",
        ".env",
        ".env.local",
        "npm-debug.log",
        "yarn-error.log",
        ".coverage",
        "coverage.xml",
        ".python-version",
        "local.properties",
        ".idea",
        ".vscode",
        "package-lock.json",
        "Cargo.lock",
        "go.sum",
        "nohup.out",
        "core",
        ".eslintcache",
        "secrets.yml",
    ];
    const DIR_NAMES: &[&str] = &[
        "node_modules",
        "__pycache__",
        "build",
        "dist",
        "target",
        "out",
        ".cache",
        "coverage",
        ".pytest_cache",
        ".mypy_cache",
        ".tox",
        ".venv",
        "venv",
        "env",
        "tmp",
        "logs",
        ".next",
        ".nuxt",
        "bower_components",
        ".gradle",
        "obj",
        "bin",
        "generated",
        "gen",
    ];
    let mut rng = Rng(0x6170_6e6f_7265);
    // The tree: directories 1 to 7 levels deep, a few generated ones among them.
    let mut dirs: Vec<String> = DIR_WORDS[..12].iter().map(|w| (*w).to_string()).collect();
    while dirs.len() < 9000 {
        let parent = dirs[rng.below(dirs.len())].clone();
        if parent.matches('/').count() >= 6 {
            continue;
        }
        let name = if rng.chance(2) {
            rng.pick(DIR_NAMES).to_string()
        } else if rng.chance(30) {
            format!("{}_{}", rng.pick(DIR_WORDS), rng.below(40))
        } else {
            rng.pick(DIR_WORDS).to_string()
        };
        dirs.push(format!("{parent}/{name}"));
    }
    dirs.sort();
    dirs.dedup();
    let mut paths = Vec::with_capacity(100_000);
    for i in 0..100_000usize {
        let dir = &dirs[rng.below(dirs.len())];
        let name = match rng.below(100) {
            0..=2 => rng.pick(FILE_NAMES).to_string(),
            3..=6 => format!("{}_{}.{}", rng.pick(DIR_WORDS), i % 50, rng.pick(JUNK_EXTS)),
            7..=10 => format!("{}.{}", rng.pick(DIR_WORDS), rng.pick(CODE_EXTS)),
            11 => format!("{}.{}~", rng.pick(DIR_WORDS), rng.pick(CODE_EXTS)),
            _ => format!("{}_{i}.{}", rng.pick(DIR_WORDS), rng.pick(CODE_EXTS)),
        };
        paths.push(format!("{dir}/{name}"));
    }
    // Extensions and names no file uses, as real ignore files are full of.
    let rare = |rng: &mut Rng| format!("x{}{}", rng.pick(DIR_WORDS), rng.below(1000));
    let mut rules: Vec<String> = Vec::with_capacity(1000);
    let mut seen = std::collections::HashSet::new();
    while rules.len() < 1000 {
        let dir = &dirs[rng.below(dirs.len())];
        let rule = match rng.below(100) {
            0..=7 => format!("*.{}", rng.pick(JUNK_EXTS)),
            8..=29 => format!("*.{}", rare(&mut rng)),
            30..=34 => rng.pick(FILE_NAMES).to_string(),
            35..=49 => format!("{}.{}", rare(&mut rng), rng.pick(CODE_EXTS)),
            50..=54 => format!("/{}/", rng.pick(DIR_NAMES)),
            55..=58 => format!("/{dir}/{}/", rng.pick(DIR_NAMES)),
            59..=65 => format!("{dir}/**/*.{}", rng.pick(JUNK_EXTS)),
            66..=72 => format!("**/{}/*.{}", rng.pick(DIR_NAMES), rng.pick(JUNK_EXTS)),
            73..=74 => format!("{}/", rare(&mut rng)),
            75 => rng.pick(DIR_NAMES).to_string() + "/",
            76..=83 => format!("/{dir}/{}.{}", rare(&mut rng), rng.pick(CODE_EXTS)),
            84..=87 => format!("{dir}/*.{}", rng.pick(JUNK_EXTS)),
            88 => "*~".to_string(),
            89 => ".#*".to_string(),
            90 => "*.py[cod]".to_string(),
            91 => "*.sw?".to_string(),
            92..=93 => format!("{}*", rare(&mut rng)),
            94 => format!("**/{}", rng.pick(DIR_NAMES)),
            95..=97 => format!("{}/*/{}", rng.pick(DIR_WORDS), rng.pick(DIR_NAMES)),
            _ => format!("/{}/**/{}/", rng.pick(DIR_WORDS), rare(&mut rng)),
        };
        // A real ignore file names each rule once.
        if seen.insert(rule.clone()) {
            rules.push(rule);
        }
    }
    let globs = gitignore_globs(&rules, &paths);
    DataSet {
        name: "gitignore-style (extensions, names, anchored directories, `dir/**/*.ext`, …)".into(),
        rules,
        globs,
        paths,
        allow: 700,
    }
}

/// agent-gate and plain `globset` on one data set: the decision (first `allow` rules
/// allow, the rest deny), the deciding rule of all of them, and every matching rule
/// through `GlobSet::matches_into`, compared on every path.
fn measure(data: &DataSet, runs: usize) -> SetRow {
    println!("\ndata set: {}", data.name);
    let set = rule_set(&data.rules, 1);
    let scope = data.scope();
    let (_, last_match_many) = time(runs, || set.last_match_many(&data.paths));
    let (_, decide_many) = time(runs, || scope.decide_many(&data.paths));
    let ours: Vec<Vec<usize>> = data
        .paths
        .iter()
        .map(|p| set.matches(p.as_bytes()))
        .collect();
    let decided = set.last_match_many(&data.paths);
    assert!(
        ours.iter()
            .zip(&decided)
            .all(|(all, last)| all.last().copied() == *last),
        "RuleSet::matches and last_match_many disagree"
    );
    let matches_per_path = per(ours.iter().map(Vec::len).sum(), data.paths.len());
    let (gs, owner) = globset_of(data.globs.iter().cloned());
    let start = Instant::now();
    let theirs = globset_all(&gs, &owner, &data.paths);
    let first = start.elapsed();
    let differ = disagreements("globset", &data.paths, &ours, &theirs);
    let globset_all_t = again(first, runs, || globset_all(&gs, &owner, &data.paths));
    println!(
        "  {} rules × {} paths, {matches_per_path:.2} matches per path: decide_many {}, \
         last_match_many {}, globset matches_into {}",
        data.rules.len(),
        data.paths.len(),
        ms(decide_many),
        ms(last_match_many),
        ms(globset_all_t.0)
    );
    SetRow {
        name: data.name.clone(),
        rules: data.rules.len(),
        allow_deny: (data.allow, data.rules.len() - data.allow),
        paths: data.paths.len(),
        matches_per_path,
        decide_many,
        last_match_many,
        globset_all: Some(globset_all_t),
        agreement: agreement(differ, data.paths.len()),
    }
}

/// The `scope` section: every data set side by side, then the generated set's detailed
/// comparison with every tool.
fn report(rows: &[SetRow], detail: Option<&str>, cores: usize) {
    let mut section = common::Section::new(
        "scope",
        "Scope matching: 1,000 rules × 100,000 paths, every data set",
        &format!(
            "Four data sets, each 1,000 gitignore rules (±3 %) × 100,000 paths: the project's \
             generator (`benches/scope.rs`: 195 of its rules name a directory at any depth, so a \
             path matches 36 rules on average); the three real CODEOWNERS files of \
             `tests/data/corpus/`, padded to 1,000 rules of their own shapes, over their real \
             paths plus real directories joined with real file names; and a gitignore-style \
             set (extensions, literal names, anchored directories, `dir/**/*.ext`, \
             `**/name/*.ext`, …) where a path matches few rules. The decision uses the first \
             700 rules as `allow` and the rest as `deny` (the generator: 300 deny rules of its \
             own), plus the always-protected paths. agent-gate's batch calls use all {cores} \
             cores; `globset` lists every matching rule of the same rules on one thread, translated \
             to plain globs as tightly as each data set allows (the generator's own \
             translation; for the others `x` → `**/x`, `/a/b/` → `a/b/**`, and `…/**` for what \
             is below a matching directory only where a directory of the set matches, so \
             `*.log` is `**/*.log` alone), and its answers are compared with agent-gate's on \
             every path."
        ),
        &[
            "data set",
            "rules (allow + deny) × paths",
            "matches per path",
            "agent-gate `Scope::decide_many`",
            "agent-gate `RuleSet::last_match_many`",
            "globset `matches_into`",
            "globset ÷ decision",
            "globset ÷ last_match_many",
            "answers",
        ],
    );
    for r in rows {
        let (gs, gs_ratio_decide, gs_ratio_last) = match r.globset_all {
            Some((t, runs)) => (
                format!(
                    "{} ({runs} run{})",
                    human(t),
                    if runs == 1 { "" } else { "s" }
                ),
                ratio(t, r.decide_many),
                ratio(t, r.last_match_many),
            ),
            None => ("not measured".into(), "–".into(), "–".into()),
        };
        section.row(&[
            r.name.clone(),
            format!(
                "{} ({} + {}) × {}",
                thousands(r.rules),
                r.allow_deny.0,
                r.allow_deny.1,
                thousands(r.paths)
            ),
            format!("{:.2}", r.matches_per_path),
            human(r.decide_many),
            human(r.last_match_many),
            gs,
            gs_ratio_decide,
            gs_ratio_last,
            r.agreement.clone(),
        ]);
    }
    section.note(
        "agent-gate's times are medians of seven runs; `globset`'s of seven, or one run when \
         one takes over 5 s. The machine is shared: compare the ratios. The target is under \
         100 ms for the decision and at least ×2.5 against `globset` on every row.",
    );
    if let Some(detail) = detail {
        section.note(&format!(
            "The generated set against every tool (1,000 rules × 100,002 paths; each tool gets \
             the generator's own translation of each rule, compared on every path):\n\n{detail}"
        ));
    }
    section.finish();
}
