//! Scope engine benchmark: 1,000 rules × 100,000 paths, the full decision for every path.
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
//! - the real corpora of `shared/corpus/` (their rules × every path of their trees).
//!
//! Run: `cargo bench --bench scope` (release profile). The target is under 100 ms for the
//! 1,000 × 100,000 decision set. `SCOPE_BENCH_BREAKDOWN=1` also times each kind of rule alone.

use std::hint::black_box;
use std::time::{Duration, Instant};

use agent_gate::scope::{Pattern, Rule, RuleOrigin, RuleSet, Scope};

/// splitmix64: a small seeded generator, so every run measures the same input.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

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

fn generate_rules(rng: &mut Rng, dirs: &[String], count: usize) -> Vec<(usize, String)> {
    let mut rules = Vec::with_capacity(count);
    while rules.len() < count {
        let dir = &dirs[rng.below(dirs.len())];
        let word = rng.pick(WORDS);
        let ext = rng.pick(EXTS);
        let kind = rng.below(100);
        let rule = match kind {
            0..=24 => format!("{dir}/*"),  // CODEOWNERS style: everything below dir
            25..=39 => format!("/{dir}/"), // anchored directory
            40..=47 => format!("{dir}/*.{ext}"), // files of one type in one directory
            48..=53 => format!("{dir}/**/*.{ext}"), // files of one type below a directory
            54..=61 => format!("*.{ext}"), // an extension anywhere
            62..=69 => format!("{word}/"), // a directory name anywhere
            70..=75 => word.to_string(),   // a name anywhere
            76..=80 => format!("**/{word}/**"),
            81..=85 => format!("{}/*/{word}", rng.pick(TOP)),
            86..=89 => format!("{dir}/{}.{ext}", rng.pick(FILES)), // one file
            90..=93 => format!("{dir}/{word}_*"),
            94..=96 => format!("*.{{{ext},{}}}", rng.pick(EXTS)),
            _ => format!("{}/[a-m]*/", rng.pick(TOP)),
        };
        rules.push((kind, rule));
    }
    rules
}

/// Narrower rules, as a `deny` list holds: single files, secrets, generated directories.
fn generate_deny_rules(rng: &mut Rng, dirs: &[String], count: usize) -> Vec<String> {
    let mut rules = Vec::with_capacity(count);
    while rules.len() < count {
        let dir = &dirs[rng.below(dirs.len())];
        let rule = match rng.below(100) {
            0..=39 => format!("{dir}/{}.{}", rng.pick(FILES), rng.pick(EXTS)),
            40..=59 => format!("/{dir}/"),
            60..=74 => format!("{dir}/*.{}", rng.pick(&["sql", "lock", "pem"])),
            75..=84 => format!("{dir}/**/*.pem"),
            85..=89 => format!("**/{}_{}/**", rng.pick(WORDS), rng.below(50)),
            90..=94 => format!("{}_{}/", rng.pick(WORDS), rng.below(50)),
            _ => "*.pem".to_string(),
        };
        rules.push(rule);
    }
    rules
}

fn rule_set(rules: &[String], first_line: usize) -> RuleSet {
    RuleSet::new(
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
            .collect(),
    )
}

/// Best and median of `runs` timings of `f`.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let mut all: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    all.sort();
    (all[0], all[all.len() / 2])
}

fn ms(d: Duration) -> String {
    format!("{:8.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is ignored too.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut rng = Rng(0x5eed_2026);
    let (paths, dirs) = generate_paths(&mut rng, 100_000);
    let kinded = generate_rules(&mut rng, &dirs, 1000);
    let rules: Vec<String> = kinded.iter().map(|(_, r)| r.clone()).collect();
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
            let part: Vec<String> = kinded
                .iter()
                .filter(|(k, _)| (lo..=hi).contains(k))
                .map(|(_, r)| r.clone())
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
    println!(
        "compile 1000 rules (RuleSet::new):          {}",
        ms(start.elapsed())
    );

    let allow_rules = &rules[..700];
    let deny_rules = generate_deny_rules(&mut rng, &dirs, 300);
    let start = Instant::now();
    let scope = Scope::new(
        rule_set(allow_rules, 1),
        rule_set(&deny_rules, 701),
        RuleSet::default(),
        ".github/agent-gate.yml",
    )
    .expect("scope");
    println!(
        "compile scope (700 allow + 300 deny):       {}",
        ms(start.elapsed())
    );

    let decided = set.last_match_many(&paths);
    let matched = decided.iter().filter(|d| d.is_some()).count();
    let (best, median) = time(7, || set.last_match_many(&paths));
    println!(
        "RuleSet::last_match_many  best {} median {}   ({matched} paths matched a rule)",
        ms(best),
        ms(median)
    );

    let decisions = scope.decide_many(&paths);
    let in_scope = decisions.iter().filter(|d| d.in_scope).count();
    let (best, median) = time(7, || scope.decide_many(&paths));
    println!(
        "Scope::decide_many        best {} median {}   ({in_scope} in scope)",
        ms(best),
        ms(median)
    );

    let (best, median) = time(3, || {
        paths
            .iter()
            .map(|p| scope.decide(p.as_bytes()))
            .filter(|d| d.in_scope)
            .count()
    });
    println!(
        "Scope::decide (1 thread)  best {} median {}",
        ms(best),
        ms(median)
    );

    // Consistency: batch and single answers agree.
    assert!(
        paths
            .iter()
            .zip(&decided)
            .all(|(p, d)| set.last_match(p.as_bytes()) == *d)
    );

    for repo in [
        "DataDog-integrations-extras",
        "esphome-esphome",
        "DataDog-dd-trace-py",
    ] {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus/");
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
