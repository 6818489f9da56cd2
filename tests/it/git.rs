//! Tests of the git area: the `-z` parsers (round trips, hostile bytes, never a panic) and
//! the `Git` adapter on real temporary repositories (every kind of change, hostile file
//! names, fail-closed errors, foreign ownership, reading at a ref, exporting a tree).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use agent_gate::adapters::git::{
    Change, ChangeKind, Git, GitError, NumstatEntry, RawEntry, format_numstat_z, format_raw_z,
    join, parse_numstat_z, parse_raw_numstat_z, parse_raw_z,
};
use bstr::{BString, ByteSlice};
use insta::assert_snapshot;
use proptest::prelude::*;

use crate::support::TestRepo;

// ---------------------------------------------------------------- helpers

/// Changes keyed by head-side path.
fn by_path(changes: &[Change]) -> BTreeMap<BString, Change> {
    changes
        .iter()
        .map(|c| (c.path.clone(), c.clone()))
        .collect()
}

fn get<'a>(map: &'a BTreeMap<BString, Change>, path: &[u8]) -> &'a Change {
    map.get(path.as_bstr()).unwrap_or_else(|| {
        panic!(
            "no change for {:?} in {:?}",
            path.as_bstr(),
            map.keys().collect::<Vec<_>>()
        )
    })
}

/// Record a gitlink (submodule) at `path` pointing at `commit`, without a checkout.
fn add_gitlink(repo: &TestRepo, path: &str, commit: &str) {
    repo.git([
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{commit},{path}"),
    ]);
}

fn commit_index(repo: &TestRepo, message: &str) -> String {
    repo.git(["commit", "-q", "-m", message]);
    repo.head()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Replace the temp-dir paths in a message so snapshots are stable.
fn redact(message: &str, dirs: &[&Path]) -> String {
    let mut out = message.to_string();
    for dir in dirs {
        out = out.replace(&dir.display().to_string(), "<repo>");
    }
    out
}

/// Names no file system or shell likes.
const HOSTILE: &[&[u8]] = &[
    b"with space.txt",
    b"new\nline.txt",
    b"tab\there.txt",
    b"\"double\" 'single'.txt",
    b"-leading-dash",
    b"--also-an-option",
    b"back\\slash",
    b"non-utf8-\xff\xfe.bin.txt",
    b"caf\xc3\xa9.txt",
    b" leading space",
    b"trailing space ",
    b"star*glob?[x].txt",
    b"$(echo pwned);`id`.txt",
    b"dir with space/nested\nname.txt",
];

/// `"<word> 1\n<word> 2\n…"` up to `n`.
fn numbered(word: &str, n: usize) -> String {
    (1..=n).fold(String::new(), |mut out, i| {
        writeln!(out, "{word} {i}").unwrap();
        out
    })
}

// ---------------------------------------------------------------- changes on real repos

#[test]
#[allow(
    clippy::many_single_char_names,
    reason = "one short binding per kind of change"
)]
fn changes_report_every_kind_with_modes_and_lines() {
    let repo = TestRepo::new();
    repo.write("modified.txt", "one\ntwo\nthree\n");
    repo.write("deleted.txt", "bye\n");
    repo.write("old/dir/moved.txt", numbered("line", 40));
    repo.write("tool.sh", "#!/bin/sh\necho hi\n");
    repo.write("becomes-link", "regular file\n");
    repo.write("copy-source.txt", numbered("source", 30));
    repo.write("binary.dat", b"\x00\x01\x02\x03binary\x00");
    let sub_target = repo.commit("base content");
    add_gitlink(&repo, "vendored/lib", &sub_target);
    commit_index(&repo, "add a submodule");

    repo.branch("agent");
    repo.write("modified.txt", "one\nTWO\nthree\nfour\nfive\n");
    repo.remove("deleted.txt");
    std::fs::create_dir_all(repo.path().join("new/place")).unwrap();
    std::fs::rename(
        repo.path().join("old/dir/moved.txt"),
        repo.path().join("new/place/moved.txt"),
    )
    .unwrap();
    chmod(&repo.path().join("tool.sh"), 0o755);
    repo.remove("becomes-link");
    std::os::unix::fs::symlink("modified.txt", repo.path().join("becomes-link")).unwrap();
    std::os::unix::fs::symlink("../etc/passwd", repo.path().join("new-link")).unwrap();
    // A copy is only detected from a file that also changed in the same diff.
    let source: String = numbered("source", 30);
    repo.write("copy-of-source.txt", &source);
    repo.write("copy-source.txt", format!("{source}one more\n"));
    repo.write("binary.dat", b"\x00\x01\x02\x03changed\x00\xff");
    repo.write("added.txt", "a\nb\n");
    repo.commit("agent work");
    let other = repo.git(["rev-parse", "HEAD~1"]).trim().to_string();
    add_gitlink(&repo, "vendored/lib", &other);
    let head = commit_index(&repo, "bump submodule");

    let set = Git::new(repo.path()).changes("main", "agent").unwrap();
    assert_eq!(set.head, head);
    assert_eq!(set.merge_base, repo.git(["rev-parse", "main"]).trim());
    let map = by_path(&set.changes);

    let m = get(&map, b"modified.txt");
    assert_eq!(
        (m.kind, m.added, m.deleted),
        (ChangeKind::Modified, Some(3), Some(1))
    );
    assert_eq!((m.old_mode, m.new_mode), (0o100_644, 0o100_644));
    assert!(!m.is_binary() && !m.mode_changed() && !m.is_symlink() && !m.is_submodule());

    let a = get(&map, b"added.txt");
    assert_eq!(
        (a.kind, a.old_mode, a.new_mode, a.added, a.deleted),
        (ChangeKind::Added, 0, 0o100_644, Some(2), Some(0))
    );

    let d = get(&map, b"deleted.txt");
    assert_eq!(
        (d.kind, d.old_mode, d.new_mode, d.deleted),
        (ChangeKind::Deleted, 0o100_644, 0, Some(1))
    );

    let r = get(&map, b"new/place/moved.txt");
    assert_eq!(r.kind, ChangeKind::Renamed);
    assert_eq!(r.old_path, Some(BString::from(&b"old/dir/moved.txt"[..])));
    assert_eq!((r.added, r.deleted), (Some(0), Some(0)));
    assert_eq!(
        r.touched_paths(),
        vec![
            b"old/dir/moved.txt".as_bstr(),
            b"new/place/moved.txt".as_bstr()
        ]
    );

    let x = get(&map, b"tool.sh");
    assert_eq!(
        (x.kind, x.old_mode, x.new_mode),
        (ChangeKind::Modified, 0o100_644, 0o100_755)
    );
    assert!(x.mode_changed() && x.made_executable());

    let t = get(&map, b"becomes-link");
    assert_eq!(
        (t.kind, t.old_mode, t.new_mode),
        (ChangeKind::TypeChanged, 0o100_644, 0o120_000)
    );
    assert!(t.is_symlink() && !t.mode_changed());

    let l = get(&map, b"new-link");
    assert_eq!((l.kind, l.new_mode), (ChangeKind::Added, 0o120_000));
    assert!(l.is_symlink());

    let c = get(&map, b"copy-of-source.txt");
    assert_eq!(c.kind, ChangeKind::Copied);
    assert_eq!(c.old_path, Some(BString::from(&b"copy-source.txt"[..])));
    assert_eq!(
        c.touched_paths(),
        vec![b"copy-of-source.txt".as_bstr()],
        "a copy does not touch its source"
    );
    assert_eq!(get(&map, b"copy-source.txt").kind, ChangeKind::Modified);

    let b = get(&map, b"binary.dat");
    assert!(b.is_binary());
    assert_eq!((b.added, b.deleted, b.lines()), (None, None, 0));

    let s = get(&map, b"vendored/lib");
    assert_eq!(
        (s.kind, s.old_mode, s.new_mode),
        (ChangeKind::Modified, 0o160_000, 0o160_000)
    );
    assert!(s.is_submodule() && !s.mode_changed());

    assert_eq!(
        map.len(),
        11,
        "exactly the expected changes: {:?}",
        map.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        set.total_lines(),
        set.changes.iter().map(Change::lines).sum::<u64>()
    );
}

