//! The benchmarks of sessile live in `benches/` (`cargo bench -p sessile-bench --bench X`);
//! this empty library is only the target a Cargo package must have.
