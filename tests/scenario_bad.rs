//! Every file in tests/fixtures/bad must be rejected with a precise one-line
//! message per problem (file:line:col: key.path: message (hint: …)).

use std::path::{Path, PathBuf};

use slocheck::scenario::{self, ScenarioError};

fn bad_files() -> Vec<PathBuf> {
    let dir = Path::new("tests/fixtures/bad");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("tests/fixtures/bad exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn message(path: &Path) -> String {
    match scenario::load(path) {
        Ok(_) => panic!("{} loaded but must be rejected", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_bad_fixture_is_rejected_with_located_one_line_messages() {
    let files = bad_files();
    assert!(
        files.len() >= 16,
        "expected at least 16 bad fixtures, found {}",
        files.len()
    );
    for path in files {
        let err = scenario::load(&path).expect_err(&path.display().to_string());
        let ScenarioError::Invalid(diags) = &err else {
            panic!("{}: not a located error: {err}", path.display())
        };
        assert!(!diags.0.is_empty(), "{}", path.display());
        let prefix = format!("{}:", path.display());
        for line in err.to_string().lines() {
            assert!(
                line.starts_with(&prefix),
                "{line:?} does not start with {prefix:?}"
            );
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 file name")
            .to_string();
        insta::assert_snapshot!(name, message(&path));
    }
}

#[test]
fn one_file_collects_all_its_problems() {
    let err = message(Path::new("tests/fixtures/bad/many-errors.toml"));
    assert!(err.lines().count() >= 5, "{err}");
}

#[test]
fn missing_scenario_file_is_a_read_error_naming_the_path() {
    let err = scenario::load(Path::new("tests/fixtures/bad/does-not-exist.toml"))
        .expect_err("missing file");
    assert!(matches!(err, ScenarioError::Read { .. }));
    assert!(
        err.to_string()
            .starts_with("reading scenario file tests/fixtures/bad/does-not-exist.toml: "),
        "{err}"
    );
}
