//! The examples and tests of sessile's stores under tower-sessions, axum-login and
//! actix-session live in `examples/` and `tests/` (`cargo test -p sessile-compat-examples`);
//! this empty library is only the target a Cargo package must have.
