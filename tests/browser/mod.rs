//! Opens a local page in a real headless Chromium (Debian `chromium`,
//! installed by `ci/setup.sh chromium`), takes a screenshot and collects
//! what the page logged to the console. Bounded in time; the browser is
//! killed by its PID if it hangs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct BrowserRun {
    pub stderr: String,
    /// Console messages and uncaught exceptions the page produced.
    pub console_errors: Vec<String>,
}

const LIMIT: Duration = Duration::from_secs(60);

fn binary() -> std::path::PathBuf {
    ["chromium", "chromium-browser"]
        .iter()
        .find_map(|n| which::which(n).ok())
        .unwrap_or_else(|| panic!("chromium not found on PATH (hint: run ci/setup.sh chromium)"))
}

/// Loads `page` with the network off and writes a 1400×2000 screenshot.
pub fn open(page: &Path, screenshot: &Path) -> BrowserRun {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(binary())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let mut err = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait for chromium").is_some() {
            break;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let stderr = reader.join().unwrap_or_default();
    let console_errors = stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect();
    BrowserRun {
        stderr,
        console_errors,
    }
}
