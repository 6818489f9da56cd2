//! git's glob function for the shapes most rules have, without a regex: a pattern for one
//! path component ([`Component`]: bytes, `?`, `*`, bracket expressions) and a pattern for a
//! whole path as a sequence of components and `**/` ([`Sequence`]). Both are read from the
//! [`Token`]s of `wildmatch.rs` and match exactly what the `globset` glob written from the
//! same tokens matches (the set's property test holds them to it); what they cannot express
//! (`foo**/bar`, `foo**`) they refuse, and the set keeps a `globset` for those. They also say
//! what a text must hold for them to match (its name, extension, first component, last
//! byte), which is how the set picks the few rules worth trying on a path.

use super::super::wildmatch::Token;

/// One element of a component pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Byte(u8),
    /// `?`: any one byte.
    Any,
    /// `*`: any run of bytes.
    Star,
    /// A bracket expression, read as `wildmatch::push_class` writes it for `globset`: NUL
    /// is never a member; without negation only ASCII members match.
    Class {
        negated: bool,
        set: u128,
    },
}

impl Unit {
    /// The byte a literal unit stands for.
    fn byte(&self) -> Option<u8> {
        match self {
            Unit::Byte(b) => Some(*b),
            _ => None,
        }
    }
}

impl Unit {
    fn matches(self, b: u8) -> bool {
        match self {
            Unit::Byte(x) => x == b,
            Unit::Any => true,
            Unit::Star => false,
            Unit::Class { negated, set } => {
                let member = b < 0x80 && set & (1u128 << b) != 0;
                member != negated
            }
        }
    }
}

/// The units between two stars of a component pattern: plain bytes, compared as a slice
/// (and searched for from their first byte, found with `memchr`), or with wildcards, unit
/// by unit.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<[u8]>),
    Units(Box<[Unit]>),
}

impl Segment {
    fn new(units: &[Unit]) -> Segment {
        match units.iter().map(Unit::byte).collect::<Option<Box<[u8]>>>() {
            Some(bytes) => Segment::Literal(bytes),
            None => Segment::Units(units.into()),
        }
    }

    /// How many bytes it matches.
    fn len(&self) -> usize {
        match self {
            Segment::Literal(b) => b.len(),
            Segment::Units(u) => u.len(),
        }
    }

    /// Does it match the start of `text`?
    fn fits(&self, text: &[u8]) -> bool {
        match self {
            Segment::Literal(b) => text.starts_with(b),
            Segment::Units(u) => {
                u.len() <= text.len() && u.iter().zip(text).all(|(u, &b)| u.matches(b))
            }
        }
    }

    /// The leftmost place in `text` where it matches.
    fn find(&self, text: &[u8]) -> Option<usize> {
        match self {
            Segment::Literal(b) => find_literal(b, text),
            Segment::Units(u) => {
                (0..=text.len().checked_sub(u.len())?).find(|&at| self.fits(&text[at..]))
            }
        }
    }
}