#[test]
fn changes_are_measured_from_the_merge_base_not_the_base_tip() {
    let repo = TestRepo::new();
    repo.write("shared.txt", "v1\n");
    repo.commit("shared");
    repo.branch("agent");
    repo.write("agent.txt", "from the agent\n");
    repo.commit("agent");
    repo.checkout("main");
    repo.write("main-only.txt", "moved on\n");
    repo.write("shared.txt", "v2\n");
    repo.commit("main moved on");

    let set = Git::new(repo.path()).changes("main", "agent").unwrap();
    let paths: Vec<_> = set.changes.iter().map(|c| c.path.to_string()).collect();
    assert_eq!(paths, ["agent.txt"]);
    assert_eq!(
        set.merge_base,
        repo.git(["merge-base", "main", "agent"]).trim()
    );
}

#[test]
fn changes_with_no_difference_are_empty() {
    let repo = TestRepo::new();
    let set = Git::new(repo.path()).changes("main", "HEAD").unwrap();
    assert!(set.changes.is_empty());
    assert_eq!(set.merge_base, set.head);
}

#[test]
fn hostile_file_names_survive_add_rename_and_delete() {
    let repo = TestRepo::new();
    repo.write(
        b"rename\nme\xff",
        "content that stays the same\nfor rename detection\n",
    );
    repo.write(b"-delete me\t", "x\n");
    repo.commit("base");
    repo.branch("agent");
    for name in HOSTILE {
        repo.write(name, "hostile\n");
    }
    std::fs::rename(
        repo.path().join(OsStr::from_bytes(b"rename\nme\xff")),
        repo.path().join(OsStr::from_bytes(b"\"renamed\"\n-\xfe")),
    )
    .unwrap();
    repo.remove(b"-delete me\t");
    repo.commit("hostile");

    let set = Git::new(repo.path()).changes("main", "agent").unwrap();
    let map = by_path(&set.changes);
    for name in HOSTILE {
        let c = get(&map, name);
        assert_eq!(
            (c.kind, c.added),
            (ChangeKind::Added, Some(1)),
            "{:?}",
            name.as_bstr()
        );
    }
    let r = get(&map, b"\"renamed\"\n-\xfe");
    assert_eq!(r.kind, ChangeKind::Renamed);
    assert_eq!(r.old_path, Some(BString::from(&b"rename\nme\xff"[..])));
    assert_eq!(get(&map, b"-delete me\t").kind, ChangeKind::Deleted);
    assert_eq!(map.len(), HOSTILE.len() + 2);
}

