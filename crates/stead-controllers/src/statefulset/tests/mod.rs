//! Tests of the StatefulSet core: fixtures, unit tests per concept, scenario tests of the plan,
//! and the randomized world (`sim` + `props`).

mod claims;
mod fixtures;
mod history;
mod identity;
mod plan;
mod props;
mod revision;
mod sim;
mod status;