/// The leftmost place in `text` where `needle` starts: each place holding its first byte
/// (found with `memchr`) is compared with the rest. Names and components are short, so this
/// beats a substring searcher, which costs more to build (per search, or in memory per
/// pattern when kept) than such a search takes.
fn find_literal(needle: &[u8], text: &[u8]) -> Option<usize> {
    let Some((&first, rest)) = needle.split_first() else {
        return Some(0);
    };
    let mut from = 0;
    while let Some(at) = memchr::memchr(first, &text[from..]) {
        let at = from + at;
        if text[at + 1..].starts_with(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// A pattern for one path component (no `/` in it or in the text it is matched against).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Component {
    units: Box<[Unit]>,
    /// The units between the stars: `a*b?c*d` is `a`, `b?c`, `d`.
    segments: Box<[Segment]>,
    /// Whether the pattern starts and ends with a `*`.
    star_first: bool,
    star_last: bool,
}

impl Component {
    /// The component pattern of `tokens`, or `None` if they hold anything but bytes other
    /// than `/`, `?`, `*` and bracket expressions (or nothing at all).
    pub(crate) fn new(tokens: &[Token]) -> Option<Component> {
        if tokens.is_empty() {
            return None;
        }
        let mut units = Vec::with_capacity(tokens.len());
        for &t in tokens {
            let unit = match t {
                Token::Byte(b'/') => return None,
                Token::Byte(b) => Unit::Byte(b),
                Token::Any => Unit::Any,
                Token::Star => Unit::Star,
                Token::Class { negated, set } => {
                    let mut set = set & !1;
                    if !negated {
                        set &= !(1u128 << b'/');
                    } else if set == 0 {
                        // `globset` refuses the glob this writes; so does the set.
                        return None;
                    }
                    Unit::Class { negated, set }
                }
                _ => return None,
            };
            // `**` inside a component is `*`.
            if !(unit == Unit::Star && units.last() == Some(&Unit::Star)) {
                units.push(unit);
            }
        }
        let segments = units
            .split(|&u| u == Unit::Star)
            .filter(|s| !s.is_empty())
            .map(Segment::new)
            .collect();
        Some(Component {
            star_first: units.first() == Some(&Unit::Star),
            star_last: units.last() == Some(&Unit::Star),
            units: units.into_boxed_slice(),
            segments,
        })
    }

    /// Does the whole of `text` (one component) match? The segments between stars have a
    /// fixed length, so the first is matched at the start, the last at the end, and each
    /// one between at the leftmost place it fits (which leaves the most room for the rest).
    pub(crate) fn is_match(&self, text: &[u8]) -> bool {
        let mut segments: &[Segment] = &self.segments;
        let (mut lo, mut hi) = (0, text.len());
        if !self.star_first {
            let Some((first, rest)) = segments.split_first() else {
                return text.is_empty();
            };
            if !first.fits(text) {
                return false;
            }
            if rest.is_empty() && !self.star_last {
                return first.len() == text.len();
            }
            lo = first.len();
            segments = rest;
        }
        if !self.star_last {
            let Some((last, rest)) = segments.split_last() else {
                return lo == hi;
            };
            if last.len() > hi - lo || !last.fits(&text[hi - last.len()..]) {
                return false;
            }
            hi -= last.len();
            segments = rest;
        }
        for seg in segments {
            let Some(at) = seg.find(&text[lo..hi]) else {
                return false;
            };
            lo += at + seg.len();
        }
        true
    }

    /// The bytes it matches, if it holds no wildcard.
    pub(crate) fn literal(&self) -> Option<Vec<u8>> {
        self.units.iter().map(Unit::byte).collect()
    }

    /// The literal bytes every match starts with (`tests.contrib.*` → `tests.contrib.`).
    pub(crate) fn prefix(&self) -> Vec<u8> {
        self.units.iter().map_while(Unit::byte).collect()
    }

    /// The extension every match has (what follows its last `.`), if the pattern ends in
    /// literal bytes that hold a `.` (`*.log`, `x*.tar.gz`, `?.c`).
    pub(crate) fn extension(&self) -> Option<Vec<u8>> {
        let mut tail = Vec::new();
        for u in self.units.iter().rev() {
            match u {
                Unit::Byte(b'.') => {
                    tail.reverse();
                    return Some(tail);
                }
                Unit::Byte(b) => tail.push(*b),
                _ => return None,
            }
        }
        None
    }

    /// The bytes a match can end with (bit `b` = byte `b`), if the pattern's last element
    /// is a byte or a bracket expression without negation.
    pub(crate) fn last_bytes(&self) -> Option<[u128; 2]> {
        match self.units.last()? {
            Unit::Byte(b) => {
                let mut bits = [0u128; 2];
                bits[usize::from(*b >> 7)] |= 1u128 << (b & 0x7f);
                Some(bits)
            }
            Unit::Class {
                negated: false,
                set,
            } => Some([*set, 0]),
            _ => None,
        }
    }
}

/// One step of a [`Sequence`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Exactly one component, matching this pattern.
    One(Component),
    /// `**/`: any number of components, none included.
    AnyDirs,
}

/// A pattern for a whole path: components and `**/`, matched component by component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sequence {
    steps: Box<[Step]>,
}

