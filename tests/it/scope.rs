//! Tests of the scope engine (`agent_gate::scope`): git's glob function against git's own
//! vectors, gitignore rules against git's answers on real CODEOWNERS corpora and against
//! `git check-ignore` on random rule and path sets, and the scope decision.

use std::io::Write;
use std::process::{Command, Stdio};

use agent_gate::scope::{Pattern, Reason, Rule, RuleOrigin, RuleRef, RuleSet, Scope, Wildmatch};
use proptest::prelude::*;

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared");

/// Every vector of git's t3070: column `wildmatch` (the function gitignore uses for rules
/// with a slash). A rejected pattern agrees with an expected 0 and never with a 1.
#[test]
fn wildmatch_conformance_every_vector() {
    let text = std::fs::read_to_string(format!("{SHARED}/conformance/wildmatch.tsv"))
        .expect("read wildmatch.tsv");
    let mut lines = text.split('\n');
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let (c_pattern, c_path, c_expected, c_line) = (
        col("pattern"),
        col("path"),
        col("wildmatch"),
        col("t3070_line"),
    );
    let mut rows = 0;
    let mut failures = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue; // the final newline
        }
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), header.len(), "malformed row {line:?}");
        rows += 1;
        let (pattern, path, expected) = (fields[c_pattern], fields[c_path], fields[c_expected]);
        let expected = match expected {
            "1" => true,
            "0" => false,
            other => panic!("unexpected wildmatch value {other:?}"),
        };
        let got = match Wildmatch::new(pattern) {
            Ok(m) => Ok(m.is_match(path.as_bytes())),
            Err(e) => Err(e.reason),
        };
        let agrees = match &got {
            Ok(m) => *m == expected,
            Err(_) => !expected,
        };
        if !agrees {
            let glob = Wildmatch::new(pattern)
                .map(|m| m.glob().to_string())
                .unwrap_or_default();
            failures.push(format!(
                "t3070:{} pattern {pattern:?} path {path:?}: git {expected}, engine {got:?} (glob {glob:?})",
                fields[c_line]
            ));
        }
    }
    assert_eq!(rows, 191, "every row of wildmatch.tsv is checked");
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Vectors beyond t3070 from the conformance README (git's wildmatch.c answers).
#[test]
fn wildmatch_probes_beyond_t3070() {
    let cases: &[(&str, &[u8], bool)] = &[
        ("[[:space:]]", b"\x0b", false),
        ("[[:space:]]", b"\x0c", false),
        ("[[:space:]]", b"\t", true),
        ("[[:space:]]", b"\r", true),
        ("foo/***/bar", b"foo/bar", true),
        ("foo/***/bar", b"foo/a/b/bar", true),
        ("foo/**\\/bar", b"foo/a/b/bar", true),
        ("foo/**\\/bar", b"foo/bar", false),
        ("**\\/bar", b"bar", false),
        ("**\\/bar", b"a/bar", true),
        ("**/", b"a", false),
        ("{a,b}", b"a", false),
        ("{a,b}", b"{a,b}", true),
        ("a{b", b"a{b", true),
        ("a}b", b"a}b", true),
        ("[z-a]", b"z", true),
        ("[z-a]", b"b", false),
        ("??", "é".as_bytes(), true),
        ("?", "é".as_bytes(), false),
        ("foo/**", b"foo", false),
        ("foo/**", b"foo/a", true),
        ("**", b"", true),
        ("[/]", b"/", false),
        ("[!a]", b"/", false),
        ("[!a]", b"\xff", true),
        ("[!^]", b"^", false),
        ("[!^]", b"!", true),
        ("[^!]", b"!", false),
        ("[!!]", b"!", false),
        ("[\\!^]", b"^", true),
        ("[\\!^]", b"!", true),
        ("[\\!^]", b"a", false),
        ("[!-]", b"-", false),
        ("[-!^]", b"!", true),
        ("[]-]", b"-", true),
        ("[]-]", b"]", true),
        ("[[:]", b":", true),
        ("[[:]", b"[", true),
        ("[a-c-e]", b"d", false),
        ("[a-c-e]", b"-", true),
        ("[[:digit:]-z]", b"-", true),
        ("[[:digit:]-z]", b"y", false),
        ("[\\]]", b"]", true),
        ("a[[:cntrl:]]b", b"a\nb", true),
    ];
    for &(pattern, text, expected) in cases {
        let m = Wildmatch::new(pattern).unwrap_or_else(|e| panic!("{pattern:?}: {e}"));
        assert_eq!(
            m.is_match(text),
            expected,
            "pattern {pattern:?} text {:?} (glob {:?})",
            bstr::BStr::new(text),
            m.glob()
        );
    }
}

#[test]
fn pattern_smoke() {
    let p = Pattern::new("src/*").unwrap();
    assert!(p.is_match(b"src/a/b.rs"));
}

fn rule_set(patterns: &[&str]) -> RuleSet {
    RuleSet::new(
        patterns
            .iter()
            .enumerate()
            .map(|(i, p)| Rule {
                pattern: Pattern::new(p).unwrap_or_else(|e| panic!("{e}")),
                origin: RuleOrigin::Policy {
                    line: i + 1,
                    column: 1,
                },
            })
            .collect(),
    )
}

/// Real CODEOWNERS rule sets and path lists: for every sampled path, the last matching
/// rule and the number of matching rules equal git's (`check-ignore --no-index`).
#[test]
fn corpus_last_rule_and_match_count_equal_gits() {
    let mut checked = 0;
    for repo in [
        "DataDog-dd-trace-py",
        "DataDog-integrations-extras",
        "esphome-esphome",
    ] {
        let dir = format!("{SHARED}/corpus/{repo}");
        let rules_text = std::fs::read_to_string(format!("{dir}/rules.txt")).expect("rules.txt");
        let rules: Vec<&str> = rules_text.lines().collect();
        let set = rule_set(&rules);
        let expected = std::fs::read(format!("{dir}/expected.tsv")).expect("expected.tsv");
        let mut failures = Vec::new();
        let mut paths = Vec::new();
        let mut wanted = Vec::new();
        for row in expected
            .split(|&b| b == b'\n')
            .skip(1)
            .filter(|r| !r.is_empty())
        {
            let fields: Vec<&[u8]> = row.split(|&b| b == b'\t').collect();
            assert_eq!(fields.len(), 3, "row {:?}", bstr::BStr::new(row));
            let number = |f: &[u8]| -> usize { std::str::from_utf8(f).unwrap().parse().unwrap() };
            let (path, last, count) = (fields[0], number(fields[1]), number(fields[2]));
            let matches = set.matches(path);
            let got_last = matches.last().map_or(0, |i| i + 1);
            if got_last != last || matches.len() != count {
                failures.push(format!(
                    "{repo}: {:?}: git last={last} count={count}, engine last={got_last} count={} ({:?})",
                    bstr::BStr::new(path),
                    matches.len(),
                    matches.iter().map(|&i| rules[i]).collect::<Vec<_>>()
                ));
            }
            paths.push(path.to_vec());
            wanted.push(last.checked_sub(1));
            checked += 1;
        }
        // The batch API agrees with the single-path one.
        assert_eq!(
            set.last_match_many(&paths),
            wanted,
            "{repo}: last_match_many"
        );
        assert!(
            failures.is_empty(),
            "{} disagreements:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    assert_eq!(checked, 6000);
}

/// git itself, as the oracle: `check-ignore --no-index` in an empty scratch repository
/// (no files on disk, empty index: a path is never seen as a directory, as in a change).
struct Git {
    dir: tempfile::TempDir,
}

impl Git {
    fn new() -> Git {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new("git")
            .args(["init", "-q", "--template="])
            .arg(dir.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .status()
            .expect("run git init");
        assert!(status.success());
        Git { dir }
    }

    /// Which of `paths` git ignores with `rules` as the whole exclude file.
    fn ignored(&self, rules: &[&str], paths: &[Vec<u8>]) -> Vec<bool> {
        let file = self.dir.path().join("rules");
        let mut text = String::new();
        for r in rules {
            text.push_str(r);
            text.push('\n');
        }
        std::fs::write(&file, text).expect("write rules");
        let mut child = Command::new("git")
            .arg("-C")
            .arg(self.dir.path())
            .arg("-c")
            .arg(format!("core.excludesFile={}", file.display()))
            .args([
                "-c",
                "core.ignoreCase=false",
                "check-ignore",
                "--no-index",
                "-z",
                "--stdin",
            ])
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run git check-ignore");
        let mut input = Vec::new();
        for p in paths {
            input.extend_from_slice(p);
            input.push(0);
        }
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&input)
            .expect("write paths");
        let out = child.wait_with_output().expect("git check-ignore");
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "git check-ignore failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed: std::collections::HashSet<&[u8]> = out
            .stdout
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .collect();
        paths
            .iter()
            .map(|p| listed.contains(p.as_slice()))
            .collect()
    }
}

fn rule_strategy() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec!["a", "b", "/", "*", "**", "?", "."]);
    (
        any::<bool>(),
        prop::collection::vec(piece, 1..5),
        any::<bool>(),
    )
        .prop_map(|(lead, pieces, trail)| {
            format!(
                "{}{}{}",
                if lead { "/" } else { "" },
                pieces.concat(),
                if trail { "/" } else { "" }
            )
        })
}

fn path_strategy() -> impl Strategy<Value = Vec<u8>> {
    let component: Vec<&'static [u8]> = vec![
        b"a",
        b"b",
        b"ab",
        b"ba",
        b"aa",
        b".a",
        b"a.",
        b"a.b",
        b".ab",
        b"b.a",
        b"\xff",
        "é".as_bytes(),
    ];
    prop::collection::vec(prop::sample::select(component), 1..5).prop_map(|parts| parts.join(&b'/'))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// For random rules and paths, each rule matches exactly the paths git ignores with that
    /// rule alone; rules the engine rejects are never matched by git; the whole set, the
    /// last matching rule and the allow/deny decision all follow.
    #[test]
    fn rules_agree_with_git_check_ignore(
        rules in prop::collection::vec(rule_strategy(), 1..7),
        paths in prop::collection::vec(path_strategy(), 1..16),
    ) {
        let git = Git::new();
        let mut accepted: Vec<&str> = Vec::new();
        let mut git_matrix: Vec<Vec<bool>> = Vec::new(); // [accepted rule][path]
        for rule in &rules {
            let by_git = git.ignored(&[rule.as_str()], &paths);
            match Pattern::new(rule) {
                Ok(pattern) => {
                    for (path, &ignored) in paths.iter().zip(&by_git) {
                        prop_assert_eq!(pattern.is_match(path), ignored,
                            "rule {:?} path {:?}", rule, bstr::BStr::new(path));
                    }
                    accepted.push(rule);
                    git_matrix.push(by_git);
                }
                Err(e) => prop_assert!(by_git.iter().all(|&m| !m),
                    "rejected rule {:?} ({}) but git matches some path", rule, e.reason),
            }
        }
        if accepted.is_empty() {
            return Ok(());
        }
        // The compiled set: every matching rule, and the whole file at once.
        let set = rule_set(&accepted);
        let whole = git.ignored(&accepted, &paths);
        for (p, path) in paths.iter().enumerate() {
            let want: Vec<usize> = (0..accepted.len()).filter(|&r| git_matrix[r][p]).collect();
            prop_assert_eq!(set.matches(path), want.clone(), "path {:?}", bstr::BStr::new(path));
            prop_assert_eq!(set.last_match(path), want.last().copied());
            prop_assert_eq!(whole[p], !want.is_empty());
        }
        prop_assert_eq!(set.last_match_many(&paths), paths.iter().map(|p| set.last_match(p)).collect::<Vec<_>>());

        // A scope: the first half allows, the second half denies.
        let half = accepted.len().div_ceil(2);
        let (allow_rules, deny_rules) = accepted.split_at(half);
        let scope = Scope::new(rule_set(allow_rules), rule_set(deny_rules), RuleSet::default(), "policy.yml").unwrap();
        for (p, path) in paths.iter().enumerate() {
            let last_of = |range: std::ops::Range<usize>| range.rev().find(|&r| git_matrix[r][p]);
            let decision = scope.decide(path);
            match (last_of(half..accepted.len()), last_of(0..half)) {
                (Some(d), _) => prop_assert_eq!(&decision.reason, &Reason::Denied { rule: rule_ref(accepted[d], d - half + 1) }),
                (None, Some(a)) => prop_assert_eq!(&decision.reason, &Reason::Allowed { rule: rule_ref(accepted[a], a + 1) }),
                (None, None) => prop_assert_eq!(&decision.reason, &Reason::NoAllowRule),
            }
            prop_assert_eq!(decision.in_scope, matches!(decision.reason, Reason::Allowed { .. }));
        }
    }
}

fn rule_ref(text: &str, line: usize) -> RuleRef {
    RuleRef {
        text: text.to_string(),
        origin: RuleOrigin::Policy { line, column: 1 },
    }
}
