//! A run split into shards that agree exactly: N `slocheck load --shard
//! I/N` processes each send the request numbers `n ≡ I (mod N)` of the
//! global schedule (`load::slice`), started together by a coordinator that
//! then merges their records into the run's one record. `run --shards N`
//! and `coordinate` take the load step of `run` from here; verification and
//! reports are `run`'s own.
//!
//! - `wire`: the protocol's messages and the record encoding (pure).
//! - `coordinator`: the HTTP barrier and collector.
//! - `client`: the shard process (`load --shard`).

pub mod client;
pub mod coordinator;
pub mod wire;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use reqwest::Url;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::load::pacer::Pacer;
use crate::load::slice::Slice;
use crate::plan::{LoadMode, Plan};
use crate::process::ManagedChild;
use crate::record::{MissingShard, RunRecord};
use coordinator::Coordinator;
use wire::Identity;

/// How `run --shards` / `coordinate` shard the load.
#[derive(Debug, Clone)]
pub struct ShardsOptions {
    pub count: u64,
    /// `coordinate --listen`; None: `run --shards`, which listens on
    /// 127.0.0.1:0 and starts the N shard processes itself.
    pub listen: Option<SocketAddr>,
    pub register_timeout: Duration,
    /// `$SLOCHECK_COORDINATOR_TOKEN` (`run --shards` makes one when unset).
    pub token: Option<String>,
}

/// Lead between the start announcement and the first scheduled send: time
/// for every shard's long poll to return and its threads to come up.
pub const START_AHEAD: Duration = Duration::from_secs(2);
/// Wait for records beyond the planned end and the request timeout.
pub const REPORT_GRACE: Duration = Duration::from_secs(30);

/// Each shard's planned request count: its share of every phase's
/// schedule (open loop); None in closed mode.
pub fn planned_share(plan: &Plan, slice: Slice) -> Option<u64> {
    matches!(plan.load.mode, LoadMode::Open).then(|| {
        (plan.phases.iter())
            .map(|p| slice.share_of(Pacer::new(p.rate, p.duration).count_until(p.duration)))
            .sum()
    })
}

/// Takes the missing shards' shares out of each phase's planned count, so
/// the delivered-load rule judges what the reporting shards sent against
/// what they were to send; what the missing ones did is unknown, and
/// `verify::judge::shards` says so.
fn discount_missing(record: &mut RunRecord) {
    let missing: Vec<Slice> = (record.generator.missing_shards.iter())
        .filter_map(|m| Slice::new(m.index, m.of))
        .collect();
    for p in &mut record.phases {
        if let Some(all) = p.planned {
            let gone: u64 = missing.iter().map(|s| s.share_of(all)).sum();
            p.planned = Some(all.saturating_sub(gone));
        }
    }
}

/// The shard processes of `run --shards`, killed by PID on every exit path
/// (`ManagedChild` kills on drop; Ctrl-C reaches slocheck, which drops them).
struct Children(Vec<ManagedChild>);