impl Sequence {
    /// The sequence of `tokens` (a gitignore rule's glob, anchored at the root), or `None`
    /// when a `**` is glued to a literal (`foo**/bar`) or a component would be empty.
    pub(crate) fn new(tokens: &[Token]) -> Option<Sequence> {
        let any_component = || Step::One(Component::new(&[Token::Star]).expect("`*`"));
        let mut steps = Vec::new();
        let mut current: Vec<Token> = Vec::new();
        let mut iter = tokens.iter().peekable();
        while let Some(&t) = iter.next() {
            match t {
                Token::Byte(b'/') => {
                    steps.push(Step::One(Component::new(&current)?));
                    current.clear();
                }
                // At the start or after a `/`: nothing, or whole components.
                Token::StarStarSlash if current.is_empty() => steps.push(Step::AnyDirs),
                // At least one component.
                Token::StarStarEscapedSlash if current.is_empty() => {
                    steps.push(any_component());
                    steps.push(Step::AnyDirs);
                }
                // Anything (what is left of the text, which is a component at least).
                Token::StarStarEnd if current.is_empty() && iter.peek().is_none() => {
                    steps.push(any_component());
                    steps.push(Step::AnyDirs);
                    return Some(Sequence {
                        steps: steps.into_boxed_slice(),
                    });
                }
                Token::Byte(_) | Token::Any | Token::Star | Token::Class { .. } => current.push(t),
                _ => return None,
            }
        }
        steps.push(Step::One(Component::new(&current)?));
        Some(Sequence {
            steps: steps.into_boxed_slice(),
        })
    }

    /// Does the whole of `text` (components separated by `/`) match? The components after
    /// the last `**/` can only match the text's last components: those are tried first,
    /// from the end, and the rest of the sequence only on what is left before them.
    pub(crate) fn is_match(&self, text: &[u8]) -> bool {
        let steps = &self.steps;
        let Some(star) = steps.iter().rposition(|s| *s == Step::AnyDirs) else {
            return run(steps, text);
        };
        let tail = &steps[star + 1..];
        let mut end = text.len();
        for (left, step) in tail.iter().enumerate().rev() {
            let Step::One(c) = step else { return false };
            let start = memchr::memrchr(b'/', &text[..end]).map_or(0, |at| at + 1);
            if !c.is_match(&text[start..end]) {
                return false;
            }
            if start == 0 {
                // No component is left: no step of the tail may remain, and the steps
                // before it must all be `**/`.
                return left == 0 && steps[..=star].iter().all(|s| *s == Step::AnyDirs);
            }
            end = start - 1;
        }
        run(&steps[..=star], &text[..end])
    }
}

/// Does the whole of `text` (components separated by `/`, at least one, perhaps empty)
/// match `steps`? The classic two-pointer match, with `**/` as the star.
fn run(steps: &[Step], text: &[u8]) -> bool {
    let n = text.len();
    let end_of = |start: usize| memchr::memchr(b'/', &text[start..]).map_or(n, |at| start + at);
    let after = |end: usize| (end < n).then_some(end + 1);
    let mut si = 0;
    // Where the current component starts; `None` once every component is consumed.
    let mut pos = Some(0);
    // The last `**/` seen and the component it would stop before.
    let mut star: Option<(usize, Option<usize>)> = None;
    while let Some(start) = pos {
        let end = end_of(start);
        if si < steps.len() {
            match &steps[si] {
                Step::AnyDirs => {
                    star = Some((si, pos));
                    si += 1;
                    continue;
                }
                Step::One(c) if c.is_match(&text[start..end]) => {
                    si += 1;
                    pos = after(end);
                    continue;
                }
                Step::One(_) => {}
            }
        }
        match star {
            Some((star_step, Some(from))) => {
                let next = after(end_of(from));
                star = Some((star_step, next));
                si = star_step + 1;
                pos = next;
            }
            _ => return false,
        }
    }
    steps[si..].iter().all(|s| *s == Step::AnyDirs)
}

impl Sequence {
    /// The last component's pattern, if the sequence ends in one.
    pub(crate) fn last(&self) -> Option<&Component> {
        match self.steps.last()? {
            Step::One(c) => Some(c),
            Step::AnyDirs => None,
        }
    }

    /// The first component, if it is literal.
    pub(crate) fn first_literal(&self) -> Option<Vec<u8>> {
        match self.steps.first()? {
            Step::One(c) if self.steps.len() > 1 => c.literal(),
            _ => None,
        }
    }
}
