//! Test-only crate: real Kubernetes client libraries driven against `stead server`.
//!
//! Nothing lives here; start in `tests/kube_rs.rs` (kube-rs) and `tests/python_client.rs`
//! (runs `tests/e2e/python/test_client.py` with the Python `kubernetes` package).
