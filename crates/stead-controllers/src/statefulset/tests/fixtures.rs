//! Builders for sets, pods and claims used across the tests.
