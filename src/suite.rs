//! `slocheck run A.toml B.toml DIR/`: several scenarios as one suite. Each
//! scenario is an ordinary run (its own report folder and export); the suite
//! adds one exit code, one JUnit file with a `<testsuite>` per scenario, one
//! summary and the rule coverage of all runs together. With `--jobs N`,
//! scenarios that bind no fixed address run N at a time.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::coverage::{self, Level, SuiteCoverage};
use crate::error::Error;
use crate::exit;
use crate::progress::ProgressMode;
use crate::report::{self, Report};
use crate::run::{self, RunOptions};
use crate::signals::Interrupt;

/// A suite: the options every run shares, and what the suite adds.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// `scenario`, `json`, `report_dir` and `export_promtool` are per
    /// scenario here; the suite derives them.
    pub base: RunOptions,
    pub scenarios: Vec<PathBuf>,
    pub jobs: usize,
    pub require_coverage: Option<Level>,
}

/// One scenario's result within the suite.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteEntry {
    pub scenario: String,
    pub path: String,
    pub exit_code: u8,
    pub seconds: f64,
    /// None when the scenario could not be loaded.
    pub report: Option<Report>,
}

/// The suite's JSON document (`--json` / `suite.json`).
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    pub exit_code: u8,
    pub runs: Vec<SuiteEntry>,
    pub coverage: SuiteCoverage,
    /// Set when `--require-coverage` failed.
    pub coverage_failure: Option<String>,
}

/// Expands folders into their `*.toml` files (sorted) and keeps files as
/// given. A folder without scenarios is invalid input.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(Error::io("read the scenario folder", p))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "toml"))
                .collect();
            if found.is_empty() {
                return Err(Error::Invalid(format!(
                    "{}: no *.toml scenario in this folder (hint: pass scenario files or a folder holding them)",
                    p.display()
                )));
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Whether a scenario may run beside others: it binds no fixed address
/// (external target or Prometheus, or one given on the command line, is
/// shared). A scenario that does not load runs alone and reports its error.
fn shares_nothing(path: &Path, base: &RunOptions) -> bool {
    if base.target_url.is_some() || base.prometheus_url.is_some() {
        return false;
    }
    match crate::scenario::load(path) {
        Ok(l) => {
            matches!(l.plan.target, crate::plan::TargetPlan::BuiltIn)
                && l.plan.prometheus.url.is_none()
        }
        Err(_) => false,
    }
}

/// A name for per-scenario folders: the file stem, numbered on a clash.
fn folder_names(paths: &[PathBuf]) -> Vec<String> {
    let mut used = std::collections::BTreeSet::new();
    paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("scenario-{i}"));
            if used.insert(stem.clone()) {
                stem
            } else {
                let n = format!("{i}-{stem}");
                used.insert(n.clone());
                n
            }
        })
        .collect()
}

/// The suite's exit code: an interrupt wins, then invalid input, then a
/// broken environment, then a failed expectation.
pub fn combine(codes: &[u8]) -> u8 {
    let rank = |c: u8| match c {
        exit::PASS => 0,
        exit::FAIL => 1,
        exit::ENVIRONMENT => 2,
        exit::INVALID => 3,
        _ => 4,
    };
    codes
        .iter()
        .copied()
        .max_by_key(|c| rank(*c))
        .unwrap_or(exit::PASS)
}

