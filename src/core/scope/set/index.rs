//! The rules whose glob a hash lookup cannot answer alone (`*.log`, `build/`,
//! `src/**/*.pem`, `**/gen/*.rs`, `test_*.py`), indexed by what a text must hold to match
//! them: its name (the last component), its extension, the literal start of its name, its
//! first component, or its last byte. A query looks up the few buckets the text's own name,
//! extension, name prefixes, first component and last byte select, and tries only the rules
//! there (in descending rule order, so "the last matching rule" stops at the first match);
//! rules with no such key are tried on every text.

use super::wildcard::{Component, Sequence};
use super::{PathMap, basename};

/// How one entry decides whether a text matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Test {
    /// The bucket's key is the whole condition (a literal name looked up by name).
    Always,
    /// The text's name (last component) matches this pattern.
    Name(Component),
    /// The whole text matches this sequence.
    Path(Sequence),
}

#[derive(Debug, Clone)]
struct Entry {
    /// The highest rule this entry stands for.
    rule: usize,
    /// Lower rules with the very same test (a rule written twice), highest first.
    same: Vec<usize>,
    test: Test,
}

impl Entry {
    fn new(rule: usize, test: Test) -> Entry {
        Entry {
            rule,
            same: Vec::new(),
            test,
        }
    }
}

/// Put a bucket built in ascending rule order in descending order, and fold entries with
/// the same test into the highest one, so a rule written many times is tried once.
fn settle(bucket: &mut Vec<Entry>) {
    bucket.reverse();
    if bucket.len() > 4096 {
        return;
    }
    let mut kept: Vec<Entry> = Vec::with_capacity(bucket.len());
    for e in bucket.drain(..) {
        match kept.iter_mut().find(|k| k.test == e.test) {
            Some(k) => {
                k.same.push(e.rule);
                k.same.extend(e.same);
            }
            None => kept.push(e),
        }
    }
    *bucket = kept;
}

/// Receives the rules that match, in descending order within each bucket.
pub(crate) trait Sink {
    /// Is `rule` still worth trying? (Once false, every lower rule of the bucket is skipped.)
    fn wants(&self, rule: usize) -> bool;
    fn hit(&mut self, rule: usize);
}

/// The highest matching rule above a floor.
pub(crate) struct Last(pub(crate) Option<usize>);

impl Sink for Last {
    fn wants(&self, rule: usize) -> bool {
        Some(rule) > self.0
    }
    fn hit(&mut self, rule: usize) {
        self.0 = self.0.max(Some(rule));
    }
}

/// Every matching rule (with repeats, when several expansions of a rule match).
pub(crate) struct All<'a>(pub(crate) &'a mut Vec<usize>);

impl Sink for All<'_> {
    fn wants(&self, _rule: usize) -> bool {
        true
    }
    fn hit(&mut self, rule: usize) {
        self.0.push(rule);
    }
}

/// Rules indexed by the key each text must hold to match them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    by_name: PathMap<Box<[u8]>, Vec<Entry>>,
    by_extension: PathMap<Box<[u8]>, Vec<Entry>>,
    by_first: PathMap<Box<[u8]>, Vec<Entry>>,
    /// By the literal start of the name (two bytes or more, or one with no better key).
    by_prefix: Trie,
    /// 256 buckets by the text's last byte, or none when no rule is keyed so.
    by_last_byte: Vec<Vec<Entry>>,
    rest: Vec<Entry>,
}

impl Index {
    pub(crate) fn is_empty(&self) -> bool {
        self.by_name.is_empty()
            && self.by_extension.is_empty()
            && self.by_first.is_empty()
            && self.by_prefix.is_empty()
            && self.by_last_byte.is_empty()
            && self.rest.is_empty()
    }

    /// Index `rule`, matched on the text's name by `name`.
    pub(crate) fn add_name(&mut self, rule: usize, name: Component) {
        let prefix = name.prefix();
        if let Some(literal) = name.literal() {
            push(&mut self.by_name, literal, rule, Test::Always);
        } else if let Some(ext) = name.extension() {
            push(&mut self.by_extension, ext, rule, Test::Name(name));
        } else if prefix.len() >= 2 {
            self.by_prefix.push(&prefix, rule, Test::Name(name));
        } else if let Some(bits) = name.last_bytes() {
            self.add_by_last_byte(rule, bits, &Test::Name(name));
        } else if !prefix.is_empty() {
            self.by_prefix.push(&prefix, rule, Test::Name(name));
        } else {
            self.rest.push(Entry::new(rule, Test::Name(name)));
        }
    }

