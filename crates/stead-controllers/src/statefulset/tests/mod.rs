//! Tests of the StatefulSet core: fixtures, unit tests per concept, and the randomized world.

mod fixtures;
