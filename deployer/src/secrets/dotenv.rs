//! The dotenv syntax as SOPS reads and writes it: one `NAME=VALUE` per line, `#` comment
//! lines, blank lines skipped, no quoting or trimming, and `\n` in a value meaning a newline.

use std::path::Path;

use zeroize::Zeroizing;

use super::error::SecretsError;

/// Largest credentials file we accept.
pub(crate) const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// Largest single line we accept.
pub(crate) const MAX_LINE_BYTES: usize = 64 * 1024;

/// One non-blank line of a dotenv file.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Line {
    /// `#text`: the text after the `#`, unchanged.
    Comment {
        text: Zeroizing<String>,
        line: usize,
    },
    /// `name=value`: the name exactly as written, the value with `\n` unescaped.
    Pair {
        name: String,
        value: Zeroizing<String>,
        line: usize,
    },
}

/// Shows names and line numbers only, never values or comment text.
impl std::fmt::Debug for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Line::Comment { line, .. } => write!(f, "Comment(line {line})"),
            Line::Pair { name, line, .. } => write!(f, "Pair({name:?}, line {line})"),
        }
    }
}

/// Checks the size limits and UTF-8, then parses.
pub(crate) fn parse_bytes(bytes: &[u8], file: &Path) -> Result<Vec<Line>, SecretsError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(SecretsError::TooLarge {
            file: file.to_path_buf(),
            len: bytes.len(),
            max: MAX_FILE_BYTES,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| SecretsError::NotUtf8 {
        file: file.to_path_buf(),
    })?;
    parse(text, file)
}

/// Parses dotenv text the way sops does.
pub(crate) fn parse(text: &str, file: &Path) -> Result<Vec<Line>, SecretsError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(SecretsError::TooLarge {
            file: file.to_path_buf(),
            len: text.len(),
            max: MAX_FILE_BYTES,
        });
    }
    let mut out = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let line = index + 1;
        if raw.len() > MAX_LINE_BYTES {
            return Err(SecretsError::LineTooLong {
                file: file.to_path_buf(),
                line,
                len: raw.len(),
                max: MAX_LINE_BYTES,
            });
        }
        if raw.is_empty() {
            continue;
        }
        if let Some(text) = raw.strip_prefix('#') {
            out.push(Line::Comment {
                text: Zeroizing::new(text.to_owned()),
                line,
            });
            continue;
        }
        let Some((name, value)) = raw.split_once('=') else {
            return Err(SecretsError::MissingEquals {
                file: file.to_path_buf(),
                line,
            });
        };
        if name.is_empty() {
            return Err(SecretsError::EmptyName {
                file: file.to_path_buf(),
                line,
            });
        }
        out.push(Line::Pair {
            name: name.to_owned(),
            value: Zeroizing::new(value.replace("\\n", "\n")),
            line,
        });
    }
    Ok(out)
}

/// Refuses a name defined twice: the deployer could not tell which value is meant.
pub(crate) fn check_unique_names(lines: &[Line], file: &Path) -> Result<(), SecretsError> {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for l in lines {
        if let Line::Pair { name, line, .. } = l {
            if let Some(first) = seen.insert(name.as_str(), *line) {
                return Err(SecretsError::DuplicateName {
                    file: file.to_path_buf(),
                    name: name.clone(),
                    first,
                    second: *line,
                });
            }
        }
    }
    Ok(())
}

/// Writes lines back as dotenv text (newlines in values escaped as `\n`).
pub(crate) fn emit(lines: &[Line]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    for l in lines {
        match l {
            Line::Comment { text, .. } => {
                out.push('#');
                out.push_str(text);
            }
            Line::Pair { name, value, .. } => {
                out.push_str(name);
                out.push('=');
                // Escape newlines in place, without an unzeroized temporary copy.
                for c in value.chars() {
                    match c {
                        '\n' => out.push_str("\\n"),
                        c => out.push(c),
                    }
                }
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Vec<Line>, SecretsError> {
        parse(text, Path::new("t.env"))
    }

    #[test]
    fn keeps_names_and_values_verbatim() {
        let lines = p("export A=x\n B= y \nC=a=b\r\n\n#c\nD=l1\\nl2\nE=\n").unwrap();
        let pairs: Vec<(String, String)> = lines
            .iter()
            .filter_map(|l| match l {
                Line::Pair { name, value, .. } => Some((name.clone(), value.to_string())),
                _ => None,
            })
            .collect();
        assert_eq!(
            pairs,
            [
                ("export A".into(), "x".into()),
                (" B".into(), " y ".into()),
                ("C".into(), "a=b\r".into()),
                ("D".into(), "l1\nl2".into()),
                ("E".into(), String::new()),
            ]
        );
        assert_eq!(lines.len(), 6);
        assert!(matches!(lines[3], Line::Comment { line: 5, .. }));
    }

    #[test]
    fn emit_round_trips() {
        let text = "#top\nA=1\nB=l1\\nl2\nC=\n";
        assert_eq!(emit(&p(text).unwrap()).as_str(), text);
    }

    #[test]
    fn line_without_equals_is_an_error_naming_the_line_not_its_content() {
        let err = p("A=1\nsupersecret\n").unwrap_err();
        assert!(matches!(err, SecretsError::MissingEquals { line: 2, .. }));
        assert!(!err.to_string().contains("supersecret"));
    }

    #[test]
    fn empty_name_and_huge_line_are_errors() {
        assert!(matches!(
            p("=x").unwrap_err(),
            SecretsError::EmptyName { line: 1, .. }
        ));
        let huge = format!("A={}", "x".repeat(MAX_LINE_BYTES));
        assert!(matches!(
            p(&huge).unwrap_err(),
            SecretsError::LineTooLong { line: 1, .. }
        ));
    }

    #[test]
    fn duplicates_are_refused() {
        let lines = p("A=1\nB=2\nA=3\n").unwrap();
        let err = check_unique_names(&lines, Path::new("t.env")).unwrap_err();
        assert!(matches!(
            err,
            SecretsError::DuplicateName {
                first: 1,
                second: 3,
                ..
            }
        ));
    }
}
