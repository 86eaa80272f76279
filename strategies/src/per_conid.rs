//! Per-contract strategy state.

use std::ops::{Index, IndexMut};

use engine::model::Conid;

/// State for each contract a strategy sees, created on first sight as a
/// clone of a template (built, and its parameters validated, once).
///
/// A strategy trades a handful of contracts, so this is a small vector
/// searched linearly, with the previous bar's contract checked first:
/// consecutive bars are usually of the same contract. No hashing, no
/// allocation after a contract's first bar.
#[derive(Debug, Clone)]
pub struct PerConid<T> {
    template: T,
    entries: Vec<(Conid, T)>,
    last: usize,
}

impl<T: Clone> PerConid<T> {
    /// No contract seen yet; each new contract starts as a clone of
    /// `template`.
    pub fn new(template: T) -> Self {
        PerConid {
            template,
            entries: Vec::new(),
            last: 0,
        }
    }

    /// Index of `conid`'s state, creating it from the template if new.
    #[inline]
    pub fn slot(&mut self, conid: Conid) -> usize {
        if let Some((c, _)) = self.entries.get(self.last) {
            if *c == conid {
                return self.last;
            }
        }
        let i = match self.entries.iter().position(|(c, _)| *c == conid) {
            Some(i) => i,
            None => {
                self.entries.push((conid, self.template.clone()));
                self.entries.len() - 1
            }
        };
        self.last = i;
        i
    }

    /// `conid`'s state, if it has been seen.
    pub fn get(&self, conid: Conid) -> Option<&T> {
        self.entries
            .iter()
            .find(|(c, _)| *c == conid)
            .map(|(_, t)| t)
    }

    /// `conid`'s state, if it has been seen.
    pub fn get_mut(&mut self, conid: Conid) -> Option<&mut T> {
        self.entries
            .iter_mut()
            .find(|(c, _)| *c == conid)
            .map(|(_, t)| t)
    }
}

impl<T> Index<usize> for PerConid<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.entries[i].1
    }
}

impl<T> IndexMut<usize> for PerConid<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.entries[i].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_from_template_and_finds_again() {
        let mut p = PerConid::new(0u32);
        let a = p.slot(Conid(1));
        p[a] += 5;
        let b = p.slot(Conid(2));
        assert_ne!(a, b);
        assert_eq!(p.slot(Conid(1)), a);
        assert_eq!(p.get(Conid(1)), Some(&5));
        assert_eq!(p.get(Conid(2)), Some(&0));
        assert_eq!(p.get(Conid(3)), None);
        *p.get_mut(Conid(2)).unwrap() = 7;
        assert_eq!(p[b], 7);
    }
}
