//! `slocheck load SCENARIO --shard I/N [--coordinator URL]`: one process's
//! slice of the schedule. With a coordinator it registers, waits for the
//! announced start, sends its slice and posts its record; without one it
//! starts at once and prints its own table.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::{StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::wire::{
    Identity, RECORD_PATH, REGISTER_PATH, Refusal, Register, Registered, ShardRecord,
};
use crate::error::Error;
use crate::load::slice::{INDEX_ENV, ShardArg, Slice};
use crate::load::{self, LiveStats};
use crate::loadcmd::LoadOptions;
use crate::run::Env;
use crate::signals::Interrupt;
use crate::{exit, progress};

/// The shard side of `load`.
pub struct ShardOptions {
    pub shard: ShardArg,
    pub coordinator: Option<Url>,
    /// `$SLOCHECK_COORDINATOR_TOKEN`.
    pub token: Option<String>,
    /// How long the coordinator may stay unreachable before the shard gives up.
    pub coordinator_timeout: Duration,
}

/// Lead of a standalone shard's start, so its threads are up first.
const STANDALONE_LEAD: Duration = Duration::from_millis(100);

/// Talks to the coordinator: bearer token, retries while unreachable, and
/// one-line errors with the documented exit code on a refusal.
struct Link {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
    patience: Duration,
}

impl Link {
    async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        cancel: &CancellationToken,
    ) -> Result<R, Error> {
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| Error::Invalid(format!("--coordinator {}: {e}", self.base)))?;
        let give_up = tokio::time::Instant::now() + self.patience;
        loop {
            let mut req = self.http.post(url.clone()).json(body);
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            let sent = tokio::select! {
                r = req.send() => r,
                _ = cancel.cancelled() => return Err(Error::Interrupted(exit::INTERRUPTED)),
            };
            match sent {
                Ok(resp) => return self.answer(resp).await,
                Err(e) if tokio::time::Instant::now() >= give_up => {
                    return Err(Error::Environment(format!(
                        "cannot reach the coordinator at {} for {}: {} (hint: is `slocheck coordinate` running and is the URL right? the shard waits --coordinator-timeout)",
                        self.base,
                        humantime::format_duration(self.patience),
                        crate::error::chain(&e)
                    )));
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = cancel.cancelled() => return Err(Error::Interrupted(exit::INTERRUPTED)),
            }
        }
    }

    async fn answer<R: DeserializeOwned>(&self, resp: reqwest::Response) -> Result<R, Error> {
        let status = resp.status();
        if status.is_success() {
            return resp.json::<R>().await.map_err(|e| {
                Error::Environment(format!(
                    "the coordinator at {} answered something unreadable: {}",
                    self.base,
                    crate::error::chain(&e)
                ))
            });
        }
        let why = resp
            .json::<Refusal>()
            .await
            .map(|r| r.error)
            .unwrap_or_else(|_| status.to_string());
        Err(match status {
            StatusCode::UNAUTHORIZED => Error::Environment(format!(
                "the coordinator at {} refused this shard's token (hint: {} must hold the coordinator's token)",
                self.base,
                super::wire::TOKEN_ENV
            )),
            StatusCode::CONFLICT => Error::Invalid(format!(
                "the coordinator at {} refused this shard: {why} (hint: every shard must run the coordinator's scenario file, seed and shard count)",
                self.base
            )),
            _ => Error::Environment(format!(
                "the coordinator at {} answered {status}: {why}",
                self.base
            )),
        })
    }
}

/// Runs one shard; see the module doc.
pub async fn load(
    opts: LoadOptions,
    shard: ShardOptions,
    cancel: &CancellationToken,
    interrupt: &Interrupt,
) -> Result<u8, Error> {
    let env_index = std::env::var(INDEX_ENV).ok();
    let slice = shard
        .shard
        .resolve(env_index.as_deref())
        .map_err(Error::Invalid)?;
    let plan = crate::loadcmd::read_plan(&opts, cancel, interrupt).await?;
    let identity = {
        let path = opts.scenario.clone();
        let bytes = std::fs::read(&path).map_err(|source| Error::Io {
            what: "read",
            path,
            source,
        })?;
        Identity::new(&bytes, plan.seed, slice.count)
    };
    let mut env = Env::default();
    let result = async {
        let url = env.start_target(&plan).await?;
        let (target, _) = load::client::Target::prepare(&url, &plan.request, &plan.transport)
            .await
            .map_err(load::LoadError::from)?;
        let instance = rand::random::<u64>();
        let link = match &shard.coordinator {
            Some(base) => Some(Link {
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .connect_timeout(Duration::from_secs(5))
                    .build()
                    .map_err(|e| Error::Environment(format!("http client: {e}")))?,
                base: base.clone(),
                token: shard.token.clone().filter(|t| !t.is_empty()),
                patience: shard.coordinator_timeout,
            }),
            None => None,
        };
        let start = match &link {
            Some(link) => {
                let reg = Register {
                    identity: identity.clone(),
                    index: slice.index,
                    instance,
                };
                eprintln!(
                    "slocheck: shard {slice} registering with the coordinator at {}",
                    link.base
                );
                loop {
                    let r: Registered = link.call(REGISTER_PATH, &reg, cancel).await?;
                    if let Some(ms) = r.start_unix_ms {
                        break SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
                    }
                }
            }
            None => SystemTime::now() + STANDALONE_LEAD,
        };
        let part = send_slice(&plan, target, slice, start, opts.progress, cancel).await?;
        if cancel.is_cancelled() {
            return Err(Error::Interrupted(interrupt.exit_code()));
        }
        let record = load::finish(&plan, start, part.clone(), slice);
        println!("shard {slice}:");
        println!("{}", load::phase_summary_table(&record));
        if let Some(link) = &link {
            let ms = crate::timeutil::unix_ms(start);
            let rec = ShardRecord::of(identity, slice.index, instance, ms, &part);
            let _: serde_json::Value = link.call(RECORD_PATH, &rec, cancel).await?;
            eprintln!("slocheck: shard {slice} record accepted by the coordinator");
        }
        Ok(exit::PASS)
    }
    .await;
    env.shutdown().await;
    result
}

/// The engine on this slice, with the progress display.
async fn send_slice(
    plan: &crate::plan::Plan,
    target: load::client::Target,
    slice: Slice,
    start: SystemTime,
    mode: progress::ProgressMode,
    cancel: &CancellationToken,
) -> Result<load::Part, Error> {
    let live = Arc::new(LiveStats::default());
    let load_cancel = cancel.child_token();
    let shown = progress::spawn(plan, live.clone(), mode, load_cancel.clone());
    let part = load::run_slice(plan, target, live, load_cancel.clone(), slice, start).await;
    load_cancel.cancel();
    let _ = shown.await;
    Ok(part?)
}