    /// Index `rule`, matched on the whole text by `path`.
    pub(crate) fn add_path(&mut self, rule: usize, path: Sequence) {
        let last = path.last().cloned();
        let prefix = last.as_ref().map(Component::prefix).unwrap_or_default();
        if let Some(literal) = last.as_ref().and_then(Component::literal) {
            push(&mut self.by_name, literal, rule, Test::Path(path));
        } else if let Some(ext) = last.as_ref().and_then(Component::extension) {
            push(&mut self.by_extension, ext, rule, Test::Path(path));
        } else if prefix.len() >= 2 {
            self.by_prefix.push(&prefix, rule, Test::Path(path));
        } else if let Some(first) = path.first_literal() {
            push(&mut self.by_first, first, rule, Test::Path(path));
        } else if let Some(bits) = last.as_ref().and_then(Component::last_bytes) {
            self.add_by_last_byte(rule, bits, &Test::Path(path));
        } else if !prefix.is_empty() {
            self.by_prefix.push(&prefix, rule, Test::Path(path));
        } else {
            self.rest.push(Entry::new(rule, Test::Path(path)));
        }
    }

    fn add_by_last_byte(&mut self, rule: usize, bits: [u128; 2], test: &Test) {
        if self.by_last_byte.is_empty() {
            self.by_last_byte = vec![Vec::new(); 256];
        }
        for (b, bucket) in self.by_last_byte.iter_mut().enumerate() {
            if bits[b >> 7] & (1u128 << (b & 0x7f)) != 0 {
                bucket.push(Entry::new(rule, test.clone()));
            }
        }
    }

    /// Put every bucket in descending rule order (rules are added in ascending order).
    pub(crate) fn finish(&mut self) {
        let maps = [
            &mut self.by_name,
            &mut self.by_extension,
            &mut self.by_first,
        ];
        for map in maps {
            map.values_mut().for_each(settle);
        }
        self.by_last_byte.iter_mut().for_each(settle);
        for node in &mut self.by_prefix.nodes {
            settle(&mut node.bucket);
        }
        settle(&mut self.rest);
    }

    /// Give `sink` the rules that match `text` (a path or a directory).
    pub(crate) fn visit(&self, text: &[u8], sink: &mut impl Sink) {
        let name = basename(text);
        if !self.by_name.is_empty()
            && let Some(bucket) = self.by_name.get(name)
        {
            scan(bucket, text, name, sink);
        }
        if !self.by_extension.is_empty()
            && let Some(dot) = name.iter().rposition(|&b| b == b'.')
            && let Some(bucket) = self.by_extension.get(&name[dot + 1..])
        {
            scan(bucket, text, name, sink);
        }
        if !self.by_first.is_empty() {
            let first = text
                .iter()
                .position(|&b| b == b'/')
                .map_or(text, |at| &text[..at]);
            if let Some(bucket) = self.by_first.get(first) {
                scan(bucket, text, name, sink);
            }
        }
        if !self.by_prefix.is_empty() {
            self.by_prefix
                .visit(name, |bucket| scan(bucket, text, name, sink));
        }
        if let Some(&last) = text.last()
            && let Some(bucket) = self.by_last_byte.get(usize::from(last))
        {
            scan(bucket, text, name, sink);
        }
        scan(&self.rest, text, name, sink);
    }
}

fn push(map: &mut PathMap<Box<[u8]>, Vec<Entry>>, key: Vec<u8>, rule: usize, test: Test) {
    map.entry(key.into_boxed_slice())
        .or_default()
        .push(Entry::new(rule, test));
}

fn scan(bucket: &[Entry], text: &[u8], name: &[u8], sink: &mut impl Sink) {
    for e in bucket {
        if !sink.wants(e.rule) {
            return;
        }
        let hit = match &e.test {
            Test::Always => true,
            Test::Name(c) => c.is_match(name),
            Test::Path(s) => s.is_match(text),
        };
        if hit {
            sink.hit(e.rule);
            for &r in &e.same {
                if !sink.wants(r) {
                    break;
                }
                sink.hit(r);
            }
        }
    }
}

/// Buckets by literal name prefixes: a byte trie, so that every prefix of a name is found in
/// one walk along it.
#[derive(Debug, Clone, Default)]
struct Trie {
    /// Node 0 is the root (the empty prefix, never holding rules).
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, Default)]
struct Node {
    /// (byte, node), in insertion order; a node has few children.
    next: Vec<(u8, u32)>,
    bucket: Vec<Entry>,
}

impl Trie {
    fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn push(&mut self, prefix: &[u8], rule: usize, test: Test) {
        if self.nodes.is_empty() {
            self.nodes.push(Node::default());
        }
        let mut at = 0usize;
        for &b in prefix {
            at = if let Some(&(_, n)) = self.nodes[at].next.iter().find(|&&(x, _)| x == b) {
                n as usize
            } else {
                let n = self.nodes.len();
                let id = u32::try_from(n).expect("fewer than 2^32 trie nodes");
                self.nodes[at].next.push((b, id));
                self.nodes.push(Node::default());
                n
            };
        }
        self.nodes[at].bucket.push(Entry::new(rule, test));
    }

    /// Call `f` with the bucket of every prefix of `name` that has one.
    fn visit(&self, name: &[u8], mut f: impl FnMut(&[Entry])) {
        let mut at = 0usize;
        for &b in name {
            match self.nodes[at].next.iter().find(|&&(x, _)| x == b) {
                Some(&(_, n)) => at = n as usize,
                None => return,
            }
            if !self.nodes[at].bucket.is_empty() {
                f(&self.nodes[at].bucket);
            }
        }
    }
}