impl Children {
    fn spawn(
        plan: &Plan,
        count: u64,
        coordinator: &str,
        target: &Url,
        token: &str,
    ) -> Result<Children, Error> {
        let bin = std::env::current_exe()
            .map_err(|e| Error::Environment(format!("cannot find slocheck's own binary: {e}")))?;
        let mut kids = Vec::new();
        for i in 0..count {
            let mut cmd = std::process::Command::new(&bin);
            cmd.arg("load")
                .arg(&plan.source)
                .args(["--shard", &format!("{i}/{count}")])
                .args(["--coordinator", coordinator])
                .args(["--target-url", target.as_str()])
                .args(["--seed", &plan.seed.to_string()])
                .arg("--quiet")
                .env(wire::TOKEN_ENV, token)
                .env_remove(crate::load::slice::INDEX_ENV)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null());
            let child = ManagedChild::spawn(cmd).map_err(|e| {
                Error::Environment(format!(
                    "cannot start shard {i}/{count} ({}): {e}",
                    bin.display()
                ))
            })?;
            kids.push(child);
        }
        Ok(Children(kids))
    }

    /// Shards whose process has ended, with how.
    fn gone(&mut self) -> Vec<(u64, String)> {
        (self.0.iter_mut().enumerate())
            .filter_map(|(i, c)| c.exited().map(|w| (i as u64, w)))
            .collect()
    }

    /// Lets shards that reported exit on their own (briefly), says which
    /// ended badly, then stops what still runs.
    async fn stop(mut self, reported: &[u64]) {
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < until
            && (self.0.iter_mut().enumerate())
                .any(|(i, c)| reported.contains(&(i as u64)) && c.exited().is_none())
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let n = self.0.len();
        for (i, c) in self.0.iter_mut().enumerate() {
            if c.succeeded() == Some(false) {
                let how = c.exited().unwrap_or_default();
                eprintln!("slocheck: warning: shard {i}/{n} exited with {how}");
            }
        }
        for c in self.0 {
            let _ = c.stop(Duration::from_secs(2)).await;
        }
    }
}

/// A sharded run's coordinator, up from before the load until after
/// verification (it is also the webhook recorder of `notified`).
pub struct Sharded {
    opts: ShardsOptions,
    coord: Coordinator,
    token: Option<String>,
}

impl Sharded {
    /// Listens (`coordinate --listen`, or 127.0.0.1:0 for `run --shards`,
    /// which makes a token when none is set).
    pub async fn start(opts: &ShardsOptions, plan: &Plan) -> Result<Sharded, Error> {
        let bytes = std::fs::read(&plan.source).map_err(|source| Error::Io {
            what: "read",
            path: plan.source.clone(),
            source,
        })?;
        let identity = Identity::new(&bytes, plan.seed, opts.count);
        let token = match (&opts.token, opts.listen) {
            (Some(t), _) => Some(t.clone()),
            (None, None) => Some(format!("{:032x}", rand::random::<u128>())),
            (None, Some(_)) => None,
        };
        let listen = opts.listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
        let coord = Coordinator::start(listen, identity, token.clone()).await?;
        eprintln!(
            "slocheck: coordinator listening on {} for {} shards",
            coord.url(),
            opts.count
        );
        Ok(Sharded {
            opts: opts.clone(),
            coord,
            token,
        })
    }

    /// The load step: shards (started here for `run --shards`) registered,
    /// start announced, records collected and merged. Shards that never
    /// reported are named in the record (`generator.missing_shards`); the
    /// verdict then treats the client's ground truth as partial.
    pub async fn load(
        &self,
        plan: &Plan,
        target: &Url,
        cancel: &CancellationToken,
    ) -> Result<RunRecord, Error> {
        let (s, coord) = (&self.opts, &self.coord);
        let mut kids = match s.listen {
            None => Some(Children::spawn(
                plan,
                s.count,
                &coord.url(),
                target,
                self.token.as_deref().unwrap_or_default(),
            )?),
            Some(_) => None,
        };
        let mut gone = || kids.as_mut().map(Children::gone).unwrap_or_default();
        let result = self.barrier_and_records(plan, cancel, &mut gone).await;
        if let Some(k) = kids {
            let reported = result.as_ref().map(|(_, r)| r.clone()).unwrap_or_default();
            k.stop(&reported).await;
        }
        result.map(|(record, _)| record)
    }

