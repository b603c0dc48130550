//! Exports of a finished run for other tools: `promtool` turns the run into
//! a `promtool test rules` file that replays it offline.

pub mod notation;
pub mod promtool;
pub mod testfile;
