//! `parse_str` never panics: not on arbitrary text, not on a good scenario
//! with random edits. Every rejection is located and one line per problem.

use std::path::Path;

use proptest::prelude::*;
use slocheck::scenario::{self, ScenarioError};

const GOOD: &str = include_str!("fixtures/good/everything.toml");
const PATH: &str = "tests/fixtures/good/everything.toml";

fn check(text: &str) {
    match scenario::parse_str(text, Path::new(PATH)) {
        Ok(loaded) => {
            // A plan that loads can always be shown.
            let _ = scenario::timeline(&loaded.plan);
        }
        Err(ScenarioError::Invalid(d)) => {
            assert!(!d.0.is_empty());
            for diag in &d.0 {
                let line = diag.to_string();
                assert!(!line.contains('\n'), "multi-line diagnostic: {line:?}");
                assert!(line.starts_with(PATH), "{line:?}");
            }
        }
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

/// Characters that change TOML structure or values when inserted.
const PIECES: &[&str] = &[
    "\"",
    "'",
    "[",
    "]",
    "{",
    "}",
    "=",
    ",",
    "\n",
    "#",
    ".",
    "-",
    "0",
    "1e309",
    "-1",
    "\"0s\"",
    "nan",
    "inf",
    "\"-5s\"",
    "[[phase]]\n",
    "[[expect]]\n",
    "é",
    "\\",
    "rate = 0\n",
    "true",
    "\u{0}",
];

/// Cases per property: bounded in CI, `PROPTEST_CASES=N` for a long run.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(400), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check(&text);
    }

    #[test]
    fn edited_good_file_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..PIECES.len(), 0usize..8, any::<bool>()), 1..6)
    ) {
        let mut text = GOOD.to_string();
        for (at, piece, cut, insert) in edits {
            let mut pos = at.index(text.len() + 1);
            while !text.is_char_boundary(pos) {
                pos -= 1;
            }
            if insert {
                text.insert_str(pos, PIECES[piece]);
            } else {
                let mut end = (pos + cut).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.replace_range(pos..end, "");
            }
        }
        check(&text);
    }
}

#[test]
fn the_unedited_good_file_loads() {
    scenario::parse_str(GOOD, Path::new(PATH)).unwrap_or_else(|e| panic!("{e}"));
}

/// Found by `edited_good_file_never_panics`: an escaped newline in a quoted
/// value must not split the diagnostic over two lines.
#[test]
fn escaped_newline_in_a_quoted_value_stays_on_one_line() {
    let text = GOOD.replace("data/iris.jsonl", "data/iris.jso\\nl");
    let err = scenario::parse_str(&text, Path::new(PATH)).expect_err("missing body file");
    assert_eq!(err.to_string().lines().count(), 1, "{err}");
    assert!(err.to_string().contains(r#""data/iris.jso\nl""#), "{err}");
    check(&text);
}