/// Runs the suite and returns its exit code.
pub async fn run(opts: SuiteOptions, cancel: CancellationToken, interrupt: Interrupt) -> u8 {
    let scenarios = opts.scenarios.clone();
    let names = folder_names(&scenarios);
    let jobs = opts.jobs.max(1);
    let per_run = |i: usize| {
        let mut o = opts.base.clone();
        o.scenario = scenarios[i].clone();
        o.json = None;
        o.report_dir = opts.base.report_dir.as_ref().map(|d| d.join(&names[i]));
        o.export_promtool = opts
            .base
            .export_promtool
            .as_ref()
            .map(|d| d.join(&names[i]));
        if jobs > 1 {
            // Several progress bars on one terminal would garble each other.
            o.progress = ProgressMode::Quiet;
        }
        o
    };
    eprintln!(
        "slocheck: suite of {} scenario(s), {} at a time",
        scenarios.len(),
        jobs
    );
    let mut results: Vec<Option<(u8, Option<Report>, Duration)>> = vec![None; scenarios.len()];
    let (parallel, alone): (Vec<usize>, Vec<usize>) =
        (0..scenarios.len()).partition(|&i| jobs > 1 && shares_nothing(&scenarios[i], &opts.base));
    let gate = Arc::new(tokio::sync::Semaphore::new(jobs));
    let mut set = tokio::task::JoinSet::new();
    for i in parallel {
        let (o, c, it, gate) = (per_run(i), cancel.clone(), interrupt.clone(), gate.clone());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            if c.is_cancelled() {
                return (i, None);
            }
            let t = Instant::now();
            let (code, rep) = run::run_reported(o, c, it).await;
            (i, Some((code, rep, t.elapsed())))
        });
    }
    while let Some(joined) = set.join_next().await {
        if let Ok((i, r)) = joined {
            results[i] = r;
        }
    }
    for i in alone {
        if cancel.is_cancelled() {
            break;
        }
        let t = Instant::now();
        let (code, rep) = run::run_reported(per_run(i), cancel.clone(), interrupt.clone()).await;
        results[i] = Some((code, rep, t.elapsed()));
    }

    let mut runs = Vec::with_capacity(scenarios.len());
    for (i, r) in results.into_iter().enumerate() {
        let (code, report, took) = r.unwrap_or((interrupt.exit_code(), None, Duration::ZERO));
        runs.push(SuiteEntry {
            scenario: report
                .as_ref()
                .map(|r| r.scenario.name.clone())
                .unwrap_or_else(|| names[i].clone()),
            path: scenarios[i].display().to_string(),
            exit_code: code,
            seconds: took.as_secs_f64(),
            report,
        });
    }
    let covered: Vec<(&str, &coverage::RunCoverage)> = runs
        .iter()
        .filter_map(|r| {
            let rep = r.report.as_ref()?;
            Some((r.scenario.as_str(), rep.coverage.as_ref()?))
        })
        .collect();
    let cov = coverage::merge(covered);
    let coverage_failure = opts
        .require_coverage
        .and_then(|level| coverage::require(&cov, level).err());
    let mut codes: Vec<u8> = runs.iter().map(|r| r.exit_code).collect();
    if coverage_failure.is_some() {
        codes.push(exit::FAIL);
    }
    let suite = SuiteReport {
        exit_code: combine(&codes),
        runs,
        coverage: cov,
        coverage_failure,
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = summary(&suite, &mut out);
    }
    if let Some(msg) = &suite.coverage_failure {
        eprintln!("slocheck: {msg}");
    }
    if let Some(path) = &opts.base.json
        && let Err(e) = write_json(&suite, path)
    {
        eprintln!("slocheck: error: {e}");
    }
    if let Some(dir) = &opts.base.report_dir
        && let Err(e) = write_dir(&suite, dir)
    {
        eprintln!("slocheck: error: {e}");
    }
    suite.exit_code
}

/// "N passed, N failed, N inconclusive" of one scenario, or "not run".
fn counts(r: &SuiteEntry) -> String {
    r.report
        .as_ref()
        .map(|rep| {
            format!(
                "{} passed, {} failed, {} inconclusive",
                rep.summary.passed, rep.summary.failed, rep.summary.inconclusive
            )
        })
        .unwrap_or_else(|| "not run".into())
}

fn verdict(code: u8) -> &'static str {
    match code {
        exit::PASS => "PASS",
        exit::FAIL => "FAIL",
        exit::INVALID => "INVALID",
        exit::ENVIRONMENT => "ERROR",
        _ => "ABORTED",
    }
}

/// The terminal summary of the suite.
pub fn summary(s: &SuiteReport, out: &mut dyn Write) -> std::io::Result<()> {
    let passed = s.runs.iter().filter(|r| r.exit_code == exit::PASS).count();
    writeln!(
        out,
        "\nslocheck suite — {} scenario(s): {passed} passed, {} failed (exit {})",
        s.runs.len(),
        s.runs.len() - passed,
        s.exit_code
    )?;
    for r in &s.runs {
        let counts = counts(r);
        writeln!(
            out,
            "  {:<8} {:<24} {:<40} exit {}  {:.1}s",
            verdict(r.exit_code),
            r.scenario,
            counts,
            r.exit_code,
            r.seconds
        )?;
    }
    coverage::render::suite_terminal(&s.coverage, out)?;
    if let Some(msg) = &s.coverage_failure {
        writeln!(out, "\n{msg}")?;
    }
    Ok(())
}

