//! `slocheck report`: re-renders a saved report.json without Prometheus;
//! refuses what is not a report with exit 2 and the file's name.

mod common;

use common::{Sandbox, dump, repo, stderr, stdout};

fn fixture() -> String {
    repo()
        .join("tests/fixtures/report/error-spike.json")
        .display()
        .to_string()
}

#[test]
fn renders_every_format_from_a_saved_report() {
    let sb = Sandbox::new();
    let out = |n: &str| sb.path().join(n).display().to_string();
    let (html, md, junit) = (out("r.html"), out("sub/r.md"), out("r.xml"));
    let o = sb.run(&[
        "report",
        &fixture(),
        "--html",
        &html,
        "--md",
        &md,
        "--junit",
        &junit,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    let html = std::fs::read_to_string(&html).unwrap();
    assert_eq!(html.matches("<figure data-chart=").count(), 4);
    assert!(
        std::fs::read_to_string(&md)
            .unwrap()
            .contains("| ✅ pass | `spike-error-ratio`")
    );
    let junit = std::fs::read_to_string(&junit).unwrap();
    assert!(
        junit.contains("tests=\"3\"") && junit.contains("failures=\"0\""),
        "{junit}"
    );
    assert!(stdout(&o).is_empty(), "files only when files are asked for");
}

#[test]
fn prints_the_terminal_summary_by_default() {
    let sb = Sandbox::new();
    let o = sb.run(&["report", &fixture()]);
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    let text = stdout(&o);
    assert!(
        text.contains("slocheck run error-spike — PASSED (exit 0)"),
        "{text}"
    );
    assert!(
        text.contains("HighErrorRate        pending +15.0s"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "NO_COLOR is set by the sandbox");
}

#[test]
fn refuses_what_is_not_a_report() {
    let sb = Sandbox::new();
    let not_json = sb.write("bad.json", "{ nope");
    let o = sb.run(&["report", &not_json.display().to_string()]);
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    assert!(stderr(&o).contains("bad.json: not JSON"), "{}", dump(&o));

    let text = std::fs::read_to_string(fixture()).unwrap();
    let future = sb.write(
        "future.json",
        &text.replacen("\"schema_version\": 1", "\"schema_version\": 99", 1),
    );
    let o = sb.run(&["report", &future.display().to_string()]);
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    assert!(stderr(&o).contains("schema_version 99"), "{}", dump(&o));

    let missing = sb.write("missing.json", &text.replacen("\"seed\": 42,", "", 1));
    let o = sb.run(&["report", &missing.display().to_string()]);
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    assert!(
        stderr(&o).contains("`scenario`") && stderr(&o).contains("seed"),
        "{}",
        dump(&o)
    );

    let o = sb.run(&[
        "report",
        &sb.path().join("nothing.json").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    assert!(
        stderr(&o).contains("cannot read") && stderr(&o).contains("nothing.json"),
        "{}",
        dump(&o)
    );
}
