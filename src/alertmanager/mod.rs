//! Proving that an alert reaches a receiver: a managed Alertmanager, the
//! webhook recorder it delivers to, and its generated or rewritten config.

pub mod config;
pub mod error;
pub mod launcher;
pub mod payload;
pub mod receiver;
pub mod stack;

pub use config::{AmConfig, RouteTiming};
pub use error::AmError;
pub use launcher::ManagedAlertmanager;
pub use payload::{Notification, WebhookPayload};
pub use receiver::Recorder;
pub use stack::{AlertStack, Deliveries, StackOptions};
