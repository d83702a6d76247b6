//! Wiring: builds the monitor with the real probe, hasher and stages for a
//! data folder. The CLI and the GUI both start from here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::analysis::{AnalysisStage, TempDirs};
use crate::clock::SystemClock;
use crate::identity::NativeHasher;
use crate::monitor::MonitorCore;
use crate::probe::{NativeProbe, ProbeError};

/// Settings that shape a monitor.
#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: Option<PathBuf>,
    pub interval: Duration,
}

/// The hash cache's file inside the data folder.
pub fn hash_cache_path(data_dir: &Path) -> PathBuf {
    data_dir.join("hash-cache.json")
}

/// A monitor over the real machine.
pub fn native_monitor(opts: &Options) -> Result<MonitorCore, ProbeError> {
    let probe = NativeProbe::new()?;
    let hasher = NativeHasher::new(opts.data_dir.as_deref().map(hash_cache_path));
    let mut core = MonitorCore::new(
        Box::new(probe),
        Box::new(hasher),
        Arc::new(SystemClock),
        opts.interval,
    );
    let (analysis, warnings) = AnalysisStage::open(
        opts.data_dir.as_deref(),
        TempDirs::detect(),
        std::time::SystemTime::now(),
    );
    for w in warnings {
        eprintln!("kizuki: {w}");
    }
    core.add_stage(Box::new(analysis));
    Ok(core)
}