#[test]
fn gitattributes_in_the_head_cannot_hide_lines_as_binary() {
    let repo = TestRepo::new();
    repo.write("big.txt", "a\n");
    repo.commit("base");
    repo.branch("agent");
    repo.write(".gitattributes", "* -diff\n*.txt binary\n");
    repo.write("big.txt", "a\nb\nc\n");
    repo.commit("hide lines");
    let set = Git::new(repo.path()).changes("main", "agent").unwrap();
    let big = get(&by_path(&set.changes), b"big.txt").clone();
    assert_eq!((big.added, big.deleted), (Some(2), Some(0)));
    assert!(!big.is_binary());
}

#[test]
fn an_unknown_ref_is_an_error_naming_it() {
    let repo = TestRepo::new();
    let git = Git::new(repo.path());
    let err = git.changes("origin/does-not-exist", "HEAD").unwrap_err();
    assert!(
        matches!(&err, GitError::UnknownRef { rev, .. } if rev == "origin/does-not-exist"),
        "{err:?}"
    );
    assert_snapshot!("unknown_ref", redact(&err.to_string(), &[repo.path()]));
    let err = git.changes("main", "--output=/tmp/x").unwrap_err();
    assert!(
        matches!(&err, GitError::UnknownRef { .. }),
        "an option-looking ref is just an unknown ref: {err:?}"
    );
}

/// A repository where `main` and `agent` diverged after a shared history.
fn diverged_repo() -> TestRepo {
    let repo = TestRepo::new();
    for i in 0..3 {
        repo.write("history.txt", format!("{i}\n"));
        repo.commit(&format!("shared {i}"));
    }
    repo.branch("agent");
    repo.write("agent.txt", "agent\n");
    repo.commit("agent 1");
    repo.write("agent.txt", "agent 2\n");
    repo.commit("agent 2");
    repo.checkout("main");
    repo.write("main.txt", "main\n");
    repo.commit("main 1");
    repo
}

