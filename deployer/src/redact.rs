//! Keeps secret values out of everything the deployer prints: command lines, command
//! output shown on failure, error messages.

/// Replaces every known secret value with `***`.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// Secret values, longest first so that a value containing another is masked whole.
    values: Vec<String>,
}

/// Values shorter than this are not masked: masking "1" or "yes" would garble all output,
/// and such values are not secrets worth the name.
const MIN_SECRET_LEN: usize = 4;

impl Redactor {
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut r = Self::default();
        r.extend(values);
        r
    }

    /// Adds more values to mask (for example Terraform outputs marked sensitive).
    pub fn extend<I, S>(&mut self, values: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for v in values {
            let v = v.as_ref();
            if v.len() >= MIN_SECRET_LEN && !self.values.iter().any(|x| x == v) {
                self.values.push(v.to_owned());
                // Also mask each line of a multi-line secret (keys, certificates).
                for line in v.lines().filter(|l| l.len() >= 16) {
                    if !self.values.iter().any(|x| x == line) {
                        self.values.push(line.to_owned());
                    }
                }
            }
        }
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_longest_first_and_skips_short_values() {
        let r = Redactor::new(["hunter2-long", "hunter2-long-extra", "on"]);
        assert_eq!(
            r.redact("a hunter2-long-extra b hunter2-long c on"),
            "a *** b *** c on"
        );
    }

    #[test]
    fn masks_lines_of_multiline_secrets() {
        let r = Redactor::new(["-----BEGIN X-----\nAAAABBBBCCCCDDDDEEEE\n-----END X-----"]);
        assert_eq!(r.redact("got AAAABBBBCCCCDDDDEEEE here"), "got *** here");
    }
}
