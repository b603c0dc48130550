//! The pacer's floor: scheduler lag of the open-loop timer alone (no
//! request sent), at a given rate, on a shard-like current-thread runtime.
//! `ci/bench-load.sh` prints it beside the loaded figures, so a lag tail
//! can be told apart from the machine's own wake-up latency, and the CPU
//! one sleep-and-wake costs (a request paced on its own wake needs two: its
//! send and its answer), the floor under CPU per request at low rates.
//!
//! usage: bench_timer RATE SECS   (SLOCHECK_PACER=sleep_until for the fallback)

use std::error::Error;
use std::time::Duration;

use hdrhistogram::Histogram;
use nix::sys::resource::{UsageWho, getrusage};
use slocheck::load::timer::Timer;
use tokio::time::Instant;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, rate, secs] = args.as_slice() else {
        return Err("usage: bench_timer RATE SECS".into());
    };
    let rate: f64 = rate.parse()?;
    let secs: f64 = secs.parse()?;
    if !(rate > 0.0 && secs > 0.0) {
        return Err("RATE and SECS must be > 0".into());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // User + system CPU from getrusage: the same accounting bench_load's
    // /proc figures use (tick-sampled, scaled to the thread's run time).
    let cpu = || -> Result<f64, Box<dyn Error>> {
        let u = getrusage(UsageWho::RUSAGE_SELF)?;
        let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        Ok(secs(u.user_time()) + secs(u.system_time()))
    };
    let cpu0 = cpu()?;
    let (hist, kind) = rt.block_on(async {
        let mut timer = Timer::new();
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let start = Instant::now() + Duration::from_millis(10);
        let total = (rate * secs) as u64;
        for n in 0..total {
            let due = start + Duration::from_secs_f64(n as f64 / rate);
            timer.wait_until(due).await;
            let lag = Instant::now().saturating_duration_since(due);
            hist.saturating_record(lag.as_micros() as u64);
        }
        Ok::<_, Box<dyn Error>>((hist, timer.kind()))
    })?;
    let wakes = hist.len().max(1);
    println!(
        "pacer={} lag_p50_us={} lag_p99_us={} lag_max_us={} cpu_us_per_wake={:.2}",
        kind.as_str(),
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.max(),
        (cpu()? - cpu0) * 1e6 / wakes as f64
    );
    Ok(())
}
