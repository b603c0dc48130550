//! Shared state of the target's handlers: the trained model, metrics, the
//! admin fault config, and who may inject faults.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::HeaderMap;
use tokio_util::sync::CancellationToken;

use super::faults::{FaultConfig, FaultSampler, InjectedFault};
use super::metrics::Metrics;
use super::model::{IrisModel, ModelError};
use super::predictions::PredictionLog;
use super::server::TargetConfig;
use crate::fault_protocol;

/// Cheap to clone; every handler gets one.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    model: &'static IrisModel,
    metrics: Option<Arc<Metrics>>,
    faults_enabled: bool,
    admin_token: Option<String>,
    admin: Mutex<AdminFaults>,
    /// Lets `/predict` skip the lock while no admin fault is configured.
    admin_active: AtomicBool,
    /// Cut short injected delays once the shutdown grace is over, so no
    /// connection outlives the server.
    hard_stop: CancellationToken,
    /// Recent predictions and their late labels, for the evaluation job.
    predictions: PredictionLog,
}

#[derive(Debug)]
struct AdminFaults {
    config: FaultConfig,
    sampler: FaultSampler,
}

/// Training is deterministic, so one model serves every target in the
/// process (and the load generator, which predicts what it must answer).
pub fn shared_model() -> Result<&'static IrisModel, ModelError> {
    static MODEL: OnceLock<Result<IrisModel, ModelError>> = OnceLock::new();
    MODEL
        .get_or_init(IrisModel::train_embedded)
        .as_ref()
        .map_err(Clone::clone)
}

impl AppState {
    pub fn new(cfg: &TargetConfig) -> Result<AppState, ModelError> {
        let model = shared_model()?;
        Ok(AppState {
            inner: Arc::new(Shared {
                model,
                metrics: cfg.metrics_enabled.then(|| {
                    let mut m = Metrics::new();
                    let (mean, std) = model.reference();
                    m.register_reference(&mean, &std);
                    Arc::new(m)
                }),
                faults_enabled: cfg.faults_enabled,
                admin_token: cfg.admin_token.clone(),
                admin: Mutex::new(AdminFaults {
                    config: FaultConfig::default(),
                    sampler: FaultSampler::new(cfg.seed),
                }),
                admin_active: AtomicBool::new(false),
                hard_stop: CancellationToken::new(),
                predictions: PredictionLog::default(),
            }),
        })
    }

    pub fn model(&self) -> &IrisModel {
        self.inner.model
    }

    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.inner.metrics.as_ref()
    }

    pub fn predictions(&self) -> &PredictionLog {
        &self.inner.predictions
    }

    pub fn faults_enabled(&self) -> bool {
        self.inner.faults_enabled
    }

    pub fn token_required(&self) -> bool {
        self.inner.admin_token.is_some()
    }

    /// True when a token is configured and the request carries it as
    /// `Authorization: Bearer` (the admin API's only form).
    pub fn has_valid_token(&self, headers: &HeaderMap) -> bool {
        fault_protocol::presents_bearer(headers, self.inner.admin_token.as_deref())
    }

    /// Whether this request's `x-slocheck-fault` header is honoured. Without
    /// a token the server only listens on loopback (`check_security`), so
    /// every peer is local; with one, the protocol's rule applies: the host
    /// itself, or any peer presenting the token.
    pub fn fault_header_allowed(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
        self.inner.faults_enabled
            && (!self.token_required()
                || fault_protocol::honoured(
                    peer.map(|p| p.ip()),
                    headers,
                    self.inner.admin_token.as_deref(),
                ))
    }

    pub fn hard_stop(&self) -> &CancellationToken {
        &self.inner.hard_stop
    }

    pub fn fault_config(&self) -> FaultConfig {
        self.lock_admin().config.clone()
    }

    /// Replaces the admin fault config; the caller has validated it.
    pub fn set_fault_config(&self, config: FaultConfig) {
        let mut admin = self.lock_admin();
        self.inner
            .admin_active
            .store(config.is_active(), Ordering::Release);
        admin.config = config;
    }

    /// The admin config's fault for the next `/predict` request, if any.
    pub fn sample_admin_fault(&self) -> Option<InjectedFault> {
        if !self.inner.faults_enabled || !self.inner.admin_active.load(Ordering::Acquire) {
            return None;
        }
        let mut admin = self.lock_admin();
        let AdminFaults { config, sampler } = &mut *admin;
        Some(sampler.sample(config)).filter(|f| !f.is_empty())
    }

    fn lock_admin(&self) -> std::sync::MutexGuard<'_, AdminFaults> {
        // The guarded data stays consistent even if a holder panicked.
        self.inner
            .admin
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::AUTHORIZATION;

    fn state(token: Option<&str>) -> AppState {
        AppState::new(&TargetConfig {
            admin_token: token.map(str::to_owned),
            ..TargetConfig::default()
        })
        .unwrap()
    }

    fn bearer(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn header_trust_follows_token_and_peer() {
        let remote: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert!(state(None).fault_header_allowed(None, &HeaderMap::new()));
        let s = state(Some("s3cret"));
        assert!(!s.fault_header_allowed(Some(remote), &HeaderMap::new()));
        assert!(!s.fault_header_allowed(None, &HeaderMap::new()));
        assert!(!s.fault_header_allowed(Some(remote), &bearer("Bearer wrong!")));
        assert!(s.fault_header_allowed(Some(remote), &bearer("Bearer s3cret")));
        assert!(s.fault_header_allowed(Some(local), &HeaderMap::new()));
    }

    #[test]
    fn admin_sampling_is_off_until_configured() {
        let s = state(None);
        assert_eq!(s.sample_admin_fault(), None);
        s.set_fault_config(FaultConfig {
            error_rate: 1.0,
            status: 500,
            latency: None,
        });
        assert_eq!(s.sample_admin_fault().and_then(|f| f.status), Some(500));
        s.set_fault_config(FaultConfig::default());
        assert_eq!(s.sample_admin_fault(), None);
    }
}
