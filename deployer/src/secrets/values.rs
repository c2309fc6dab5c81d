//! `Secrets`: the decrypted name -> value pairs handed to the rest of the deployer. Values
//! are zeroized on drop and never printed: `Debug` and `Display` show names only.

use std::fmt;

use zeroize::Zeroizing;

/// Ordered name -> value pairs; Debug/Display print names only, values "<redacted>".
#[derive(Clone, Default)]
pub struct Secrets {
    /// In file order; names are unique (the parser refuses duplicates).
    entries: Vec<(String, Zeroizing<String>)>,
}

impl Secrets {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a set from pairs; a later pair with the same name replaces the earlier value.
    pub fn from_pairs<I, N, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<String>,
        V: Into<String>,
    {
        let mut out = Self::new();
        for (name, value) in pairs {
            out.insert(name.into(), Zeroizing::new(value.into()));
        }
        out
    }

    pub(crate) fn insert(&mut self, name: String, value: Zeroizing<String>) {
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((name, value)),
        }
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    /// `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `self` overlaid with `other`: names in both take `other`'s value and keep their
    /// position; names only in `other` are appended in `other`'s order.
    pub fn merge(mut self, other: Secrets) -> Secrets {
        for (name, value) in other.entries {
            self.insert(name, value);
        }
        self
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, _) in &self.entries {
            map.entry(&name, &format_args!("<redacted>"));
        }
        map.finish()
    }
}

impl fmt::Display for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, _)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}=<redacted>")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_values() {
        let s = Secrets::from_pairs([("A", "hunter2"), ("B", "swordfish")]);
        let shown = format!("{s:?} {s} {s:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("swordfish"), "{shown}");
        assert!(shown.contains("A") && shown.contains("<redacted>"));
    }

    #[test]
    fn merge_other_wins_and_keeps_order() {
        let a = Secrets::from_pairs([("X", "1"), ("Y", "2")]);
        let b = Secrets::from_pairs([("Z", "3"), ("X", "9")]);
        let m = a.merge(b);
        assert_eq!(m.names().collect::<Vec<_>>(), ["X", "Y", "Z"]);
        assert_eq!(m.get("X"), Some("9"));
        assert_eq!(m.get("Y"), Some("2"));
        assert_eq!(m.get("nope"), None);
        assert_eq!(m.len(), 3);
    }
}
