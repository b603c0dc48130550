//! Scenario diagnostics: one line each, `file:line:col: key.path: message (hint: …)`.

use std::fmt;
use std::path::PathBuf;

/// A 1-based line and column (in characters) inside the scenario file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub col: usize,
}

impl Location {
    /// Converts a byte offset into `text` to a line and column; offsets past
    /// the end or inside a character clamp to the nearest valid position.
    pub fn from_offset(text: &str, offset: usize) -> Location {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        Location { line, col }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One problem in a scenario file, pointing at the offending key or value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The scenario file as the user typed it.
    pub file: PathBuf,
    pub location: Location,
    /// Dotted key path with 1-based table indexes, e.g. `phase[2].rate`;
    /// empty for problems that belong to no key (TOML syntax).
    pub key_path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display().to_string();
        write!(f, "{}:{}: ", OneLine(&file), self.location)?;
        if !self.key_path.is_empty() {
            write!(f, "{}: ", OneLine(&self.key_path))?;
        }
        write!(f, "{}", OneLine(&self.message))?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {})", OneLine(hint))?;
        }
        Ok(())
    }
}

/// Writes text with control characters escaped: values quoted from the
/// scenario may hold newlines, and a diagnostic must stay one line.
struct OneLine<'a>(&'a str);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Every problem found in one scenario file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Why a scenario could not be turned into a `Plan`.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("reading scenario file {}: {source}{}", path.display(), read_hint(source))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// One or more located problems; Display prints one per line.
    #[error("{0}")]
    Invalid(Diagnostics),
}

fn read_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => " (hint: paths are relative to the current directory)",
        std::io::ErrorKind::InvalidData => " (hint: scenario files are UTF-8 TOML)",
        _ => "",
    }
}

impl ScenarioError {
    /// The located problems (empty for a read error).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ScenarioError::Read { .. } => &[],
            ScenarioError::Invalid(d) => &d.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_one_based_lines_and_character_columns() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(Location::from_offset(text, 0), Location { line: 1, col: 1 });
        assert_eq!(Location::from_offset(text, 6), Location { line: 2, col: 1 });
        // 'é' is two bytes: the '=' after "bé " is the 4th character.
        assert_eq!(
            Location::from_offset(text, 10),
            Location { line: 2, col: 4 }
        );
        // inside 'é' clamps back to its start
        assert_eq!(Location::from_offset(text, 8), Location { line: 2, col: 2 });
        assert_eq!(
            Location::from_offset(text, 999),
            Location { line: 3, col: 1 }
        );
    }

    #[test]
    fn quoted_control_characters_are_escaped() {
        let d = Diagnostic {
            file: PathBuf::from("x.toml"),
            location: Location { line: 1, col: 1 },
            key_path: "target.request.headers.a\nb".into(),
            message: "cannot read \"a\nb\"\t".into(),
            hint: Some("x\ry".into()),
        };
        assert_eq!(
            d.to_string(),
            r#"x.toml:1:1: target.request.headers.a\nb: cannot read "a\nb"\t (hint: x\ry)"#
        );
    }

    #[test]
    fn diagnostic_is_one_line_with_key_path_and_hint() {
        let d = Diagnostic {
            file: PathBuf::from("scenarios/x.toml"),
            location: Location { line: 14, col: 8 },
            key_path: "phase[1].rate".into(),
            message: "rate must be > 0, got 0".into(),
            hint: None,
        }
        .with_hint("give it a positive rate");
        assert_eq!(
            d.to_string(),
            "scenarios/x.toml:14:8: phase[1].rate: rate must be > 0, got 0 (hint: give it a positive rate)"
        );
    }
}
