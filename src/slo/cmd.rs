//! `slocheck slo rules SLOFILE|SCENARIO [--out RULES.yml]`: writes the rule file and
//! its promtool unit tests (`RULES_test.yml`) and, when promtool is
//! installed, checks and tests them at once.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::error::Error;
use crate::exit;

#[derive(Debug, Args)]
pub struct SloArgs {
    #[command(subcommand)]
    pub command: SloCommand,
}

#[derive(Debug, Subcommand)]
pub enum SloCommand {
    /// Write the burn-rate recording and alerting rules of an SLO file, with promtool unit tests beside them.
    Rules(RulesArgs),
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    /// The SLO file (TOML with [[slo]] tables), or a scenario with [[slo]] tables.
    pub slo_file: PathBuf,
    /// The rule file to write (default: the SLO file's name with .rules.yml);
    /// the unit tests go beside it as NAME_test.yml.
    #[arg(long, short, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

/// `rules/slo.yml` → `rules/slo_test.yml`.
pub fn test_path(rules: &Path) -> PathBuf {
    let stem = rules
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "slo".into());
    rules.with_file_name(format!("{stem}_test.yml"))
}

/// Top-level keys only a scenario has: a file with any of them is a
/// scenario (checked whole); anything else is an SLO file, whose typos
/// (`[[sol]]`) get the SLO file's message.
const SCENARIO_KEYS: [&str; 6] = ["phase", "expect", "target", "prometheus", "load", "metrics"];

/// The SLOs of an SLO file, or of a scenario's `[[slo]]` tables.
fn slos_of(path: &Path) -> Result<Vec<super::Slo>, Error> {
    let text = std::fs::read_to_string(path).map_err(Error::io("read the SLO file", path))?;
    let is_scenario = toml::from_str::<toml::Table>(&text)
        .is_ok_and(|t| SCENARIO_KEYS.iter().any(|k| t.contains_key(*k)));
    if !is_scenario {
        return super::parse_str(&text, path);
    }
    let slos = crate::scenario::parse_str(&text, path)?.plan.slos;
    if slos.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: the scenario has no [[slo]] table (hint: add one with name, objective and period, or pass an SLO file)",
            path.display()
        )));
    }
    Ok(slos)
}

pub fn run(a: &SloArgs) -> Result<u8, Error> {
    let SloCommand::Rules(r) = &a.command;
    let slos = slos_of(&r.slo_file)?;
    let out = r.out.clone().unwrap_or_else(|| {
        let stem = r
            .slo_file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "slo".into());
        r.slo_file.with_file_name(format!("{stem}.rules.yml"))
    });
    let tests = test_path(&out);
    let rule_name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let source = r.slo_file.display().to_string();
    let rules_text = super::rules::render(&slos, &source);
    let tests_text = super::unittest::render(&slos, &rule_name);
    crate::report::atomic::write(&out, |w| w.write_all(rules_text.as_bytes()))?;
    crate::report::atomic::write(&tests, |w| w.write_all(tests_text.as_bytes()))?;
    println!(
        "wrote {} ({} SLO(s)) and {}",
        out.display(),
        slos.len(),
        tests.display()
    );
    if let Some(Err(msg)) = crate::prom::timescale::promtool_check(std::slice::from_ref(&out)) {
        return Err(Error::Invalid(format!(
            "the generated rules do not pass promtool check rules: {msg}"
        )));
    }
    match crate::export::promtool::promtool_test(&tests) {
        Some(Ok(took)) => println!(
            "promtool test rules {}: SUCCESS in {}",
            tests.display(),
            crate::timeutil::human(took)
        ),
        Some(Err(msg)) => {
            eprintln!(
                "slocheck: promtool test rules {} failed:\n{msg}",
                tests.display()
            );
            return Ok(exit::FAIL);
        }
        None => println!("promtool not on PATH: the generated tests were not run"),
    }
    Ok(exit::PASS)
}
