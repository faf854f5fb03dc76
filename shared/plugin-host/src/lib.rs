//! The metric plugin host. A plugin is a WASM component of the `metric-plugin` world
//! (`metrics-plugins/sdk/wit/metrics@1.0.0/metric.wit`); the host
//! - links nothing into it (no WASI, no imports: a plugin that imports anything fails to
//!   load), so a plugin can compute and nothing else;
//! - gives every call a fuel budget (deterministic, unlike a clock) and a memory cap, and
//!   turns every way a plugin can fail — a loop, a trap, a memory hog, garbage or too much
//!   output, the wrong interface — into a [`PluginError`] naming `name@version`; the host
//!   and every other plugin carry on;
//! - compiles a component once: artifacts are kept precompiled on disk, keyed by the
//!   component's sha256 and the engine's configuration, and instances are reused between
//!   calls, so a batch pays microseconds, not a compile or an instantiation.

mod cache;
mod error;
mod limits;

use std::path::{Path, PathBuf};

use na_metrics_abi::{Contributions, Fact, PluginInfo, encode_facts};
use sha2::Digest;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, Store};

pub use error::{PluginError, PluginFailure};
use limits::{CallState, MemoryCap};

mod bindings {
    wasmtime::component::bindgen!({
        world: "metric-plugin",
        path: "../../metrics-plugins/sdk/wit/metrics@1.0.0",
    });
}

use bindings::MetricPluginPre;
use bindings::nostr_analytics::metrics::types as wit;

/// Limits and caching for every plugin call.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Fuel for a call, plus [`HostConfig::fuel_per_fact`] per fact. A simple metric burns
    /// about a thousand per fact; the default leaves a wide margin and still stops a loop
    /// within tens of milliseconds.
    pub fuel_base: u64,
    pub fuel_per_fact: u64,
    /// Linear memory a plugin instance may grow to.
    pub memory_limit: usize,
    /// Contributions a batch may return per fact.
    pub max_contributions_per_fact: usize,
    /// Where precompiled artifacts are kept (`None`: compile in memory every load).
    pub cache_dir: Option<PathBuf>,
    /// Threads a large batch is split across (each part on its own instance, outputs
    /// concatenated in order, so the result is the same as one call's).
    pub threads: usize,
    /// With `--features profiling`: `perfmap` or `jitdump` names the plugins' compiled
    /// functions for `perf`.
    pub profiler: Option<String>,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            fuel_base: 50_000_000,
            fuel_per_fact: 200_000,
            memory_limit: 64 << 20,
            max_contributions_per_fact: 64,
            cache_dir: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_IDLE)),
            profiler: None,
        }
    }
}

impl HostConfig {
    /// Default limits, caching compiled artifacts in `NA_PLUGIN_CACHE` (default
    /// `/tmp/nostr-analytics/plugin-cache`: writable on Lambda); `NA_PLUGIN_PROFILER`.
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Self {
        let cache = var("NA_PLUGIN_CACHE").map_or_else(
            || PathBuf::from("/tmp/nostr-analytics/plugin-cache"),
            PathBuf::from,
        );
        HostConfig {
            cache_dir: Some(cache),
            profiler: var("NA_PLUGIN_PROFILER"),
            ..Default::default()
        }
    }
}

/// Where `scripts/build-plugins` writes the built components unless `NA_PLUGIN_DIR` says.
pub const DEFAULT_PLUGIN_DIR: &str = "/var/cache/nostr-analytics/plugins";

/// The component `scripts/build-plugins` built from plugin crate `name` into `dir`.
///
/// # Errors
/// A message naming the missing file and the command that builds it.
pub fn read_built_component(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::read(&path).map_err(|e| {
        format!(
            "{}: {e}; build the plugins: scripts/build-plugins",
            path.display()
        )
    })
}

