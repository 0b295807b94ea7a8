//! The configuration of the property tests (proptest), so that a failure can be replayed.
//!
//! A run's seed is `PROPTEST_RNG_SEED` when set, else drawn from the clock; it is printed, and
//! shown with a failing test's output: `PROPTEST_RNG_SEED=<seed> cargo test --test <binary>
//! <test>` runs the same cases again. A failing case is also saved, by its own seed, in
//! `tests/proptest-regressions/<binary>.txt`, which every later run replays first (commit it with
//! the fix, as proptest advises).

use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};

pub fn config(binary: &str, cases: u32) -> Config {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    eprintln!("proptest seed {seed}: PROPTEST_RNG_SEED={seed} replays these cases");
    let file = super::root().join(format!("tests/proptest-regressions/{binary}.txt"));
    let file: &'static str = Box::leak(file.to_string_lossy().into_owned().into_boxed_str());
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))),
        ..Config::default()
    }
}
