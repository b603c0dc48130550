//! Microsecond wake-ups for the open-loop scheduler on the shard's own
//! runtime: a Linux `timerfd` armed with absolute `CLOCK_MONOTONIC`
//! deadlines and awaited through tokio's reactor, or tokio's `sleep_until`
//! where no timerfd exists.
//!
//! tokio's timer wheel rounds every deadline up to the next millisecond and
//! the runtime parks whole milliseconds, so a request scheduled "now + 0.3 ms"
//! left ~1 ms late and that lateness landed in the reported latency. A
//! timerfd wakes the same epoll the runtime already waits on, at the
//! deadline's microsecond, with no thread and no channel in between (a
//! pacer thread feeding the runtime measured worse). tokio timers stay in
//! use for timeouts, where a millisecond does not matter.

use std::time::Duration;

use tokio::time::Instant;

/// Which timer paced the open-loop sends (the report says which one ran).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacerKind {
    /// Linux timerfd, absolute deadlines, µs resolution.
    Timerfd,
    /// tokio `sleep_until` (≈ 1 ms granularity): the portable fallback.
    SleepUntil,
}

impl PacerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PacerKind::Timerfd => "timerfd",
            PacerKind::SleepUntil => "sleep_until",
        }
    }
}

/// Set `SLOCHECK_PACER=sleep_until` to force the portable fallback (to
/// compare the two, or on a kernel that misbehaves with timerfd).
pub const PACER_ENV: &str = "SLOCHECK_PACER";

/// A one-shot timer of one shard. Created inside the shard's runtime.
pub struct Timer {
    #[cfg(target_os = "linux")]
    fd: Option<fd::HiRes>,
}

impl Timer {
    /// A timerfd-backed timer where the platform has one (and the
    /// environment does not ask for the fallback); otherwise `sleep_until`.
    pub fn new() -> Timer {
        let want_fallback = std::env::var(PACER_ENV).is_ok_and(|v| v == "sleep_until");
        Timer {
            #[cfg(target_os = "linux")]
            fd: if want_fallback {
                None
            } else {
                fd::HiRes::new()
            },
        }
    }

    /// The portable fallback, whatever the platform has.
    pub fn fallback() -> Timer {
        Timer {
            #[cfg(target_os = "linux")]
            fd: None,
        }
    }

    pub fn kind(&self) -> PacerKind {
        #[cfg(target_os = "linux")]
        if self.fd.is_some() {
            return PacerKind::Timerfd;
        }
        PacerKind::SleepUntil
    }

    /// Returns at or after `deadline` (at once if it has passed). A timerfd
    /// that fails mid-run degrades this timer to `sleep_until` for good,
    /// rather than stopping the load.
    pub async fn wait_until(&mut self, deadline: Instant) {
        if Instant::now() >= deadline {
            return;
        }
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            if fd.wait_until(deadline).await.is_ok() {
                return;
            }
            self.fd = None;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

impl Default for Timer {
    fn default() -> Self {
        Timer::new()
    }
}

/// Converts a deadline on the tokio/std clock to the `CLOCK_MONOTONIC`
/// reading it corresponds to, from one anchor pair read at creation (std's
/// `Instant` is `CLOCK_MONOTONIC` on Linux but does not expose its value).
fn to_monotonic(anchor: (Instant, Duration), deadline: Instant) -> Duration {
    let (at, mono) = anchor;
    match deadline.checked_duration_since(at) {
        Some(ahead) => mono + ahead,
        None => mono.saturating_sub(at - deadline),
    }
}

#[cfg(target_os = "linux")]
mod fd {
    use std::os::fd::{AsFd, AsRawFd, RawFd};
    use std::time::Duration;

    use nix::errno::Errno;
    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;
    use tokio::time::Instant;

    /// Timer slack of a shard thread, ns (the default is 50 µs).
    const TIMER_SLACK_NS: std::ffi::c_ulong = 1_000;

    /// `AsyncFd` wants `AsRawFd`; nix's `TimerFd` offers `AsFd`.
    struct Raw(TimerFd);

    impl AsRawFd for Raw {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_fd().as_raw_fd()
        }
    }

    pub(super) struct HiRes {
        fd: AsyncFd<Raw>,
        anchor: (Instant, Duration),
    }

    impl HiRes {
        /// None when the kernel refuses a timerfd or no reactor is running.
        pub(super) fn new() -> Option<HiRes> {
            // The kernel lets a normal thread's timers fire up to its timer
            // slack late (50 µs by default) to coalesce wake-ups; that alone
            // would be half the lag budget. This thread is the shard's own.
            let _ = nix::sys::prctl::set_timerslack(TIMER_SLACK_NS);
            let flags = TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC;
            let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, flags).ok()?;
            // Instant first: the anchor's monotonic reading is then the later
            // one, so a converted deadline can only fire late (by the ns
            // between the two reads), never before the Instant it stands for.
            let at = Instant::now();
            let mono = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).ok()?;
            let anchor = (at, Duration::from(mono));
            // SAFETY: `Raw` owns the timerfd (an `OwnedFd` inside nix's
            // `TimerFd`) for the whole life of the `AsyncFd`, never replaces
            // it, and `as_raw_fd` always returns that same descriptor.
            let fd =
                unsafe { AsyncFd::register_with_interest(Raw(timer), Interest::READABLE) }.ok()?;
            Some(HiRes { fd, anchor })
        }