    /// Registration, start, records; the merged record and which shards
    /// reported.
    async fn barrier_and_records(
        &self,
        plan: &Plan,
        cancel: &CancellationToken,
        gone: &mut impl FnMut() -> Vec<(u64, String)>,
    ) -> Result<(RunRecord, Vec<u64>), Error> {
        let (s, coord) = (&self.opts, &self.coord);
        coord
            .wait_registered(s.register_timeout, cancel, &mut *gone)
            .await?;
        let start = SystemTime::now() + START_AHEAD;
        coord.announce(start);
        let deadline = start + plan.total_duration() + plan.request.timeout + REPORT_GRACE;
        let (records, missing) = coord.collect(deadline, cancel, gone).await;
        let mut parts = Vec::with_capacity(records.len());
        for r in &records {
            // Checked on arrival; a failure here would be a coordinator bug.
            let part = r.to_part();
            parts.push(
                part.map_err(|e| Error::Environment(format!("shard {}'s record: {e}", r.index)))?,
            );
        }
        let merged = crate::load::combine(parts);
        let mut record = crate::load::finish(plan, start, merged, Slice::WHOLE);
        record.generator.missing_shards = (missing.into_iter())
            .map(|(index, why)| MissingShard {
                index,
                of: s.count,
                planned: Slice::new(index, s.count).and_then(|sl| planned_share(plan, sl)),
                why,
            })
            .collect();
        discount_missing(&mut record);
        for m in &record.generator.missing_shards {
            eprintln!("slocheck: warning: {}", m.describe());
        }
        Ok((record, records.iter().map(|r| r.index).collect()))
    }

    /// What the coordinator's webhook recorder received, for `notified`
    /// when Alertmanager runs elsewhere (`coordinate` with an external
    /// Prometheus): timing and receivers from the scenario's
    /// `[alertmanager]`, as for a managed Alertmanager at time scale 1.
    pub fn deliveries(&self, plan: &Plan) -> Option<crate::alertmanager::stack::Deliveries> {
        let am = plan.alertmanager.as_ref()?;
        let cfg = crate::alertmanager::stack::precheck(am, 1.0).ok()?;
        Some(crate::alertmanager::stack::Deliveries {
            notifications: self.coord.notifications(),
            timing: cfg.timing,
            send_resolved: cfg.send_resolved,
            user_config: am.config.is_some(),
            collected_at: SystemTime::now(),
        })
    }

    pub async fn shutdown(self) {
        self.coord.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_shares_leave_the_planned_counts() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/error-spike.toml");
        let plan = crate::scenario::load(&path).unwrap().plan;
        let part = crate::load::Part {
            recorders: (plan.phases.iter())
                .map(|p| crate::load::recorder::Recorder::new(p.duration))
                .collect(),
            pacer: crate::load::timer::PacerKind::Timerfd,
            transport: Default::default(),
            reached: plan.phases.len(),
            cancelled_at: None,
            threads: 3,
        };
        let mut record = crate::load::finish(&plan, SystemTime::UNIX_EPOCH, part, Slice::WHOLE);
        assert_eq!(
            record.phases.iter().map(|p| p.planned).collect::<Vec<_>>(),
            vec![Some(1500), Some(3750), Some(3000)]
        );
        record.generator.missing_shards = [1u64, 3]
            .map(|index| MissingShard {
                index,
                of: 4,
                planned: None,
                why: "gone".into(),
            })
            .to_vec();
        discount_missing(&mut record);
        // 3750 = 4·937 + 2: shards 0 and 1 have 938, shards 2 and 3 have 937.
        assert_eq!(
            record.phases.iter().map(|p| p.planned).collect::<Vec<_>>(),
            vec![Some(750), Some(3750 - 938 - 937), Some(1500)]
        );
    }

    #[test]
    fn planned_shares_add_up_to_the_plan() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/error-spike.toml");
        let plan = crate::scenario::load(&path).unwrap().plan;
        let whole = planned_share(&plan, Slice::WHOLE).unwrap();
        let expect: u64 = (plan.phases.iter())
            .map(|p| Pacer::new(p.rate, p.duration).count_until(p.duration))
            .sum();
        assert_eq!(whole, expect);
        for n in [2u64, 3, 4, 7] {
            let sum: u64 = (0..n)
                .map(|i| planned_share(&plan, Slice::new(i, n).unwrap()).unwrap())
                .sum();
            assert_eq!(sum, whole, "N = {n}");
        }
    }
}