/// An instance serves this many calls, then a fresh one takes over. Reuse saves the
/// instantiation and the memory set-up of every call (most of a small batch's cost); the
/// limit bounds what a plugin that keeps state against the contract could drift.
const RECYCLE_AFTER_CALLS: u32 = 64;
/// The largest packing buffer an idle instance keeps (a batch of about 90,000 facts): an
/// occasional huge batch should not stay resident.
const KEEP_PACKED_BYTES: usize = 16 << 20;
/// Warm instances kept per plugin (about one per thread that runs it).
const MAX_IDLE: usize = 4;
/// A batch is split across threads only when every part gets at least this many facts:
/// starting a thread costs tens of microseconds.
const MIN_FACTS_PER_THREAD: usize = 2_000;

/// A loaded plugin: its description, its content hash, its pre-linked component and the
/// instances kept warm between calls.
pub struct LoadedPlugin {
    pub info: PluginInfo,
    /// sha256 of the component bytes.
    pub hash: [u8; 32],
    pre: MetricPluginPre<CallState>,
    idle: std::sync::Mutex<Vec<Warm>>,
}

/// An instance that has served calls and may serve more.
struct Warm {
    store: Store<CallState>,
    plugin: bindings::MetricPlugin,
    calls: u32,
    /// The buffer the last batch was packed in, kept for the next.
    packed: Vec<u8>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("plugin", &self.info.id())
            .field("hash", &hex::encode(self.hash))
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    pub fn id(&self) -> String {
        self.info.id()
    }
}

