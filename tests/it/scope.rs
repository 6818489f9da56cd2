//! Tests of the scope engine (`agent_gate::core::scope`): git's glob function against git's own
//! vectors, gitignore rules against git's answers on real CODEOWNERS corpora and against
//! `git check-ignore` on random rule and path sets, and the scope decision.

use std::io::Write;
use std::process::{Command, Stdio};

use agent_gate::core::scope::{
    Pattern, Reason, Rule, RuleOrigin, RuleRef, RuleSet, Scope, Wildmatch,
};
use proptest::prelude::*;

/// The vendored test data (`tests/data/README.md` names each source and its licence).
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// Every vector of git's t3070: column `wildmatch` (the function gitignore uses for rules
/// with a slash). A rejected pattern agrees with an expected 0 and never with a 1.
#[test]
fn wildmatch_conformance_every_vector() {
    let text = std::fs::read_to_string(format!("{DATA}/conformance/wildmatch.tsv"))
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
        let dir = format!("{DATA}/corpus/{repo}");
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

/// Many rules of every shape the engine indexes differently (literal paths and directories,
/// `dir/<name glob>`, names, extensions, name prefixes, last bytes, anchored globs with
/// `**`, repeated rules) over paths of every kind they key on: the rules that match each
/// path are the ones git matches one at a time (`check-ignore -v` would name the rule that
/// excluded a parent directory instead), so the last rule and the match count are git's;
/// the batch answers and decisions equal the single ones.
#[test]
fn many_rules_of_every_shape_agree_with_git() {
    let words = ["a", "src", "gen", "x.rs", "lib"];
    let exts = ["rs", "log"];
    let shapes = [
        "*.E",
        "W",
        "W/",
        "/W/",
        "/W",
        "W/*",
        "W/**",
        "W/*.E",
        "W/**/*.E",
        "**/W/*.E",
        "**/W",
        "**/W/**",
        "W/*/W",
        "/W/W/",
        "W*",
        "W_*.E",
        "*~",
        ".#*",
        "*.[lr]?",
        "*.?s",
        "W/[a-m]*/",
        "\\*W",
        "W**",
        "W/**/W/",
        "W/**\\/W",
        "*W*",
        "W.*",
        "?W",
        "/W/*.E",
        "**/W/W/**",
    ];
    let mut texts: Vec<String> = Vec::new();
    for (i, shape) in shapes.iter().enumerate() {
        for (j, w) in words.iter().enumerate() {
            let e = exts[(i + j) % exts.len()];
            let w2 = words[(i + 2 * j + 1) % words.len()];
            let text = shape.replacen('W', w, 1).replace('W', w2).replace('E', e);
            texts.push(text);
        }
    }
    // Some rules twice, far apart.
    let again: Vec<String> = texts.iter().step_by(7).cloned().collect();
    texts.extend(again);
    let accepted: Vec<&str> = texts
        .iter()
        .map(String::as_str)
        .filter(|t| Pattern::new(t).is_ok())
        .collect();
    assert!(accepted.len() > 150, "{} rules", accepted.len());
    let components = [
        "a", "src", "gen", "x.rs", "lib", "y.log", "a_1.rs", ".#f", "f~", "q.rs", "m.lr", "zsrc",
        "src.b", "*a", "ab", "n",
    ];
    let mut paths: Vec<Vec<u8>> = Vec::new();
    for i in 0..1500usize {
        let depth = 1 + i % 4;
        let parts: Vec<&str> = (0..depth)
            .map(|d| components[(i * (d + 3) + d * 5 + i / 7) % components.len()])
            .collect();
        paths.push(parts.join("/").into_bytes());
    }
    paths.sort();
    paths.dedup();

    let git = Git::new();
    let set = rule_set(&accepted);
    let mut last = vec![None; paths.len()];
    let mut counts = vec![0usize; paths.len()];
    for (r, rule) in accepted.iter().enumerate() {
        let hits = git.ignored(&[rule], &paths);
        for ((n, l), hit) in counts.iter_mut().zip(&mut last).zip(hits) {
            if hit {
                *n += 1;
                *l = Some(r);
            }
        }
    }
    assert!(last.iter().filter(|l| l.is_some()).count() > paths.len() / 2);
    for ((path, want_last), want_count) in paths.iter().zip(&last).zip(&counts) {
        let matches = set.matches(path);
        let shown = bstr::BStr::new(path);
        assert_eq!(
            matches.last().copied(),
            *want_last,
            "last rule for {shown:?}: engine {:?}, git {:?}",
            matches.iter().map(|&i| accepted[i]).collect::<Vec<_>>(),
            want_last.map(|i| accepted[i])
        );
        assert_eq!(matches.len(), *want_count, "match count for {shown:?}");
        assert_eq!(set.last_match(path), *want_last, "{shown:?}");
    }
    assert_eq!(set.last_match_many(&paths), last);

    let half = accepted.len() / 2;
    let s = Scope::new(
        rule_set(&accepted[..half]),
        rule_set(&accepted[half..]),
        RuleSet::default(),
        "policy.yml",
    )
    .unwrap();
    let bulk = s.decide_many(&paths);
    for (path, decision) in paths.iter().zip(&bulk) {
        assert_eq!(&s.decide(path), decision, "{:?}", bstr::BStr::new(path));
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
        text: text.into(),
        origin: RuleOrigin::Policy { line, column: 1 },
    }
}

/// `(rule, path, expected)` through [`Pattern::is_match`].
fn check(cases: &[(&str, &[u8], bool)]) {
    for &(rule, path, expected) in cases {
        let pattern = Pattern::new(rule).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            pattern.is_match(path),
            expected,
            "rule {rule:?} path {:?}",
            bstr::BStr::new(path)
        );
    }
}

