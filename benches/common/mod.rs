//! Helpers shared by the benchmark programs of `benches/` (each a `harness = false` binary
//! that includes this file with `mod common;`): a seeded generator, median timing, and the
//! Markdown rows each program appends to `$BENCH_OUT/<name>.md` for `bench/run.sh` to
//! assemble into `bench/RESULTS.md`. Not every program uses every helper.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// splitmix64: a small seeded generator, so every run measures the same input.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Best and median of `runs` timings of `f`.
pub fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let mut all: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    all.sort();
    (all[0], median(&all))
}

/// Median of sorted or unsorted durations (the lower middle for an even count).
pub fn median(all: &[Duration]) -> Duration {
    let mut v = all.to_vec();
    v.sort();
    v.get((v.len().max(1) - 1) / 2).copied().unwrap_or_default()
}

pub fn ms(d: Duration) -> String {
    format!("{:8.2} ms", d.as_secs_f64() * 1000.0)
}

/// A human duration for the table: `46.2 ms`, `1.73 s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 0.01 {
        format!("{:.1} ms", s * 1000.0)
    } else {
        format!("{:.2} ms", s * 1000.0)
    }
}

/// `how many times` a is of b, for the ratio column: `×3.6`.
pub fn ratio(a: Duration, b: Duration) -> String {
    if b.is_zero() {
        return "–".to_string();
    }
    format!("×{:.1}", a.as_secs_f64() / b.as_secs_f64())
}

/// Number with thousands separators: 100000 → `100,000`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A Markdown section one program writes: a heading, a table, notes below it.
pub struct Section {
    name: String,
    text: String,
}

impl Section {
    /// `name` is the file stem under `$BENCH_OUT`; `title` the `###` heading.
    pub fn new(name: &str, title: &str, intro: &str, columns: &[&str]) -> Section {
        let mut text = format!("### {title}\n\n");
        if !intro.is_empty() {
            let _ = writeln!(text, "{intro}\n");
        }
        let _ = writeln!(text, "| {} |", columns.join(" | "));
        let _ = writeln!(
            text,
            "|{}",
            columns.iter().map(|_| "---|").collect::<String>()
        );
        Section {
            name: name.to_string(),
            text,
        }
    }

    pub fn row(&mut self, cells: &[String]) {
        let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(self.text, "| {} |", cells.join(" | "));
    }

    /// A paragraph after the table.
    pub fn note(&mut self, note: &str) {
        let _ = write!(self.text, "\n{note}\n");
    }

    /// Print to stdout and, when `BENCH_OUT` is set, write `$BENCH_OUT/<name>.md`.
    pub fn finish(self) {
        println!("\n{}", self.text);
        if let Some(dir) = std::env::var_os("BENCH_OUT") {
            let path = PathBuf::from(dir).join(format!("{}.md", self.name));
            if let Err(e) = std::fs::write(&path, &self.text) {
                eprintln!("cannot write {}: {e}", path.display());
            }
        }
    }
}

/// `BENCH_QUICK=1` asks for fewer repetitions (a smoke run of the harness, not numbers).
pub fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some_and(|v| !v.is_empty() && v != "0")
}