#[test]
fn a_shallow_clone_without_the_merge_base_fails_closed_and_says_fetch_depth_0() {
    let origin = diverged_repo();
    let clone = tempfile::tempdir().unwrap();
    let url = format!("file://{}", origin.path().display());
    let out = Command::new("git")
        .args(["clone", "-q", "--depth", "1", "--no-single-branch", &url])
        .arg(clone.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let git = Git::new(clone.path());
    assert!(git.is_shallow().unwrap());
    let err = git.changes("origin/main", "origin/agent").unwrap_err();
    assert!(
        matches!(err, GitError::NoMergeBase { shallow: true, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("fetch-depth: 0"), "{message}");
    assert_snapshot!("shallow_no_merge_base", message);

    // A refspec is never taken as an option (`fetch -- <remote> <refspec>…`).
    let err = git.fetch("origin", &["--unshallow"]).unwrap_err();
    assert!(matches!(err, GitError::Command { .. }), "{err:?}");
    assert!(git.is_shallow().unwrap());

    // Deepening the clone makes the same call work.
    let out = Command::new("git")
        .arg("-C")
        .arg(clone.path())
        .args(["fetch", "-q", "--unshallow"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!git.is_shallow().unwrap());
    let set = git.changes("origin/main", "origin/agent").unwrap();
    assert_eq!(set.changes.len(), 1);
}

#[test]
fn unrelated_histories_fail_closed() {
    let repo = TestRepo::new();
    repo.git(["checkout", "-q", "--orphan", "other"]);
    repo.write("other.txt", "unrelated\n");
    repo.commit("unrelated root");
    let git = Git::new(repo.path());
    assert!(!git.is_shallow().unwrap());
    let err = git.changes("main", "other").unwrap_err();
    assert!(
        matches!(err, GitError::NoMergeBase { shallow: false, .. }),
        "{err:?}"
    );
    assert_snapshot!("unrelated_no_merge_base", err.to_string());
}

#[test]
#[ignore = "needs root (the container case); .ci/run runs it: cargo test --test it -- --ignored as_root"]
fn as_root_a_repository_owned_by_another_uid_works() {
    super::support::require_root();
    let repo = diverged_repo();
    repo.checkout("agent");
    let copy = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", repo.path().display()))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(status.success());

    // Plain git refuses this repository ("dubious ownership")...
    let plain = Command::new("git")
        .arg("-C")
        .arg(copy.path())
        .args(["rev-parse", "HEAD"])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        !plain.status.success(),
        "the test needs git's ownership check to apply"
    );
    assert!(String::from_utf8_lossy(&plain.stderr).contains("dubious ownership"));

    // ...the adapter does not.
    let git = Git::new(copy.path());
    let set = git.changes("main", "agent").unwrap();
    assert_eq!(
        set.changes
            .iter()
            .map(|c| c.path.to_string())
            .collect::<Vec<_>>(),
        ["agent.txt"]
    );
    assert_eq!(
        git.show_file("main", "main.txt").unwrap().as_deref(),
        Some(&b"main\n"[..])
    );
    let dest = tempfile::tempdir().unwrap();
    git.export_tree("agent", &dest.path().join("tree")).unwrap();
    assert!(dest.path().join("tree/agent.txt").is_file());
}

// ---------------------------------------------------------------- show_file

#[test]
fn show_file_reads_the_ref_never_the_working_tree() {
    let repo = TestRepo::new();
    repo.write(".github/agent-gate.yml", "version: 1\n");
    repo.write("dir/file", "x\n");
    std::os::unix::fs::symlink("README.md", repo.path().join("link")).unwrap();
    repo.commit("policy");
    repo.branch("agent");
    repo.write(".github/agent-gate.yml", "version: 1\nallow: ['**']\n");
    repo.commit("agent widens its own policy");
    repo.write(".github/agent-gate.yml", "uncommitted\n");
    repo.write("untracked.yml", "x\n");

    let git = Git::new(repo.path());
    assert_eq!(
        git.show_file("main", ".github/agent-gate.yml")
            .unwrap()
            .as_deref(),
        Some(&b"version: 1\n"[..])
    );
    assert_eq!(
        git.show_file("agent", ".github/agent-gate.yml")
            .unwrap()
            .as_deref(),
        Some(&b"version: 1\nallow: ['**']\n"[..])
    );
    assert_eq!(git.show_file("main", "untracked.yml").unwrap(), None);
    assert_eq!(git.show_file("main", ".github/missing.yml").unwrap(), None);
    assert_eq!(
        git.show_file("main", "dir/*").unwrap(),
        None,
        "pathspecs are literal"
    );
    assert!(matches!(
        git.show_file("main", "dir"),
        Err(GitError::NotAFile { .. })
    ));
    assert!(matches!(
        git.show_file("main", "link"),
        Err(GitError::NotAFile { .. })
    ));
    assert!(matches!(
        git.show_file("nope", "README.md"),
        Err(GitError::UnknownRef { .. })
    ));
    assert!(matches!(
        git.show_file("main", "../outside"),
        Err(GitError::BadArgument { .. })
    ));
    assert!(matches!(
        git.show_file("main", "/etc/passwd"),
        Err(GitError::BadArgument { .. })
    ));
}

#[test]
fn show_file_reads_hostile_names() {
    let repo = TestRepo::new();
    for name in HOSTILE.iter().filter(|n| n.to_str().is_ok()) {
        repo.write(name, *name);
    }
    repo.commit("hostile");
    let git = Git::new(repo.path());
    for name in HOSTILE.iter().filter_map(|n| n.to_str().ok()) {
        assert_eq!(
            git.show_file("HEAD", name).unwrap().as_deref(),
            Some(name.as_bytes()),
            "{name:?}"
        );
    }
}

// ---------------------------------------------------------------- export_tree

/// Everything that says what state a workspace is in.
fn workspace_state(repo: &TestRepo) -> (String, String, Vec<u8>, String) {
    (
        repo.head(),
        repo.git(["status", "--porcelain=v1", "-z", "--untracked-files=all"]),
        std::fs::read(repo.path().join(".git/index")).unwrap(),
        repo.git(["symbolic-ref", "HEAD"]),
    )
}

#[test]
fn export_tree_writes_plain_files_without_git_and_leaves_the_workspace_alone() {
    let repo = TestRepo::new();
    let target = repo.head();
    for name in HOSTILE {
        repo.write(name, *name);
    }
    repo.write("bin/run.sh", "#!/bin/sh\n");
    chmod(&repo.path().join("bin/run.sh"), 0o755);
    repo.write("plain.txt", "plain\n");
    std::os::unix::fs::symlink("plain.txt", repo.path().join("link-to-plain")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", repo.path().join("absolute-link")).unwrap();
    repo.commit("tree to export");
    add_gitlink(&repo, "sub/module", &target);
    let exported = commit_index(&repo, "submodule");
    // The workspace has local changes the export must not pick up or disturb.
    repo.write("plain.txt", "edited in the workspace\n");
    repo.write("staged.txt", "staged\n");
    repo.git(["add", "staged.txt"]);
    repo.write("untracked.txt", "untracked\n");
    let before = workspace_state(&repo);

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("export");
    Git::new(repo.path()).export_tree(&exported, &dest).unwrap();

    assert_eq!(
        workspace_state(&repo),
        before,
        "index, HEAD and working tree unchanged"
    );
    assert!(
        std::fs::symlink_metadata(dest.join(".git")).is_err(),
        "no .git in the export"
    );
    for name in HOSTILE {
        let content = std::fs::read(dest.join(OsStr::from_bytes(name))).unwrap();
        assert_eq!(content, *name, "{:?}", name.as_bstr());
    }
    assert_eq!(
        std::fs::read_to_string(dest.join("plain.txt")).unwrap(),
        "plain\n",
        "the commit, not the workspace"
    );
    assert!(!dest.join("staged.txt").exists() && !dest.join("untracked.txt").exists());
    let mode = std::fs::metadata(dest.join("bin/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o111, 0, "executable bit kept");
    let mode = std::fs::metadata(dest.join("plain.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0);
    assert_eq!(
        std::fs::read_link(dest.join("link-to-plain")).unwrap(),
        Path::new("plain.txt")
    );
    // A link that leads out of the tree is written as a file holding its target text.
    assert!(
        std::fs::symlink_metadata(dest.join("absolute-link"))
            .unwrap()
            .is_file()
    );
    assert_eq!(
        std::fs::read(dest.join("absolute-link")).unwrap(),
        b"/etc/passwd"
    );
    let sub = dest.join("sub/module");
    assert!(
        sub.is_dir() && std::fs::read_dir(&sub).unwrap().next().is_none(),
        "a submodule is an empty directory"
    );
}

#[test]
fn export_tree_refuses_a_non_empty_destination() {
    let repo = TestRepo::new();
    let dest = tempfile::tempdir().unwrap();
    std::fs::write(dest.path().join("already-here"), "x").unwrap();
    let err = Git::new(repo.path())
        .export_tree("HEAD", dest.path())
        .unwrap_err();
    assert!(matches!(err, GitError::Export { .. }), "{err:?}");
    // An existing empty directory is fine.
    let empty = tempfile::tempdir().unwrap();
    Git::new(repo.path())
        .export_tree("HEAD", empty.path())
        .unwrap();
    assert!(empty.path().join("README.md").is_file());
}

// ---------------------------------------------------------------- fetch and remotes

#[test]
fn fetch_from_a_path_and_a_bare_repository() {
    let agent = diverged_repo();
    let bare = tempfile::tempdir().unwrap();
    let out = Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(agent.path())
        .arg(bare.path())
        .output()
        .unwrap();
    assert!(out.status.success());

    let work = TestRepo::new();
    let git = Git::new(work.path());
    git.fetch(
        &bare.path().display().to_string(),
        &["refs/heads/agent:refs/remotes/agent/work"],
    )
    .unwrap();
    let agent_head = agent.git(["rev-parse", "agent"]).trim().to_string();
    assert_eq!(git.rev_parse("agent/work").unwrap(), agent_head);
    assert_eq!(
        git.rev_parse("refs/remotes/agent/work").unwrap(),
        agent_head
    );
    assert!(work.git(["tag", "-l"]).is_empty(), "no tags fetched");

    let err = git
        .fetch("--upload-pack=touch /tmp/pwned", &["main"])
        .unwrap_err();
    assert!(matches!(err, GitError::BadArgument { .. }), "{err:?}");
    let err = git
        .fetch(
            &bare.path().display().to_string(),
            &["refs/heads/nope:refs/x"],
        )
        .unwrap_err();
    assert!(matches!(err, GitError::Command { .. }), "{err:?}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn remotes_urls_and_default_branch() {
    let origin = TestRepo::new();
    let clone = tempfile::tempdir().unwrap();
    let out = Command::new("git")
        .args(["clone", "-q"])
        .arg(origin.path())
        .arg(clone.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let git = Git::new(clone.path());
    assert_eq!(
        git.remote_url("origin").as_deref(),
        Some(origin.path().to_str().unwrap())
    );
    assert_eq!(git.remote_url("nope"), None);
    assert_eq!(git.remote_url("--help"), None);
    assert_eq!(
        git.default_branch_of_remote("origin").unwrap().as_deref(),
        Some("main")
    );
    assert_eq!(git.default_branch_of_remote("nope").unwrap(), None);
    assert_eq!(git.rev_parse("origin/main").unwrap(), origin.head());
    assert!(git.common_dir().unwrap().ends_with(".git"));
    assert_eq!(git.git_dir().unwrap(), git.common_dir().unwrap());
}

#[test]
fn a_hung_git_is_killed_with_its_children_at_the_timeout() {
    let repo = TestRepo::new();
    // ssh is replaced by a command that hangs; nothing touches the network.
    repo.git(["config", "core.sshCommand", "sleep 60; true"]);
    let git = Git::new(repo.path()).with_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let err = git
        .fetch("ssh://127.0.0.1/nowhere.git", &["main"])
        .unwrap_err();
    assert!(matches!(err, GitError::Timeout { .. }), "{err:?}");
    // Had the grandchild `sleep` survived, it would hold the output pipes open for 60s.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------- parsers

#[test]
fn parse_real_raw_and_numstat_output() {
    let raw = b":000000 100644 0000000000000000000000000000000000000000 8352675d67aed6625ece79af41c27fdb4ee2e867 A\0bin\0\
:100644 100644 422c2b7ab3b3c668038da977e4e93a5fc623169c 422c2b7ab3b3c668038da977e4e93a5fc623169c C100\0f\0copyf\0\
:100644 100644 190423f88f824548a6ada3207938ec0ec11455d5 cfdd7848e3e82d216d743d198ff77eb4c3c6ae2f R099\0big\0d/big2\0\
:100644 120000 c1b0730e0133447badcfd47fd144e254807b06e1 4d1ae35ba2c8ec712fa2a379db44ad639ca277bd T\0g\0";
    let numstat = b"-\t-\tbin\x000\t0\t\0f\0copyf\x001\t0\t\0big\0d/big2\x001\t1\tg\0";
    let raw = parse_raw_z(raw).unwrap();
    let numstat = parse_numstat_z(numstat).unwrap();
    assert_eq!(raw[2].score, Some(99));
    assert_eq!(raw[1].kind, ChangeKind::Copied);
    let changes = join(raw, numstat).unwrap();
    assert_eq!(changes[0].added, None);
    assert_eq!(changes[2].old_path, Some(BString::from(&b"big"[..])));
    assert_eq!(changes[2].path, "d/big2");
    assert_eq!(changes[3].kind, ChangeKind::TypeChanged);
}

#[test]
fn parse_errors_say_where() {
    let cases: &[(&str, &[u8])] = &[
        ("no colon", b"100644 100644 abcd abcd M\0x\0"),
        ("unterminated path", b":100644 100644 abcd abcd M\0x"),
        (
            "rename without destination",
            b":100644 100644 abcd abcd R100\0x\0",
        ),
        ("unknown status", b":100644 100644 abcd abcd Z\0x\0"),
        ("unmerged", b":100644 100644 abcd abcd U\0x\0"),
        ("bad mode", b":100645 100644 abcd abcd M\0x\0"),
        ("added with an old side", b":100644 100644 abcd abcd A\0x\0"),
        ("empty path", b":100644 100644 abcd abcd M\0\0"),
        ("score above 100", b":100644 100644 abcd abcd R101\0a\0b\0"),
    ];
    let mut report = String::new();
    for (name, input) in cases {
        let err = parse_raw_z(input).expect_err(name);
        writeln!(report, "{name}: {err}").unwrap();
    }
    for (name, input) in [
        ("half binary", &b"-\t3\tx\0"[..]),
        ("no tab", b"1 2 x\0"),
        ("overflow", b"99999999999999999999999\t0\tx\0"),
        ("rename missing new", b"1\t2\t\0old\0"),
    ] {
        let err = parse_numstat_z(input).expect_err(name);
        writeln!(report, "{name}: {err}").unwrap();
    }
    assert_snapshot!("parse_errors", report);
}

#[test]
fn join_refuses_lists_that_disagree() {
    let raw =
        parse_raw_z(b":100644 100644 abcd abcd M\0a\0:100644 100644 abcd abcd M\0b\0").unwrap();
    let short = parse_numstat_z(b"1\t1\ta\0").unwrap();
    assert!(join(raw.clone(), short).is_err());
    let other = parse_numstat_z(b"1\t1\ta\x001\t1\tc\0").unwrap();
    assert!(
        join(raw.clone(), other)
            .unwrap_err()
            .to_string()
            .contains("\"c\"")
    );
    let renamed = parse_numstat_z(b"1\t1\ta\x001\t1\t\0x\0b\0").unwrap();
    assert!(join(raw, renamed).is_err(), "a rename on one side only");
}

fn path_strategy() -> impl Strategy<Value = BString> {
    let byte = prop_oneof![
        4 => 1u8..=255,
        1 => Just(b'\n'),
        1 => Just(b'\t'),
        1 => Just(b'"'),
        1 => Just(b'-'),
        1 => Just(b'\\'),
        1 => Just(b' '),
        1 => Just(b':'),
        1 => Just(0xff),
    ];
    proptest::collection::vec(byte, 1..24).prop_map(BString::from)
}

fn oid_strategy() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9a-f]{40}", "[0-9a-f]{64}", "[0-9a-f]{7}"]
}

fn mode_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0o100_644),
        Just(0o100_755),
        Just(0o120_000),
        Just(0o160_000)
    ]
}

fn raw_entry_strategy() -> impl Strategy<Value = RawEntry> {
    let kind = prop_oneof![
        Just(ChangeKind::Added),
        Just(ChangeKind::Modified),
        Just(ChangeKind::Deleted),
        Just(ChangeKind::Renamed),
        Just(ChangeKind::Copied),
        Just(ChangeKind::TypeChanged),
    ];
    (
        kind,
        mode_strategy(),
        mode_strategy(),
        oid_strategy(),
        oid_strategy(),
        0u8..=100,
        path_strategy(),
        path_strategy(),
    )
        .prop_map(
            |(kind, old_mode, new_mode, old_oid, new_oid, score, src, dst)| {
                let renamed = matches!(kind, ChangeKind::Renamed | ChangeKind::Copied);
                RawEntry {
                    old_mode: if kind == ChangeKind::Added {
                        0
                    } else {
                        old_mode
                    },
                    new_mode: if kind == ChangeKind::Deleted {
                        0
                    } else {
                        new_mode
                    },
                    old_oid,
                    new_oid,
                    kind,
                    score: renamed.then_some(score),
                    src,
                    dst: renamed.then_some(dst),
                }
            },
        )
}

fn numstat_entry_strategy() -> impl Strategy<Value = NumstatEntry> {
    (
        proptest::option::of((any::<u64>(), any::<u64>())),
        path_strategy(),
        proptest::option::of(path_strategy()),
    )
        .prop_map(|(counts, path, old_path)| NumstatEntry {
            added: counts.map(|c| c.0),
            deleted: counts.map(|c| c.1),
            path,
            old_path,
        })
}

proptest! {
    #[test]
    fn raw_round_trips(entries in proptest::collection::vec(raw_entry_strategy(), 0..12)) {
        let bytes = format_raw_z(&entries);
        prop_assert_eq!(parse_raw_z(&bytes).unwrap(), entries);
    }

    #[test]
    fn numstat_round_trips(entries in proptest::collection::vec(numstat_entry_strategy(), 0..12)) {
        let bytes = format_numstat_z(&entries);
        prop_assert_eq!(parse_numstat_z(&bytes).unwrap(), entries);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_raw_z(&bytes);
        let _ = parse_numstat_z(&bytes);
    }

    #[test]
    fn a_truncated_record_is_an_error_not_a_shorter_list(
        entries in proptest::collection::vec(raw_entry_strategy(), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = format_raw_z(&entries);
        let at = cut.index(bytes.len());
        // Cutting at a record boundary yields a valid shorter list; anywhere else must fail.
        let boundaries: Vec<usize> = (0..=entries.len()).map(|n| format_raw_z(&entries[..n]).len()).collect();
        let result = parse_raw_z(&bytes[..at]);
        if boundaries.contains(&at) {
            prop_assert!(result.is_ok());
        } else {
            prop_assert!(result.is_err(), "cut at {} parsed as {:?}", at, result);
        }
    }

    #[test]
    fn mutated_raw_output_never_panics(
        entries in proptest::collection::vec(raw_entry_strategy(), 1..6),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = format_raw_z(&entries);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let _ = parse_raw_z(&bytes);
    }
}

// ---------------------------------------------------------------- one diff, both formats

/// The numstat entries that agree with `raw` (same paths, same order), with these counts.
fn numstat_for(raw: &[RawEntry], counts: &[Option<(u64, u64)>]) -> Vec<NumstatEntry> {
    raw.iter()
        .zip(counts.iter().cycle())
        .map(|(r, c)| NumstatEntry {
            added: c.map(|c| c.0),
            deleted: c.map(|c| c.1),
            path: r.dst.clone().unwrap_or_else(|| r.src.clone()),
            old_path: r.dst.as_ref().map(|_| r.src.clone()),
        })
        .collect()
}

proptest! {
    #[test]
    fn one_diff_with_both_formats_reads_as_the_two_halves_joined(
        raw in proptest::collection::vec(raw_entry_strategy(), 0..10),
        counts in proptest::collection::vec(proptest::option::of((any::<u64>(), any::<u64>())), 1..4),
    ) {
        let numstat = numstat_for(&raw, &counts);
        let mut bytes = format_raw_z(&raw);
        bytes.extend_from_slice(&format_numstat_z(&numstat));
        let joined = join(raw, numstat).unwrap();
        prop_assert_eq!(parse_raw_numstat_z(&bytes).unwrap(), joined);
    }

    #[test]
    fn one_diff_is_refused_exactly_when_the_halves_do_not_join(
        raw in proptest::collection::vec(raw_entry_strategy(), 0..6),
        numstat in proptest::collection::vec(numstat_entry_strategy(), 0..6),
    ) {
        let mut bytes = format_raw_z(&raw);
        bytes.extend_from_slice(&format_numstat_z(&numstat));
        let expected = join(raw, numstat);
        match (parse_raw_numstat_z(&bytes), expected) {
            (Ok(got), Ok(want)) => prop_assert_eq!(got, want),
            (Err(got), Err(want)) => prop_assert_eq!(got.to_string(), want.to_string()),
            (got, want) => prop_assert!(false, "one diff gave {:?}, the halves {:?}", got, want),
        }
    }

    #[test]
    fn one_diff_cut_or_mutated_never_panics_and_is_never_a_shorter_list(
        raw in proptest::collection::vec(raw_entry_strategy(), 1..6),
        cut in any::<prop::sample::Index>(),
        flip in (any::<prop::sample::Index>(), any::<u8>()),
    ) {
        let numstat = numstat_for(&raw, &[Some((1, 2))]);
        let mut bytes = format_raw_z(&raw);
        bytes.extend_from_slice(&format_numstat_z(&numstat));
        let at = cut.index(bytes.len());
        if let Ok(changes) = parse_raw_numstat_z(&bytes[..at]) {
            // Only a cut at the very start (no change at all) may parse.
            prop_assert!(changes.is_empty() && at == 0, "cut at {} parsed as {:?}", at, changes);
        }
        let i = flip.0.index(bytes.len());
        bytes[i] = flip.1;
        let _ = parse_raw_numstat_z(&bytes);
    }
}

/// `git diff` with the adapter's flags and one output format, run directly.
fn plain_diff(repo: &TestRepo, format: &str, base: &str, head: &str) -> Vec<u8> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo.path())
        .args([
            "diff",
            format,
            "-z",
            "-M",
            "-C",
            "--no-abbrev",
            "--no-ext-diff",
            "--no-textconv",
            "--ignore-submodules=none",
            base,
            head,
            "--",
        ])
        .env(
            "GIT_ATTR_SOURCE",
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn changes_from_one_diff_equal_the_raw_and_numstat_diffs_joined() {
    let repo = TestRepo::new();
    repo.write("modified.txt", "one\ntwo\n");
    repo.write("deleted.txt", "bye\n");
    repo.write("old/moved.txt", numbered("line", 40));
    repo.write("copy-source.txt", numbered("source", 30));
    repo.write("tool.sh", "#!/bin/sh\n");
    repo.write("binary.dat", b"\x00\x01bin\x00");
    for name in HOSTILE {
        repo.write(name, *name);
    }
    let base = repo.commit("base");
    repo.branch("agent");
    repo.write("modified.txt", "one\nTWO\nthree\n");
    repo.remove("deleted.txt");
    std::fs::create_dir_all(repo.path().join("new")).unwrap();
    std::fs::rename(
        repo.path().join("old/moved.txt"),
        repo.path().join("new/moved.txt"),
    )
    .unwrap();
    let source = numbered("source", 30);
    repo.write("copy-of-source.txt", &source);
    repo.write("copy-source.txt", format!("{source}more\n"));
    chmod(&repo.path().join("tool.sh"), 0o755);
    repo.write("binary.dat", b"\x00\x01changed\x00");
    std::os::unix::fs::symlink("modified.txt", repo.path().join("link")).unwrap();
    for name in HOSTILE {
        repo.write(name, [*name, b"\nchanged"].concat());
    }
    let head = repo.commit("agent");

    let set = Git::new(repo.path()).changes("main", "agent").unwrap();
    let raw = parse_raw_z(&plain_diff(&repo, "--raw", &base, &head)).unwrap();
    let numstat = parse_numstat_z(&plain_diff(&repo, "--numstat", &base, &head)).unwrap();
    let joined = join(raw, numstat).unwrap();
    assert_eq!(set.changes, joined);
    let kinds: Vec<ChangeKind> = set.changes.iter().map(|c| c.kind).collect();
    for kind in [
        ChangeKind::Added,
        ChangeKind::Modified,
        ChangeKind::Deleted,
        ChangeKind::Renamed,
        ChangeKind::Copied,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} in {kinds:?}");
    }
    assert!(set.changes.iter().any(Change::is_binary));
    assert!(set.changes.iter().any(Change::mode_changed));
}

// ---------------------------------------------------------------- export, in parallel

/// A tree large enough for git's parallel checkout (over 100 files): every file must come
/// out as the commit has it, whichever worker wrote it.
#[test]
fn a_large_export_written_in_parallel_is_a_faithful_copy() {
    let repo = TestRepo::new();
    let mut expected: BTreeMap<Vec<u8>, (Vec<u8>, bool)> = BTreeMap::new();
    for i in 0..400 {
        let path = format!("d{}/sub{}/file{i}.txt", i % 7, i % 3);
        let content = format!("file {i}\n").repeat(1 + i % 5);
        repo.write(&path, &content);
        let executable = i % 9 == 0;
        if executable {
            chmod(&repo.path().join(&path), 0o755);
        }
        expected.insert(path.into_bytes(), (content.into_bytes(), executable));
    }
    for name in HOSTILE {
        repo.write(name, *name);
        expected.insert(name.to_vec(), (name.to_vec(), false));
    }
    std::os::unix::fs::symlink("../d1/sub1/file1.txt", repo.path().join("d0/inside")).unwrap();
    std::os::unix::fs::symlink("../../../outside", repo.path().join("d0/sub0/escapes")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", repo.path().join("d2/absolute")).unwrap();
    repo.commit("a large tree");
    let target = repo.head();
    add_gitlink(&repo, "d3/module", &target);
    let exported = commit_index(&repo, "submodule");
    let before = workspace_state(&repo);

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("export");
    Git::new(repo.path()).export_tree(&exported, &dest).unwrap();

    assert_eq!(workspace_state(&repo), before, "the workspace is untouched");
    for (path, (content, executable)) in &expected {
        let file = dest.join(OsStr::from_bytes(path));
        let meta = std::fs::symlink_metadata(&file).unwrap();
        assert!(meta.is_file(), "{:?}", path.as_bstr());
        assert_eq!(
            &std::fs::read(&file).unwrap(),
            content,
            "{:?}",
            path.as_bstr()
        );
        assert_eq!(
            meta.permissions().mode() & 0o111 != 0,
            *executable,
            "{:?}",
            path.as_bstr()
        );
        assert_eq!(
            std::os::unix::fs::MetadataExt::nlink(&meta),
            1,
            "no hard link: {:?}",
            path.as_bstr()
        );
    }
    assert_eq!(
        std::fs::read_link(dest.join("d0/inside")).unwrap(),
        Path::new("../d1/sub1/file1.txt")
    );
    for (link, target) in [
        ("d0/sub0/escapes", "../../../outside"),
        ("d2/absolute", "/etc/passwd"),
    ] {
        let meta = std::fs::symlink_metadata(dest.join(link)).unwrap();
        assert!(meta.is_file(), "{link} leads out: written as a file");
        assert_eq!(std::fs::read(dest.join(link)).unwrap(), target.as_bytes());
    }
    let module = dest.join("d3/module");
    assert!(module.is_dir() && std::fs::read_dir(&module).unwrap().next().is_none());
    assert!(std::fs::symlink_metadata(dest.join(".git")).is_err());
    let count = |dir: &Path| -> usize {
        let mut n = 0;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    n += 1;
                }
            }
        }
        n
    };
    // The files written, three links and TestRepo's README.md.
    assert_eq!(
        count(&dest),
        expected.len() + 4,
        "nothing more, nothing less"
    );
}

#[test]
fn export_tree_takes_a_resolved_id_and_refuses_an_unknown_one() {
    let repo = TestRepo::new();
    let head = repo.head();
    let out = tempfile::tempdir().unwrap();
    Git::new(repo.path())
        .export_tree(&head, &out.path().join("by-id"))
        .unwrap();
    assert!(out.path().join("by-id/README.md").is_file());
    let missing = "0123456789abcdef0123456789abcdef01234567";
    let err = Git::new(repo.path())
        .export_tree(missing, &out.path().join("missing"))
        .unwrap_err();
    assert!(matches!(err, GitError::Command { .. }), "{err:?}");
    let err = Git::new(repo.path())
        .export_tree("no-such-branch", &out.path().join("unknown"))
        .unwrap_err();
    assert!(matches!(err, GitError::UnknownRef { .. }), "{err:?}");
}