#[test]
fn a_rule_that_matches_a_directory_covers_everything_below_it() {
    check(&[
        ("src/*", b"src/a.rs", true),
        ("src/*", b"src/a/b.rs", true), // gitignore, not CODEOWNERS: `*` matched the directory `src/a`
        ("src/*", b"src", false),
        ("/src/*.rs", b"src/a.rs", true),
        ("/src/*.rs", b"src/a/b.rs", false),
        ("docs", b"docs", true),
        ("docs", b"docs/guide/intro.md", true),
        ("docs", b"a/docs/x", true), // no slash: any depth
        ("docs", b"docsite/x", false),
        ("/docs", b"a/docs/x", false),    // leading slash: anchored
        ("a/docs", b"x/a/docs/y", false), // middle slash: anchored
        ("**/docs", b"x/a/docs/y", true),
        ("build/", b"build", false), // trailing slash: directories only, and a path is a file
        ("build/", b"build/out.o", true),
        ("build/", b"src/build/out.o", true),
        ("*.d/", b"conf.d/x.conf", true),
        ("*.d/", b"x.d", false),
        ("src/**", b"src/a/b/c.rs", true),
        ("src/**", b"src", false),
        ("src/**/test_*.py", b"src/test_a.py", true),
        ("src/**/test_*.py", b"src/a/b/test_a.py", true),
        ("src/**/test_*.py", b"src/a/b/atest_a.py", false),
        ("a/*/c", b"a/b/c/d", true),
        ("a/*/c", b"a/b/x/c", false),
        // t0008 "exact prefix matching"
        ("git/", b"a/git/foo", true),
        ("git/", b"a/git-foo/bar", false),
        ("/git/", b"git/foo", true),
        ("/git/", b"a/git/foo", false),
        // gitignore compares the literal prefix first: `foo**/bar` is `foo` + `**/bar`.
        ("foo**/bar", b"foo/bar", true),
        ("foo**/bar", b"foobar", true),
        ("foo**/bar", b"foo/x/y/bar", true),
        ("foo*/bar", b"foo/x/bar", false),
    ]);
}

#[test]
fn brace_alternation_is_an_extension() {
    check(&[
        ("*.{yml,yaml}", b"ci/a.yml", true),
        ("*.{yml,yaml}", b"ci/a.yaml", true),
        ("*.{yml,yaml}", b"ci/a.json", false),
        ("{src,tests}/**/*.rs", b"tests/x/y.rs", true),
        ("{src,tests}/**/*.rs", b"bench/y.rs", false),
        ("a{,.bak}", b"a.bak", true),
        ("a{,.bak}", b"a", true),
        ("{a,b{c,d}}.txt", b"bd.txt", true),
        ("{a,b{c,d}}.txt", b"b.txt", false),
        // each expansion is a rule of its own: `{docs/,readme}` = `docs/` + `readme`
        ("{/docs/,readme}", b"docs/x", true),
        ("{/docs/,readme}", b"pkg/readme", true),
        ("{/docs/,readme}", b"docs", false),
        // escaped or inside brackets, braces are literal
        ("\\{a,b\\}", b"{a,b}", true),
        ("\\{a,b\\}", b"a", false),
        ("x[{]", b"x{", true),
    ]);
}