        pub(super) async fn wait_until(&self, deadline: Instant) -> Result<(), Errno> {
            let at = super::to_monotonic(self.anchor, deadline);
            // Arming resets any expiration count left from the last wait.
            self.fd.get_ref().0.set(
                Expiration::OneShot(TimeSpec::from_duration(at)),
                TimerSetTimeFlags::TFD_TIMER_ABSTIME,
            )?;
            loop {
                let mut ready = self.fd.readable().await.map_err(|_| Errno::EIO)?;
                let mut ticks = [0u8; 8];
                match nix::unistd::read(ready.get_inner().0.as_fd(), &mut ticks) {
                    Ok(_) => {
                        // The expiration count is consumed and the timer is
                        // one-shot: nothing is readable until it is armed
                        // again, so the next wait need not read to learn so.
                        ready.clear_ready();
                        return Ok(());
                    }
                    // Readiness left over from an earlier expiration.
                    Err(Errno::EAGAIN) => ready.clear_ready(),
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_conversion_table() {
        let at = Instant::now();
        let mono = Duration::from_secs(1000);
        let us = Duration::from_micros;
        let cases = [
            (at, mono),
            (at + us(250), mono + us(250)),
            (at + Duration::from_secs(3), mono + Duration::from_secs(3)),
        ];
        for (deadline, want) in cases {
            assert_eq!(to_monotonic((at, mono), deadline), want);
        }
        // A deadline before the anchor maps before it (it fires at once).
        if let Some(past) = at.checked_sub(us(10)) {
            assert_eq!(to_monotonic((at, mono), past), mono - us(10));
        }
    }

    #[test]
    fn kind_names_are_the_report_spelling() {
        assert_eq!(PacerKind::Timerfd.as_str(), "timerfd");
        assert_eq!(PacerKind::SleepUntil.as_str(), "sleep_until");
    }

    /// Both timers never return early, and the timerfd one is what a Linux
    /// shard gets. No bound on lateness here: the machine may be busy.
    #[tokio::test(flavor = "current_thread")]
    async fn never_early_with_either_timer() {
        for mut timer in [Timer::new(), Timer::fallback()] {
            let kind = timer.kind();
            for ahead_us in [0u64, 50, 300, 2_000] {
                let deadline = Instant::now() + Duration::from_micros(ahead_us);
                timer.wait_until(deadline).await;
                assert!(Instant::now() >= deadline, "{kind:?} woke early");
            }
            // A deadline in the past returns at once, without arming.
            timer.wait_until(Instant::now()).await;
        }
        if cfg!(target_os = "linux") && std::env::var(PACER_ENV).is_err() {
            assert_eq!(Timer::new().kind(), PacerKind::Timerfd);
        }
        assert_eq!(Timer::fallback().kind(), PacerKind::SleepUntil);
    }
}