/// Runs plugins. One engine (and its compiled code) for every plugin.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<CallState>,
    config: HostConfig,
    /// The threads that map the parts of a split batch beside the calling thread, kept
    /// between calls: a thread started per call would also set up wasmtime's per-thread
    /// state (its signal stack) every time.
    pool: Option<rayon::ThreadPool>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PluginHost {
    /// # Errors
    /// When the engine cannot be configured.
    pub fn new(config: HostConfig) -> Result<Self, PluginError> {
        let mut wasm = Config::new();
        wasm.consume_fuel(true)
            .wasm_component_model(true)
            // Plugins must be deterministic: no relaxed-SIMD nondeterminism, canonical NaNs
            // (threads are not compiled into this wasmtime).
            .wasm_relaxed_simd(false)
            .cranelift_nan_canonicalization(true);
        // `--features profiling`: see `HostConfig::profiler`.
        #[cfg(feature = "profiling")]
        match config.profiler.as_deref() {
            Some("perfmap") => {
                wasm.profiler(wasmtime::ProfilingStrategy::PerfMap);
            }
            Some("jitdump") => {
                wasm.profiler(wasmtime::ProfilingStrategy::JitDump);
            }
            _ => {}
        }
        let engine = Engine::new(&wasm).map_err(|e| PluginError::host(format!("engine: {e}")))?;
        let pool = if config.threads > 1 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(config.threads - 1)
                .thread_name(|i| format!("plugin-{i}"))
                .build()
                .map_err(|e| PluginError::host(format!("plugin threads: {e}")))?;
            Some(pool)
        } else {
            None
        };
        Ok(PluginHost {
            linker: Linker::new(&engine),
            engine,
            config,
            pool,
        })
    }

    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// Loads a component: compiles it (or loads its precompiled artifact), checks that it
    /// implements the `metric-plugin` world, and reads and checks its description.
    ///
    /// # Errors
    /// [`PluginError`] naming the plugin (or its hash, before it has described itself).
    pub fn load(&self, bytes: &[u8]) -> Result<LoadedPlugin, PluginError> {
        let hash: [u8; 32] = sha2::Sha256::digest(bytes).into();
        let unnamed = || format!("sha256:{}", &hex::encode(hash)[..16]);
        let component =
            cache::component(&self.engine, self.config.cache_dir.as_deref(), bytes, &hash)
                .map_err(|e| PluginError::new(unnamed(), PluginFailure::Compile(e)))?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|e| {
            PluginError::new(unnamed(), PluginFailure::WrongInterface(e.to_string()))
        })?;
        let pre = MetricPluginPre::new(instance_pre).map_err(|e| {
            PluginError::new(unnamed(), PluginFailure::WrongInterface(e.to_string()))
        })?;
        let mut store = self.store(self.fuel(0));
        let described = pre
            .instantiate(&mut store)
            .and_then(|p| p.call_describe(&mut store));
        let info = match described {
            Ok(info) => from_wit(info),
            Err(e) => {
                return Err(PluginError::new(
                    unnamed(),
                    limits::failure(&store, e, &self.config),
                ));
            }
        };
        let problems = info.problems();
        if !problems.is_empty() {
            return Err(PluginError::new(
                info.id(),
                PluginFailure::Invalid(problems),
            ));
        }
        Ok(LoadedPlugin {
            info,
            hash,
            pre,
            idle: std::sync::Mutex::default(),
        })
    }

    /// Maps a batch of facts through a plugin: a batch of thousands is split across
    /// [`HostConfig::threads`], in order.
    ///
    /// # Errors
    /// [`PluginError`] naming the plugin: it trapped, ran out of fuel or memory, refused the
    /// batch, or returned contributions that are malformed, too many, or name a metric it
    /// did not declare.
    pub fn run(&self, plugin: &LoadedPlugin, facts: &[Fact]) -> Result<Contributions, PluginError> {
        let threads = self
            .config
            .threads
            .min(facts.len() / MIN_FACTS_PER_THREAD)
            .max(1);
        let Some(pool) = self.pool.as_ref().filter(|_| threads > 1) else {
            return self.run_part(plugin, facts);
        };
        // The calling thread maps the first part while the pool maps the rest.
        let mut parts = facts.chunks(facts.len().div_ceil(threads));
        let first = parts.next().unwrap_or_default();
        let mut rest: Vec<_> = parts.map(|p| (p, None)).collect();
        let mut mapped = None;
        pool.in_place_scope(|scope| {
            for (part, out) in &mut rest {
                let part: &[Fact] = part;
                scope.spawn(move |_| *out = Some(self.run_part(plugin, part)));
            }
            mapped = Some(self.run_part(plugin, first));
        });
        let mut out = Contributions::default();
        for part in std::iter::once(mapped).chain(rest.into_iter().map(|(_, out)| out)) {
            let part = part.ok_or_else(|| {
                PluginError::host(format!(
                    "{}: a part of the batch was not mapped",
                    plugin.id()
                ))
            })?;
            out.append(part?);
        }
        Ok(out)
    }

    /// [`PluginHost::run`] on one thread.
    fn run_part(
        &self,
        plugin: &LoadedPlugin,
        facts: &[Fact],
    ) -> Result<Contributions, PluginError> {
        let mut warm = self.checkout(plugin, facts.len())?;
        // The instance's packing buffer: a fresh megabyte per call would be fresh pages
        // from the kernel every time.
        let mut packed = std::mem::take(&mut warm.packed);
        encode_facts(facts, &mut packed);
        let out = warm.plugin.call_map_batch(&mut warm.store, &packed);
        if packed.capacity() <= KEEP_PACKED_BYTES {
            warm.packed = packed;
        }
        let out = self.checkin(plugin, warm, out)?;
        let limit = facts
            .len()
            .saturating_mul(self.config.max_contributions_per_fact);
        let out = Contributions::decode(out, plugin.info.metrics.len())
            .map_err(|e| PluginError::new(plugin.id(), PluginFailure::Garbage(e.0)))?;
        if out.len() > limit {
            return Err(PluginError::new(
                plugin.id(),
                PluginFailure::TooMuch(format!(
                    "{} contributions for {} facts, more than the limit of {limit}",
                    out.len(),
                    facts.len()
                )),
            ));
        }
        Ok(out)
    }

    /// As [`PluginHost::run`] with the batch already packed; returns the packed output
    /// unchecked (the benchmark's inner loop).
    ///
    /// # Errors
    /// As [`PluginHost::run`], except for the checks of the output.
    pub fn run_packed(
        &self,
        plugin: &LoadedPlugin,
        packed: &[u8],
        facts: usize,
    ) -> Result<Vec<u8>, PluginError> {
        let mut warm = self.checkout(plugin, facts)?;
        let out = warm.plugin.call_map_batch(&mut warm.store, packed);
        self.checkin(plugin, warm, out)
    }

    /// A warm instance of `plugin` (or a new one), fuelled for a batch of `facts`.
    fn checkout(&self, plugin: &LoadedPlugin, facts: usize) -> Result<Warm, PluginError> {
        let fuel = self.fuel(facts);
        let idle = plugin.idle.lock().map(|mut w| w.pop()).unwrap_or(None);
        let mut warm = match idle {
            Some(w) => w,
            None => {
                let mut store = self.store(fuel);
                let instance = plugin.pre.instantiate(&mut store).map_err(|e| {
                    PluginError::new(plugin.id(), limits::failure(&store, e, &self.config))
                })?;
                Warm {
                    store,
                    plugin: instance,
                    calls: 0,
                    packed: Vec::new(),
                }
            }
        };
        warm.store.data_mut().fuel = fuel;
        // Fuel is on for this engine: set_fuel cannot fail.
        let _ = warm.store.set_fuel(fuel);
        Ok(warm)
    }

    /// Puts an instance back after a call and turns the call's outcome into the output or
    /// a [`PluginError`]. An instance whose call failed is dropped: it may have been left in
    /// any state.
    fn checkin(
        &self,
        plugin: &LoadedPlugin,
        mut warm: Warm,
        outcome: Result<Result<Vec<u8>, String>, wasmtime::Error>,
    ) -> Result<Vec<u8>, PluginError> {
        let out = match outcome {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(message)) => Err(PluginError::new(
                plugin.id(),
                PluginFailure::Rejected(message),
            )),
            Err(e) => {
                let failure = limits::failure(&warm.store, e, &self.config);
                return Err(PluginError::new(plugin.id(), failure));
            }
        };
        warm.calls += 1;
        if warm.calls < RECYCLE_AFTER_CALLS
            && let Ok(mut idle) = plugin.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(warm);
        }
        out
    }

    fn fuel(&self, facts: usize) -> u64 {
        self.config
            .fuel_base
            .saturating_add(self.config.fuel_per_fact.saturating_mul(facts as u64))
    }

    fn store(&self, fuel: u64) -> Store<CallState> {
        let mut store = Store::new(
            &self.engine,
            CallState {
                memory: MemoryCap::new(self.config.memory_limit),
                fuel,
            },
        );
        store.limiter(|s| &mut s.memory);
        // Fuel is on for this engine: set_fuel cannot fail.
        let _ = store.set_fuel(fuel);
        store
    }
}

fn from_wit(info: wit::PluginInfo) -> PluginInfo {
    use na_metrics_abi::{Aggregation, MetricInfo};
    PluginInfo {
        name: info.name,
        version: info.version,
        abi: info.abi,
        metrics: info
            .metrics
            .into_iter()
            .map(|m| MetricInfo {
                name: m.name,
                version: m.version,
                aggregation: match m.aggregation {
                    wit::Aggregation::Count => Aggregation::Count,
                    wit::Aggregation::Sum => Aggregation::Sum,
                    wit::Aggregation::Min => Aggregation::Min,
                    wit::Aggregation::Max => Aggregation::Max,
                    wit::Aggregation::Distinct => Aggregation::Distinct,
                    wit::Aggregation::Gauge => Aggregation::Gauge,
                },
                unit: m.unit,
                description: m.description,
                fact_classes: m.fact_classes,
                dimensions: m.dimensions,
            })
            .collect(),
    }
}