#[test]
fn non_utf8_paths_and_special_names() {
    check(&[
        ("*.bin", b"dir/\xff\xfe.bin", true),
        ("a?b", b"a\xffb", true),
        ("a?b", "aéb".as_bytes(), false), // `?` is one byte, as in git
        ("a??b", "aéb".as_bytes(), true),
        ("/été/", "été/x".as_bytes(), true),
        ("[!a]", b"\xff", true),
        ("* *", b"dir/a b", true),
        ("a\\ ", b"a ", true), // an escaped trailing space is kept
        ("a  ", b"a", true),   // unescaped trailing spaces are dropped, as git does
        ("\\#x", b"#x", true),
        ("\\!x", b"!x", true),
        ("-x", b"d/-x", true),
    ]);
    assert_eq!(
        agent_gate::core::scope::display_path(b"a/\xff.rs"),
        "a/\u{fffd}.rs"
    );
}

#[test]
fn rejected_rules_say_why() {
    let rules = [
        "",
        "   ",
        "#comment",
        "!negated",
        "dir\\",
        "a[bc",
        "a[]",
        "[[:spaci:]]",
        "[é]",
        "a//b",
        "//a",
        "/",
        "a{b",
        "a}b",
        "{a}",
        "{,}",
        "{!a,b}",
    ];
    let report: String = rules
        .iter()
        .map(|r| match Pattern::new(r) {
            Ok(_) => format!("{r:?}: accepted\n"),
            Err(e) => format!("{e}\n"),
        })
        .collect();
    insta::assert_snapshot!(report);
}

fn scope(allow: &[&str], deny: &[&str]) -> Scope {
    // Deny rules get line numbers after the allow rules, as in a policy file.
    let deny_set = RuleSet::new(
        deny.iter()
            .enumerate()
            .map(|(i, p)| Rule {
                pattern: Pattern::new(p).unwrap(),
                origin: RuleOrigin::Policy {
                    line: 100 + i,
                    column: 5,
                },
            })
            .collect(),
    );
    Scope::new(
        rule_set(allow),
        deny_set,
        RuleSet::default(),
        ".github/agent-gate.yml",
    )
    .unwrap()
}

fn reason(scope: &Scope, path: &str) -> Reason {
    let decision = scope.decide(path.as_bytes());
    assert_eq!(
        decision.in_scope,
        matches!(
            decision.reason,
            Reason::Allowed { .. } | Reason::AllowedByDefault
        ),
        "{path}"
    );
    decision.reason
}

fn allowed(text: &str, line: usize) -> Reason {
    Reason::Allowed {
        rule: rule_ref(text, line),
    }
}

#[test]
fn deny_wins_over_allow_and_the_last_allow_rule_is_reported() {
    let s = scope(
        &["src/**", "src/services/**", "*.rs"],
        &["**/*.pem", "/src/legacy/"],
    );
    assert_eq!(reason(&s, "src/services/a.rs"), allowed("*.rs", 3));
    assert_eq!(
        reason(&s, "src/services/a.py"),
        allowed("src/services/**", 2)
    );
    assert_eq!(reason(&s, "src/a.py"), allowed("src/**", 1));
    assert_eq!(
        reason(&s, "src/services/key.pem"),
        Reason::Denied {
            rule: RuleRef {
                text: "**/*.pem".into(),
                origin: RuleOrigin::Policy {
                    line: 100,
                    column: 5
                }
            }
        }
    );
    assert_eq!(
        reason(&s, "src/legacy/x/y.rs"),
        Reason::Denied {
            rule: RuleRef {
                text: "/src/legacy/".into(),
                origin: RuleOrigin::Policy {
                    line: 101,
                    column: 5
                }
            }
        }
    );
    assert_eq!(reason(&s, "docs/readme.md"), Reason::NoAllowRule);
}

