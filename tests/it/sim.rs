//! Tests of the sim area.