fn write_json(s: &SuiteReport, path: &Path) -> Result<(), Error> {
    report::atomic::write(path, |out| {
        serde_json::to_writer_pretty(&mut *out, s).map_err(std::io::Error::other)?;
        writeln!(out)
    })
}

/// `junit.xml` with one `<testsuite>` per scenario (plus `rule-coverage`
/// when the gate is on), `summary.md`, `suite.json`; each run's own reports
/// sit in a folder named after its file.
fn write_dir(s: &SuiteReport, dir: &Path) -> Result<(), Error> {
    let junit = dir.join(report::dir::JUNIT);
    report::atomic::write(&junit, |out| junit_xml(s, out))?;
    let md = dir.join(report::dir::MARKDOWN);
    report::atomic::write(&md, |out| markdown(s, out))?;
    write_json(s, &dir.join("suite.json"))
}

pub fn junit_xml(s: &SuiteReport, out: &mut dyn Write) -> std::io::Result<()> {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
    let mut j = quick_junit::Report::new("slocheck");
    for r in &s.runs {
        match &r.report {
            Some(rep) => {
                j.add_test_suite(report::junit::suite(rep));
            }
            None => {
                let mut suite = TestSuite::new(r.scenario.as_str());
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
                st.set_message(format!("{} did not run (exit {})", r.path, r.exit_code));
                suite.add_test_case(TestCase::new("run", st));
                j.add_test_suite(suite);
            }
        }
    }
    if !s.coverage.alerts.is_empty() {
        let mut suite = TestSuite::new("rule-coverage");
        for a in &s.coverage.alerts {
            let st = if a.firing_in.is_empty() && s.coverage_failure.is_some() {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                st.set_message(a.words());
                st
            } else {
                TestCaseStatus::success()
            };
            let mut c = TestCase::new(a.alert.as_str(), st);
            c.set_classname("slocheck.coverage");
            suite.add_test_case(c);
        }
        j.add_test_suite(suite);
    }
    j.serialize(out).map_err(std::io::Error::other)
}

fn markdown(s: &SuiteReport, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "## slocheck suite (exit {})\n", s.exit_code)?;
    writeln!(out, "| verdict | scenario | expectations | exit |")?;
    writeln!(out, "|---|---|---|---|")?;
    for r in &s.runs {
        let counts = counts(r);
        writeln!(
            out,
            "| {} | `{}` | {counts} | {} |",
            verdict(r.exit_code),
            r.scenario,
            r.exit_code
        )?;
    }
    coverage::render::suite_markdown(&s.coverage, out)?;
    if let Some(msg) = &s.coverage_failure {
        writeln!(out, "\n> {msg}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_of_a_suite() {
        assert_eq!(combine(&[]), exit::PASS);
        assert_eq!(combine(&[0, 0]), exit::PASS);
        assert_eq!(combine(&[0, 1, 0]), exit::FAIL);
        assert_eq!(combine(&[1, 3]), exit::ENVIRONMENT);
        assert_eq!(combine(&[3, 2, 1]), exit::INVALID);
        assert_eq!(combine(&[2, 130]), exit::INTERRUPTED);
    }

    #[test]
    fn folders_expand_to_sorted_scenarios() {
        let d = tempfile::tempdir().unwrap();
        for f in ["b.toml", "a.toml", "notes.md"] {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        let got = expand(&[d.path().to_path_buf(), PathBuf::from("x.toml")]).unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a.toml", "b.toml", "x.toml"]);
        let empty = tempfile::tempdir().unwrap();
        let err = expand(&[empty.path().to_path_buf()]).unwrap_err();
        assert!(err.to_string().contains("no *.toml scenario"), "{err}");
    }

    #[test]
    fn clashing_stems_get_numbered_folders() {
        let n = folder_names(&[PathBuf::from("a/x.toml"), PathBuf::from("b/x.toml")]);
        assert_eq!(n, vec!["x", "1-x"]);
    }
}