#[test]
fn empty_allow_means_everything_not_denied() {
    let s = scope(&[], &["secrets/"]);
    assert_eq!(reason(&s, "any/where.txt"), Reason::AllowedByDefault);
    assert!(matches!(reason(&s, "a/secrets/k"), Reason::Denied { .. }));
}

#[test]
fn protected_paths_cannot_be_allowed() {
    let s = scope(&["**", ".github/**", "CODEOWNERS", "*"], &[]);
    let protected = |path: &str| match reason(&s, path) {
        Reason::Protected { rule } => {
            assert_eq!(rule.origin, RuleOrigin::AlwaysProtected, "{path}");
            rule.text.to_string()
        }
        other => panic!("{path}: {other:?}"),
    };
    assert_eq!(protected(".github/workflows/ci.yml"), "/.github/workflows");
    assert_eq!(
        protected(".github/workflows/sub/x.yaml"),
        "/.github/workflows"
    );
    assert_eq!(protected(".github/workflows"), "/.github/workflows"); // a file or symlink in its place
    assert_eq!(
        protected(".github/actions/setup/action.yml"),
        "/.github/actions"
    );
    assert_eq!(protected("CODEOWNERS"), "/CODEOWNERS");
    assert_eq!(protected(".github/CODEOWNERS"), "/.github/CODEOWNERS");
    assert_eq!(protected("docs/CODEOWNERS"), "/docs/CODEOWNERS");
    assert_eq!(protected(".gitmodules"), "/.gitmodules");
    assert_eq!(
        protected(".github/agent-gate.yml"),
        "/.github/agent-gate.yml"
    );
    // Only those places: these are ordinary files.
    for path in [
        "src/CODEOWNERS",
        "a/.gitmodules",
        ".github/dependabot.yml",
        "x/.github/workflows/ci.yml",
    ] {
        assert!(matches!(reason(&s, path), Reason::Allowed { .. }), "{path}");
    }
    // The list in the API is the one of DESIGN §3.
    assert_eq!(
        agent_gate::core::scope::ALWAYS_PROTECTED,
        [
            "/.github/workflows",
            "/.github/actions",
            "/CODEOWNERS",
            "/.github/CODEOWNERS",
            "/docs/CODEOWNERS",
            "/.gitmodules"
        ]
    );
}

#[test]
fn a_policy_adds_protected_paths_and_its_own_path_is_matched_literally() {
    let extra = RuleSet::new(vec![Rule {
        pattern: Pattern::new("/infra/").unwrap(),
        origin: RuleOrigin::Policy { line: 7, column: 9 },
    }]);
    let s = Scope::new(
        rule_set(&["**"]),
        RuleSet::default(),
        extra,
        "./cfg/gate [v1].yml",
    )
    .unwrap();
    assert_eq!(
        reason(&s, "infra/main.tf"),
        Reason::Protected {
            rule: RuleRef {
                text: "/infra/".into(),
                origin: RuleOrigin::Policy { line: 7, column: 9 }
            }
        }
    );
    assert!(matches!(
        reason(&s, "cfg/gate [v1].yml"),
        Reason::Protected { .. }
    ));
    assert!(matches!(
        reason(&s, "cfg/gate v.yml"),
        Reason::Allowed { .. }
    ));
    assert!(matches!(
        reason(&s, "cfg/gate 1.yml"),
        Reason::Allowed { .. }
    ));
    // The always-protected list is still there.
    assert!(matches!(
        reason(&s, ".gitmodules"),
        Reason::Protected { .. }
    ));
}

