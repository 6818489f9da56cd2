//! Tests of the scope engine (`agent_gate::scope`): git's glob function against git's own
//! vectors, gitignore rules against git's answers on real CODEOWNERS corpora and against
//! `git check-ignore` on random rule and path sets, and the scope decision.

use agent_gate::scope::{Pattern, Wildmatch};

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