#[test]
fn scope_input_narrows_and_never_widens() {
    let s = scope(&["src/**", "docs/**"], &["src/api/secret.pem"]);
    let narrowed = s
        .narrowed(&["src/api/**".to_string(), "src/db/*.sql".to_string()])
        .unwrap();
    assert_eq!(reason(&narrowed, "src/api/a.rs"), allowed("src/**", 1));
    assert_eq!(reason(&narrowed, "src/db/m.sql"), allowed("src/**", 1));
    assert_eq!(reason(&narrowed, "src/db/m.rs"), Reason::OutsideScopeInput);
    assert_eq!(reason(&narrowed, "docs/a.md"), Reason::OutsideScopeInput);
    // Not granted by the narrowing when the policy denies, protects or does not allow it.
    assert!(matches!(
        reason(&narrowed, "src/api/secret.pem"),
        Reason::Denied { .. }
    ));
    let wide = s.narrowed(&["**".to_string()]).unwrap();
    assert!(matches!(
        reason(&wide, ".github/workflows/x.yml"),
        Reason::Protected { .. }
    ));
    assert_eq!(reason(&wide, "tests/a.rs"), Reason::NoAllowRule);
    // Narrowing twice intersects.
    let twice = narrowed.narrowed(&["src/db/**".to_string()]).unwrap();
    assert_eq!(reason(&twice, "src/api/a.rs"), Reason::OutsideScopeInput);
    assert_eq!(reason(&twice, "src/db/m.sql"), allowed("src/**", 1));
    assert_eq!(twice.narrows().len(), 2);
    // An empty list narrows nothing.
    assert_eq!(
        reason(&s.narrowed(&[]).unwrap(), "docs/a.md"),
        allowed("docs/**", 2)
    );
    // With an empty allow list, the narrowing glob is what grants the path.
    let open = scope(&[], &[])
        .narrowed(&["a/**".to_string(), "b/".to_string()])
        .unwrap();
    assert_eq!(
        reason(&open, "b/x"),
        Reason::Allowed {
            rule: RuleRef {
                text: "b/".into(),
                origin: RuleOrigin::ScopeInput { index: 1 }
            }
        }
    );
    assert_eq!(reason(&open, "c/x"), Reason::OutsideScopeInput);
    // A bad glob in the input is an error naming it.
    let err = s.narrowed(&["src/[".to_string()]).unwrap_err();
    assert_eq!(err.pattern, "src/[");
}

#[test]
fn decisions_in_bulk_equal_decisions_one_by_one() {
    let s = scope(
        &["src/*", "/lib/", "*.md", "a?/**/z*"],
        &["*.pem", "gen/", "src/x*/y"],
    )
    .narrowed(&["{src,lib,docs,a1}/**".to_string()])
    .unwrap();
    let names = [
        "src", "lib", "docs", "gen", "a1", "x1", "y", "z9", "k.pem", "r.md", "\u{e9}",
    ];
    let mut paths: Vec<Vec<u8>> = Vec::new();
    for i in 0..12_000usize {
        let depth = 1 + i % 5;
        let parts: Vec<&str> = (0..depth)
            .map(|d| names[(i / (d + 1) + d * 7) % names.len()])
            .collect();
        let mut path = parts.join("/").into_bytes();
        if i % 97 == 0 {
            path.push(0xff);
        }
        paths.push(path);
    }
    let bulk = s.decide_many(&paths);
    assert_eq!(bulk.len(), paths.len());
    for (path, decision) in paths.iter().zip(&bulk) {
        assert_eq!(&s.decide(path), decision, "{:?}", bstr::BStr::new(path));
    }
    assert!(bulk.iter().any(|d| d.in_scope) && bulk.iter().any(|d| !d.in_scope));
}

#[test]
fn a_decision_serializes_with_its_rule() {
    let s = scope(&["src/**"], &[]);
    let json = serde_json::to_value(s.decide(b"src/a.rs")).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"in_scope": true, "reason": "allowed", "rule": {"text": "src/**", "origin": {"kind": "policy", "line": 1, "column": 1}}})
    );
}

#[test]
fn hostile_rules_are_errors_not_crashes() {
    let deep = format!("{}a{}", "{".repeat(10_000), ",b}".repeat(10_000));
    assert!(Pattern::new(&deep).unwrap_err().reason.contains("nested"));
    let wide = "{a,b}".repeat(9);
    assert!(
        Pattern::new(&wide)
            .unwrap_err()
            .reason
            .contains("more than 256")
    );
    let classes = "[[".repeat(5_000);
    assert!(Pattern::new(&classes).is_err());
    // Long but fine.
    let long = "a/*/".repeat(200) + "z";
    assert!(
        Pattern::new(&long)
            .unwrap()
            .is_match(("a/x/".repeat(200) + "z").as_bytes())
    );
}
